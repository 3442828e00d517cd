"""Two servers on one PostgreSQL database: an account, its token and a data package are shared.

Each node has its own data directory; they share the CA, the token signing key and the package
content directory (``blobs/``, mounted in both), and everything else through ``--storage``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.postgres import PostgresDatabase
from tests.support.server import ServerProcess

PASSWORD = "alice passphrase 1"


async def test_two_nodes_share_accounts_tokens_and_packages(
    data_dir: Path, tmp_path: Path, postgres_database: PostgresDatabase
) -> None:
    dsn = await postgres_database.fresh()
    other = tmp_path / "node-b"
    shutil.copytree(data_dir / "ca", other / "ca")
    (data_dir / "blobs").mkdir()
    (other / "blobs").symlink_to(data_dir / "blobs")
    subprocess.run(
        [sys.executable, "-m", "rallypoint.cli.main", "user", "add", "alice", "--group", "A", "--password-stdin",
         "--data-dir", str(data_dir)],
        input=PASSWORD + "\n", capture_output=True, text=True, check=True,
        env={**os.environ, "RALLYPOINT_STORAGE": dsn},
    )
    with ServerProcess(data_dir, "--storage", dsn) as a, ServerProcess(other, "--storage", dsn) as b:
        base_a = f"http://127.0.0.1:{a.ports['http']}"
        base_b = f"http://127.0.0.1:{b.ports['http']}"
        login = httpx.post(f"{base_a}/oauth/token",
                           data={"grant_type": "password", "username": "alice", "password": PASSWORD})
        assert login.status_code == 200, login.text
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        shutil.copy(data_dir / "token-signing.key", other / "token-signing.key")

        uploaded = httpx.post(f"{base_a}/Marti/sync/upload", params={"name": "notes.txt", "creatorUid": "ANDROID-1"},
                              content=b"field notes", headers={**bearer, "Content-Type": "text/plain"})
        assert uploaded.status_code == 200, uploaded.text
        # Node B accepts node A's token and lists and serves the package node A stored.
        found = httpx.get(f"{base_b}/Marti/sync/search", headers=bearer)
        assert found.status_code == 200, found.text
        (result,) = found.json()["results"]
        assert result["Name"] == "notes.txt" and result["CreatorUid"] == "ANDROID-1"
        content = httpx.get(f"{base_b}/Marti/sync/content", params={"hash": result["Hash"]}, headers=bearer)
        assert content.status_code == 200 and content.content == b"field notes"
