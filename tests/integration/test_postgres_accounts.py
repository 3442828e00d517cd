"""Two nodes' worth of tools on one PostgreSQL database: accounts, their changes and the audit chain are shared.

The command line works in one data directory and the server in another; only ``--storage`` (and
``RALLYPOINT_STORAGE`` for the command line) joins them, as it joins several nodes.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.postgres import PostgresDatabase
from tests.support.server import ServerProcess

PASSWORD = "alice passphrase 1"


def _cli(data_dir: Path, dsn: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rallypoint.cli.main", *args, "--data-dir", str(data_dir)],
        input=stdin, capture_output=True, text=True, check=True, env={**os.environ, "RALLYPOINT_STORAGE": dsn},
    )


def _tls_config(server: ServerProcess) -> int:
    verify = ssl.create_default_context(cafile=str(server.data_dir / "ca" / "ca.pem"))
    with httpx.Client(verify=verify, auth=("alice", PASSWORD), timeout=10) as http:
        return http.get(f"https://127.0.0.1:{server.ports['enroll']}/Marti/api/tls/config").status_code


async def test_accounts_and_audit_chain_are_shared_through_postgresql(
    data_dir: Path, tmp_path: Path, postgres_database: PostgresDatabase
) -> None:
    dsn = await postgres_database.fresh()
    tools = tmp_path / "other-node"
    shutil.copytree(data_dir / "ca", tools / "ca")
    _cli(tools, dsn, "user", "add", "alice", "--group", "A", "--password-stdin", stdin=PASSWORD + "\n")
    assert not (tools / "users.db").exists() and not (tools / "audit.db").exists()

    server = ServerProcess(data_dir, "--storage", dsn)
    server.start()
    try:
        assert _tls_config(server) == 200
        _cli(tools, dsn, "user", "disable", "alice")
        assert _tls_config(server) == 401
        _cli(tools, dsn, "user", "enable", "alice")
        assert _tls_config(server) == 200
    finally:
        server.stop()

    assert not (data_dir / "users.db").exists() and not (data_dir / "audit.db").exists()
    verified = _cli(tools, dsn, "audit", "verify")
    assert "audit log OK" in verified.stdout
    entries = json.loads(_cli(tools, dsn, "audit", "list", "--json").stdout)
    actions = [e["action"] for e in entries]
    assert actions[:1] == ["user.add"] and "user.disable" in actions and "user.enable" in actions
    # The server appended to the same chain (its start, logins refused while disabled, ...).
    assert any(e["actor"] != entries[0]["actor"] for e in entries), actions
