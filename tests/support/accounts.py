"""Running the CLI, reading the account store and the audit log it or a server wrote (synchronous tests)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from rallypoint.security.audit import AuditEntry, AuditLog
from rallypoint.security.users import SqliteUserStore, User


def run_cli(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``rallypoint ARGS --data-dir DATA_DIR`` as an operator would; fails the test if it fails."""
    return subprocess.run(
        [sys.executable, "-m", "rallypoint.cli.main", *args, "--data-dir", str(data_dir)],
        input=stdin, capture_output=True, text=True, check=True,
    )


def read_user(data_dir: Path, name: str) -> User | None:
    """The account ``name`` in ``data_dir/users.db``, or None."""

    async def go() -> User | None:
        store = SqliteUserStore(data_dir / "users.db")
        try:
            return await store.get(name)
        finally:
            await store.close()

    return asyncio.run(go())


def audit_entries(data_dir: Path) -> list[AuditEntry]:
    """Every entry of ``data_dir/audit.db``, oldest first."""

    async def go() -> list[AuditEntry]:
        log = AuditLog.open(data_dir / "audit.db")
        try:
            return await log.entries()
        finally:
            await log.close()

    return asyncio.run(go())
