"""Two servers on one PostgreSQL database list the same video registry (the video store is shared)."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg
import httpx

from tests.support.postgres import PostgresDatabase
from tests.support.server import ServerProcess


async def test_two_nodes_share_the_video_registry(
    data_dir: Path, tmp_path: Path, postgres_database: PostgresDatabase
) -> None:
    dsn = await postgres_database.fresh()
    other = tmp_path / "node-b"
    shutil.copytree(data_dir / "ca", other / "ca")
    with ServerProcess(data_dir, "--storage", dsn) as a, ServerProcess(other, "--storage", dsn) as b:
        base_a = f"http://127.0.0.1:{a.ports['http']}"
        base_b = f"http://127.0.0.1:{b.ports['http']}"
        body = {"videoConnections": [{"uuid": "shared-cam", "alias": "Shared",
                                      "feeds": [{"url": "rtsp://viewer:pw@media.example:8554/shared"}]}]}
        assert httpx.post(f"{base_a}/Marti/api/video", json=body, timeout=10).status_code == 200
        # Node B lists what node A stored (anonymous callers own nothing: the URL is redacted for them too).
        listed = httpx.get(f"{base_b}/Marti/api/video", timeout=10).json()["videoConnections"]
        assert [(c["uuid"], c["feeds"][0]["url"]) for c in listed] == [
            ("shared-cam", "rtsp://media.example:8554/shared")]
        assert httpx.delete(f"{base_b}/Marti/api/video/shared-cam", timeout=10).status_code == 200
        assert httpx.get(f"{base_a}/Marti/api/video/shared-cam", timeout=10).status_code == 404
    # The video store is its own migration family.
    conn = await asyncpg.connect(dsn)
    try:
        versions = await conn.fetch("SELECT version FROM schema_migrations WHERE family = 'video'")
    finally:
        await conn.close()
    assert [r["version"] for r in versions] == [1]
