"""One SQLite connection owned by one worker thread, for the embedded stores.

Every call is a job submitted to a single-thread executor, so SQLite never runs on the event loop,
jobs run in submission order, and a job is atomic with respect to every other job of the same store
(a read-modify-write inside one job needs no further locking within the process).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from rallypoint.errors import StorageError
from rallypoint.storage.sqlite import schema
from rallypoint.storage.sqlite.binding import register_identity_adapters

T = TypeVar("T")


class SqliteWorker:
    """A lazily opened SQLite connection and the thread that owns it.

    ``migrations`` are SQL scripts or functions (see ``schema.MIGRATIONS``): entry ``i`` upgrades the file from
    ``PRAGMA user_version`` ``i`` to ``i + 1``. ``what`` names the store in error messages.
    ``page_size`` (bytes) applies to a file this worker creates; an existing file keeps its own.
    ``cache_kib``: the connection's page cache (SQLite's default is 2,000 KiB).
    """

    def __init__(
        self,
        path: Path,
        *,
        migrations: tuple[schema.Migration, ...],
        what: str,
        page_size: int | None = None,
        cache_kib: int | None = None,
    ) -> None:
        self._path = path
        self._page_size = page_size
        self._cache_kib = cache_kib
        self._migrations = migrations
        self._what = what
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"rallypoint-{what}")
        # Only ever touched from the worker thread.
        self._db: sqlite3.Connection | None = None
        self._closed = False

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` in the worker thread; sqlite errors become ``StorageError``."""
        if self._closed:
            raise StorageError(f"{self._what} store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, fn, args)

    async def close(self) -> None:
        """Close the connection and let the worker thread finish; closing twice is harmless."""
        if self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._close_connection)
        finally:
            self._closed = True
            self._executor.shutdown(wait=False)

    def _guarded(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        # Runs in the worker thread.
        try:
            return fn(self._connection(), *args)
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite {self._what} store {self._path}: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        # Runs in the worker thread: the connection is created, used and closed there only.
        if self._db is None:
            register_identity_adapters()
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, isolation_level=None, timeout=30.0)
            try:
                if self._page_size is not None:
                    # Only takes effect before the first table exists (and before WAL is on).
                    db.execute(f"PRAGMA page_size={int(self._page_size)}")
                schema.configure(db)
                if self._cache_kib is not None:
                    # A negative cache_size is in KiB, whatever the page size.
                    db.execute(f"PRAGMA cache_size=-{int(self._cache_kib)}")
                apply_migrations(db, self._migrations, what=self._what)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _close_connection(self) -> None:
        # Runs in the worker thread; a store that was never used has nothing to close.
        db, self._db = self._db, None
        if db is None:
            return
        try:
            db.execute("PRAGMA optimize")
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite {self._what} store {self._path}: {exc}") from exc
        finally:
            db.close()


def apply_migrations(db: sqlite3.Connection, migrations: tuple[schema.Migration, ...], *, what: str) -> None:
    """Bring the file up to ``len(migrations)``; refuse files written by a newer Rallypoint."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    latest = len(migrations)
    if version > latest:
        raise StorageError(
            f"{what} database schema version {version} is newer than this Rallypoint supports ({latest}); "
            "upgrade Rallypoint"
        )
    for target in range(version + 1, latest + 1):
        step = migrations[target - 1]
        # executescript commits first; wrap the migration and the version bump in one transaction.
        try:
            if isinstance(step, str):
                db.executescript(f"BEGIN IMMEDIATE;\n{step}\nPRAGMA user_version = {target};\nCOMMIT;")
            else:
                _run_migration(db, step, target)
        except sqlite3.OperationalError:
            if db.in_transaction:
                db.execute("ROLLBACK")
            # Another connection (a second process opening the same file) may have migrated first.
            (now,) = db.execute("PRAGMA user_version").fetchone()
            if now < target:
                raise


def _run_migration(db: sqlite3.Connection, step: Callable[[sqlite3.Connection], None], target: int) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        (now,) = db.execute("PRAGMA user_version").fetchone()
        # Another process may have migrated while this one waited for the write lock.
        if now < target:
            # The function must not use executescript, which would commit half-way.
            step(db)
            db.execute(f"PRAGMA user_version = {target}")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def transaction(db: sqlite3.Connection, fn: Callable[[], T], *, immediate: bool = True) -> T:
    """Run ``fn`` inside one transaction (``BEGIN IMMEDIATE`` takes the write lock up front)."""
    db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        result = fn()
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return result
