"""A throwaway PostgreSQL database for the tests that need one.

Where the server comes from, in order:

1. ``RALLYPOINT_TEST_POSTGRES`` (an admin DSN), when set;
2. the server on 127.0.0.1:5432 when it answers (trust authentication, user ``postgres`` or ``root``);
3. a private cluster made with ``initdb`` and started with ``pg_ctl`` in a temporary directory, when
   those binaries are installed;
4. otherwise the tests are skipped, saying why.

Each test run (each xdist worker) creates its own ``rallypoint_test_<random>`` database and drops it
at the end; :meth:`PostgresDatabase.fresh` empties it between tests.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

LOCAL = ("127.0.0.1", 5432)
T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a loop of its own: fixtures may be set up inside a running loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class PostgresDatabase:
    """One database of a test run: ``dsn`` for stores, ``admin_dsn`` for the server it lives on."""

    def __init__(self, admin_dsn: str, name: str) -> None:
        self.admin_dsn = admin_dsn
        self.name = name
        parts = urlsplit(admin_dsn)
        self.dsn = urlunsplit(parts._replace(path=f"/{name}"))

    async def fresh(self) -> str:
        """Empty the database (every table, so migrations run again) and return its DSN."""
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await conn.close()
        return self.dsn

    async def terminate_backends(self, application_name: str | None = None) -> int:
        """Kill every other connection to this database (as a crash or failover would); returns how many."""
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            rows = await conn.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                self.name,
            )
        finally:
            await conn.close()
        return sum(1 for r in rows if r[0])


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


async def _can_login(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return False
    await conn.close()
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _PrivateCluster:
    """``initdb`` + ``pg_ctl`` in a temporary directory, trust authentication, loopback only."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="rallypoint-pg-"))
        self.port = _free_port()

    def start(self) -> str:
        data = self.dir / "data"
        user = "postgres"
        subprocess.run(["initdb", "-D", str(data), "-U", user, "-A", "trust", "--no-sync"],
                       check=True, capture_output=True)
        subprocess.run(
            ["pg_ctl", "-D", str(data), "-l", str(self.dir / "log"), "-w", "start",
             "-o", f"-h 127.0.0.1 -p {self.port} -k {self.dir} -F"],
            check=True, capture_output=True,
        )
        return f"postgresql://{user}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run(["pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def _admin_dsn() -> tuple[str | None, _PrivateCluster | None, str]:
    """An admin DSN and the private cluster behind it (if any), or None and why there is none."""
    configured = os.environ.get("RALLYPOINT_TEST_POSTGRES")
    if configured:
        return configured, None, ""
    if _answers(*LOCAL):
        for user in ("postgres", "root"):
            dsn = f"postgresql://{user}@{LOCAL[0]}:{LOCAL[1]}/postgres"
            if _run(_can_login(dsn)):
                return dsn, None, ""
        reason = "the server on 127.0.0.1:5432 refused users postgres and root without a password"
    else:
        reason = f"no PostgreSQL on {LOCAL[0]}:{LOCAL[1]}"
    if shutil.which("initdb") and shutil.which("pg_ctl"):
        cluster = _PrivateCluster()
        try:
            return cluster.start(), cluster, ""
        except subprocess.CalledProcessError as exc:
            cluster.stop()
            # initdb refuses to run as root, for example: say what it said.
            said = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
            return None, None, f"{reason}, and {exc.cmd[0]} failed: {said[0] if said else exc}"
        except OSError as exc:
            cluster.stop()
            return None, None, f"{reason}, and initdb/pg_ctl failed: {exc}"
    return None, None, f"{reason}, and initdb/pg_ctl are not installed (set RALLYPOINT_TEST_POSTGRES to a DSN)"


async def _admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[PostgresDatabase]:
    """A database of its own for this test run (worker), dropped at the end; skips without PostgreSQL."""
    admin_dsn, cluster, reason = _admin_dsn()
    if admin_dsn is None:
        pytest.skip(f"PostgreSQL tests need a server: {reason}")
    name = f"rallypoint_test_{secrets.token_hex(6)}"
    try:
        _run(_admin(admin_dsn, f'CREATE DATABASE "{name}"'))
        yield PostgresDatabase(admin_dsn, name)
    finally:
        try:
            _run(_admin(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            if cluster is not None:
                cluster.stop()
