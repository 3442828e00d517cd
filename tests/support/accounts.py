"""Running the CLI, reading the account store and the audit log it or a server wrote (synchronous tests)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from rallypoint.security.audit import AuditEntry, AuditLog
from rallypoint.security.users import User, UserAccounts
from rallypoint.storage.sqlite.audit import SqliteAuditRecords
from rallypoint.storage.sqlite.users import SqliteUserRecords


def run_cli(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``rallypoint ARGS --data-dir DATA_DIR`` as an operator would; fails the test if it fails."""
    return subprocess.run(
        [sys.executable, "-m", "rallypoint.cli.main", *args, "--data-dir", str(data_dir)],
        input=stdin, capture_output=True, text=True, check=True,
    )


PASSWORDS = {"alice": "alice passphrase 1", "bob": "bob passphrase 22", "root": "root passphrase 333"}


def create_users(data_dir: Path) -> None:
    """alice in A, bob in B, root an admin in Ops (created before start, so the server knows them)."""
    run_cli(data_dir, "user", "add", "alice", "--group", "A", "--password-stdin", stdin=PASSWORDS["alice"] + "\n")
    run_cli(data_dir, "user", "add", "bob", "--group", "B", "--password-stdin", stdin=PASSWORDS["bob"] + "\n")
    run_cli(data_dir, "user", "add", "root", "--group", "Ops", "--role", "admin", "--password-stdin",
            stdin=PASSWORDS["root"] + "\n")


def read_user(data_dir: Path, name: str) -> User | None:
    """The account ``name`` in ``data_dir/users.db``, or None."""

    async def go() -> User | None:
        store = UserAccounts(SqliteUserRecords(data_dir / "users.db"))
        try:
            return await store.get(name)
        finally:
            await store.close()

    return asyncio.run(go())


def audit_entries(data_dir: Path) -> list[AuditEntry]:
    """Every entry of ``data_dir/audit.db``, oldest first."""

    async def go() -> list[AuditEntry]:
        log = AuditLog(SqliteAuditRecords(data_dir / "audit.db"))
        try:
            return await log.entries()
        finally:
            await log.close()

    return asyncio.run(go())
