"""A lazily opened asyncpg pool that migrates the schema first and retries on connection loss.

The storage URL may carry Rallypoint's own ``pool_max`` and ``retry_s`` (``storage.postgres.options``);
they override the store's defaults and are removed before the URL reaches the driver.

Only idempotent operations go through :meth:`PostgresPool.retrying` (reads, marks, deletes of old
rows, and appends made idempotent by a batch id): after a lost connection nobody knows whether the
last statement committed, so the operation must be safe to run twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from rallypoint.errors import StorageError
from rallypoint.storage.postgres.migrations import Migration, Prepare, migrate
from rallypoint.storage.postgres.options import RETRY_FIRST_S, RETRY_MAX_S, retry_attempts, split_url

log = logging.getLogger(__name__)
T = TypeVar("T")

class ConnectionLost(Exception):
    """The connection closed under an operation (whatever error asyncpg reported for it)."""


# Lost or refused connections: the server restarted, a backend was terminated, a network blip.
RETRYABLE: tuple[type[Exception], ...] = (
    ConnectionLost,
    asyncpg.PostgresConnectionError,  # includes ConnectionDoesNotExistError
    asyncpg.InterfaceError,
    # A connection lost during COPY can go unnoticed until the next statement (or the pool's reset
    # on release) finds the protocol in the wrong state.
    asyncpg.InternalClientError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    ConnectionError,
    OSError,
    TimeoutError,
)


class RetryPolicy:
    """Bounded exponential backoff: ``attempts`` tries, delays from ``first_s`` doubling up to ``max_s``."""

    def __init__(self, attempts: int = 8, first_s: float = RETRY_FIRST_S, max_s: float = RETRY_MAX_S) -> None:
        if attempts < 1 or first_s < 0 or max_s < first_s:
            raise ValueError("attempts >= 1 and 0 <= first_s <= max_s")
        self.attempts = attempts
        self.first_s = first_s
        self.max_s = max_s

    def delays(self) -> list[float]:
        """The pause before each retry (one fewer than ``attempts``)."""
        out, delay = [], self.first_s
        for _ in range(self.attempts - 1):
            out.append(delay)
            delay = min(delay * 2, self.max_s)
        return out

    @classmethod
    def lasting(cls, seconds: float) -> RetryPolicy:
        """The default backoff with enough tries that the pauses add up to ``seconds``."""
        return cls(attempts=retry_attempts(seconds))


class PostgresPool:
    """One asyncpg pool per store, opened on first use (migrations run then, under an advisory lock)."""

    def __init__(
        self,
        dsn: str,
        *,
        migrations: tuple[Migration, ...],
        lock_key: int,
        what: str,
        max_size: int = 4,
        retry: RetryPolicy | None = None,
        prepare: Prepare | None = None,
        server_settings: dict[str, str] | None = None,
    ) -> None:
        self._dsn, self.options = split_url(dsn)
        self._migrations = migrations
        self._lock_key = lock_key
        self._what = what
        self._prepare = prepare
        self._server_settings = server_settings
        # The URL's settings win over the store's defaults.
        self._max_size = self.options.pool_max or max_size
        if self.options.retry_s is not None:
            retry = RetryPolicy.lasting(self.options.retry_s)
        self.retry = retry or RetryPolicy()
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._closed = False
        self.retries = 0

    async def retrying(self, op: Callable[[asyncpg.Connection], Awaitable[T]], *, name: str) -> T:
        """Run ``op(connection)``, again after a lost connection; database errors become ``StorageError``."""
        return await self._run(op, name, self.retry.delays())

    async def once(self, op: Callable[[asyncpg.Connection], Awaitable[T]], *, name: str) -> T:
        """Run ``op(connection)`` a single time: for operations that must not run twice (counters).

        A lost connection (or any database error) becomes ``StorageError``; the caller cannot know
        whether the operation committed, and says so to its own caller.
        """
        return await self._run(op, name, [])

    async def _run(self, op: Callable[[asyncpg.Connection], Awaitable[T]], name: str, delays: list[float]) -> T:
        for attempt in range(len(delays) + 1):
            try:
                pool = await self._open()
                async with pool.acquire() as conn:
                    try:
                        return await op(conn)
                    except asyncpg.InternalClientError:
                        # The connection is unusable: do not hand it back to the pool.
                        conn.terminate()
                        raise
                    except asyncpg.PostgresError as exc:
                        if conn.is_closed():
                            raise ConnectionLost(str(exc)) from exc
                        raise
            except RETRYABLE as exc:
                if self._closed or attempt == len(delays):
                    raise StorageError(f"postgresql {self._what} store: {name} failed: {exc!r}") from exc
                self.retries += 1
                log.warning("postgresql connection lost; retrying",
                            extra={"store": self._what, "operation": name, "attempt": attempt + 1,
                                   "error": repr(exc)[:200]})
                await asyncio.sleep(delays[attempt])
            except asyncpg.PostgresError as exc:
                raise StorageError(f"postgresql {self._what} store: {name} failed: {exc}") from exc
        raise AssertionError("unreachable")

    @property
    def max_size(self) -> int:
        """The most connections this pool opens."""
        return self._max_size

    async def close(self) -> None:
        """Close every connection (waiting for those in use); closing twice is harmless."""
        self._closed = True
        async with self._opening:
            pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _open(self) -> asyncpg.Pool:
        if self._closed:
            raise StorageError(f"{self._what} store is closed")
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                if self._closed:
                    raise StorageError(f"{self._what} store is closed")
                pool = await asyncpg.create_pool(
                    self._dsn, min_size=1, max_size=self._max_size, server_settings=self._server_settings,
                )
                try:
                    async with pool.acquire() as conn:
                        await migrate(conn, self._migrations, lock_key=self._lock_key, what=self._what,
                                      prepare=self._prepare)
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
            return self._pool


def rows_affected(status: str) -> int:
    """Rows a statement changed, from its command tag (``UPDATE 3``, ``DELETE 0``)."""
    return int(status.rsplit(" ", 1)[-1])
