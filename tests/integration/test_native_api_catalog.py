"""``/api/packages`` and ``/api/missions`` on the real server, fed through the Marti endpoints."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.certs import client_context
from tests.support.groups import serve_with_groups
from tests.support.server import ServerProcess


@pytest.fixture
def group_server(data_dir: Path) -> Iterator[ServerProcess]:
    with serve_with_groups(data_dir, {"red1": ["Red"], "red2": ["Red"], "blue1": ["Blue"]}) as proc:
        yield proc


def archive() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("notes.txt", "rally at the bridge")
    return buf.getvalue()


async def test_catalog_shows_what_marti_stored_to_its_groups_only(group_server: ServerProcess, tmp_path: Path) -> None:
    srv = group_server
    base = f"https://127.0.0.1:{srv.ports['api']}"
    data = archive()
    digest = hashlib.sha256(data).hexdigest()
    async with httpx.AsyncClient(base_url=base, verify=client_context(srv, "red1", tmp_path), timeout=10) as red1:
        up = await red1.post("/Marti/sync/missionupload", params={"filename": "notes.zip", "creatorUid": "uid-red1"},
                             files={"assetfile": ("notes.zip", data)})
        assert up.status_code == 200, up.text
        made = await red1.put("/Marti/api/missions/Op", params={"creatorUid": "uid-red1", "description": "op"})
        assert made.status_code in (200, 201), made.text
        added = await red1.put("/Marti/api/missions/Op/contents", params={"creatorUid": "uid-red1"},
                               json={"hashes": [digest], "uids": ["uid-marker"]})
        assert added.status_code == 200, added.text

    async with httpx.AsyncClient(base_url=base, verify=client_context(srv, "red2", tmp_path), timeout=10) as red2:
        packages = (await red2.get("/api/packages")).json()
        assert [(p["hash"], p["name"], p["submitter"], p["groups"]) for p in packages] == [
            (digest, "notes.zip", "red1", ["Red"])]
        one = await red2.get(f"/api/packages/{digest}")
        assert one.status_code == 200
        # The advertised link serves the bytes to the same caller.
        url = one.json()["download_url"]
        assert url == f"{base}/Marti/sync/content?hash={digest}"
        assert (await red2.get(url)).content == data

        missions = (await red2.get("/api/missions")).json()
        assert [(m["name"], m["contents_count"], m["uids_count"]) for m in missions] == [("Op", 1, 1)]
        detail = await red2.get("/api/missions/Op")
        assert detail.status_code == 200
        # Mission contents are described from the package store.
        assert [(c["hash"], c["name"]) for c in detail.json()["contents"]] == [(digest, "notes.zip")]
        assert detail.json()["uids"] == ["uid-marker"]

    async with httpx.AsyncClient(base_url=base, verify=client_context(srv, "blue1", tmp_path), timeout=10) as blue1:
        assert (await blue1.get("/api/packages")).json() == []
        assert (await blue1.get(f"/api/packages/{digest}")).status_code == 404
        assert (await blue1.get("/api/missions")).json() == []
        assert (await blue1.get("/api/missions/Op")).status_code == 404

    # Anonymous plain HTTP (loopback) reads __ANON__ only.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.ports['http']}", timeout=10) as plain:
        assert (await plain.get("/api/packages")).json() == []
        assert (await plain.get("/api/missions/Op")).status_code == 404
