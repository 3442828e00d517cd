"""Data package endpoints: shapes TAK clients parse, group filtering, upload limits."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from rallypoint.clock import ManualClock
from rallypoint.services.datapackages import DataPackageService, PackageLimits
from rallypoint.storage.files import FileBlobStore
from rallypoint.storage.sqlite.packages import SqlitePackageStore
from rallypoint.web.marti import sync
from tests.unit.web.test_marti_core import client_for, make_context

RED = {"x-principal": "red"}
BLUE = {"x-principal": "blue"}
BOTH = {"x-principal": "both"}


def package(text: str = "hello") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("MANIFEST/manifest.xml", (
            '<MissionPackageManifest version="2"><Configuration><Parameter name="uid" value="p-1"/>'
            '<Parameter name="name" value="Pkg"/></Configuration><Contents>'
            '<Content ignore="false" zipEntry="u1/u1.cot"/></Contents></MissionPackageManifest>'
        ))
        zf.writestr("u1/u1.cot", f"<event uid='u1'>{text}</event>")
    return buf.getvalue()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[TestClient, sync.SyncFeature]]:
    ctx = make_context(tmp_path, ManualClock())
    service = DataPackageService(FileBlobStore(tmp_path / "blobs"), SqlitePackageStore(tmp_path / "packages.db"),
                                 ctx.clock,
                                 PackageLimits(max_upload_bytes=256 * 1024))
    feature = sync.SyncFeature(ctx, service)
    with client_for(feature) as client:
        yield client, feature


def upload(client: TestClient, data: bytes, headers: dict[str, str], **params: str) -> object:
    return client.post("/Marti/sync/missionupload", params={"filename": "pkg.zip", "creatorUid": "ANDROID-1", **params},
                       files={"assetfile": ("pkg.zip", data, "application/x-zip-compressed")}, headers=headers)


def test_mission_package_round_trip(setup: tuple[TestClient, sync.SyncFeature], tmp_path: Path) -> None:
    client, _ = setup
    data = package()
    digest = hashlib.sha256(data).hexdigest()
    assert client.get(f"/Marti/sync/missionquery?hash={digest}", headers=RED).status_code == 404
    r = upload(client, data, RED, hash=digest)
    assert r.status_code == 200  # type: ignore[attr-defined]
    url = f"https://tak.example:8443/Marti/sync/content?hash={digest}"
    assert r.text == url and r.headers["content-type"].startswith("text/plain")  # type: ignore[attr-defined]
    assert (tmp_path / "blobs" / digest[:2] / digest[2:4] / digest).read_bytes() == data
    q = client.get(f"/Marti/sync/missionquery?hash={digest}", headers=RED)
    assert q.status_code == 200 and q.text == url
    # The URL follows the Host the client used.
    q = client.get(f"/Marti/sync/missionquery?hash={digest}", headers={**RED, "host": "10.1.2.3:8443"})
    assert q.text == f"https://10.1.2.3:8443/Marti/sync/content?hash={digest}"
    got = client.get(f"/Marti/sync/content?hash={digest}", headers=RED)
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-disposition"] == 'attachment; filename="pkg.zip"'
    head = client.head(f"/Marti/sync/content?hash={digest}", headers=RED)
    assert head.status_code == 200 and head.content == b""
    assert client.head(f"/Marti/sync/content?hash={'0' * 64}", headers=RED).status_code == 404


def test_groups_hide_packages(setup: tuple[TestClient, sync.SyncFeature]) -> None:
    client, _ = setup
    data = package()
    digest = hashlib.sha256(data).hexdigest()
    assert upload(client, data, RED).status_code == 200  # type: ignore[attr-defined]
    assert client.get(f"/Marti/sync/missionquery?hash={digest}", headers=BLUE).status_code == 404
    assert client.get(f"/Marti/sync/content?hash={digest}", headers=BLUE).status_code == 404
    assert client.get("/Marti/sync/search?keywords=missionpackage", headers=BLUE).json() == {
        "resultCount": 0, "results": []}
    assert client.put(f"/Marti/api/sync/metadata/{digest}/tool", content=b"private", headers=BLUE).status_code == 404
    assert client.get(f"/Marti/sync/content?hash={digest}", headers=BOTH).status_code == 200


def test_search_metadata_shape_and_tool(setup: tuple[TestClient, sync.SyncFeature]) -> None:
    client, _ = setup
    data = package()
    digest = hashlib.sha256(data).hexdigest()
    upload(client, data, RED)
    answer = client.get("/Marti/sync/search?keywords=missionpackage", headers=RED)
    # As TAK Server's SearchServlet: a charset on the type (node-tak parses the text itself then).
    assert answer.headers["content-type"] == "application/json;charset=UTF-8"
    doc = answer.json()
    assert doc["resultCount"] == 1
    item = doc["results"][0]
    # TAK Server's Metadata holds every scalar as a string: Size, PrimaryKey and EXPIRATION too.
    assert item["Hash"] == digest and item["Name"] == "pkg.zip" and item["Size"] == str(len(data))
    assert item["Keywords"] == ["missionpackage"] and item["Tool"] == "public" and item["CreatorUid"] == "ANDROID-1"
    assert item["SubmissionUser"] == "red" and item["UID"] == "p-1" and item["EXPIRATION"] == "-1"
    assert item["MIMEType"] == "application/x-zip-compressed" and item["SubmissionDateTime"].endswith("Z")
    assert isinstance(item["PrimaryKey"], str) and item["PrimaryKey"].isdigit()
    r = client.put(f"/Marti/api/sync/metadata/{digest}/tool", content=b"private", headers=RED)
    assert r.status_code == 200
    assert client.get("/Marti/sync/search?tool=public", headers=RED).json()["resultCount"] == 0
    assert client.get("/Marti/sync/search?tool=private", headers=RED).json()["results"][0]["Tool"] == "private"
    # Private packages stay out of other readers' unfiltered searches.
    assert client.get("/Marti/sync/search", headers=BOTH).json()["resultCount"] == 0
    assert client.put(f"/Marti/api/sync/metadata/{digest}/tool", content=b"secret", headers=RED).status_code == 400


def test_generic_upload_returns_metadata(setup: tuple[TestClient, sync.SyncFeature]) -> None:
    client, _ = setup
    r = client.post("/Marti/sync/upload?name=notes.txt&keywords=doc,field&creatorUid=U1", content=b"plain notes",
                    headers={**RED, "content-type": "text/plain"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json;charset=UTF-8"
    meta = r.json()
    assert meta["Name"] == "notes.txt" and meta["Keywords"] == ["doc", "field"] and meta["MIMEType"] == "text/plain"
    assert meta["Size"] == "11" and meta["CreatorUid"] == "U1"
    assert meta["Hash"] == hashlib.sha256(b"plain notes").hexdigest()
    assert client.get(f"/Marti/sync/content?hash={meta['Hash']}", headers=RED).content == b"plain notes"


def test_upload_refusals(setup: tuple[TestClient, sync.SyncFeature]) -> None:
    client, feature = setup
    data = package()
    assert upload(client, data, RED, hash="ab" * 32).status_code == 400  # type: ignore[attr-defined]
    r = client.post("/Marti/sync/missionupload?filename=x.zip", files={"assetfile": ("x.zip", b"not a zip")},
                    headers=RED)
    assert r.status_code == 400 and "zip" in r.text
    r = client.post("/Marti/sync/missionupload?filename=x.zip",
                    files=[("assetfile", ("x.zip", data)), ("resource", ("y.zip", data))], headers=RED)
    assert r.status_code == 400 and "multiple_files" in r.text
    r = client.post("/Marti/sync/missionupload?filename=x.zip", files={"note": (None, "x")}, headers=RED)
    assert r.status_code == 400 and "missing_file" in r.text
    big = bytes(300 * 1024)
    r = client.post("/Marti/sync/upload?name=big.bin", content=big, headers=RED)
    assert r.status_code == 413
    # Nothing is left behind by refused uploads: no blobs, no spool files.
    blobs = feature.service.blobs.root
    assert [p for p in blobs.rglob("*") if p.is_file()] == []
    assert client.get("/Marti/sync/search", headers=RED).json()["resultCount"] == 0


def test_same_content_twice_is_one_blob(setup: tuple[TestClient, sync.SyncFeature]) -> None:
    client, feature = setup
    data = package()
    digest = hashlib.sha256(data).hexdigest()
    first = upload(client, data, RED)
    second = upload(client, data, BLUE)
    assert first.text == second.text  # type: ignore[attr-defined]
    files = [p for p in feature.service.blobs.root.rglob("*") if p.is_file()]
    assert [p.name for p in files] == [digest]
    # The second uploader reads its own upload of it; a reader of both groups sees each upload.
    assert client.get(f"/Marti/sync/missionquery?hash={digest}", headers=BLUE).status_code == 200
    found = client.get("/Marti/sync/search", headers=BOTH).json()
    assert [(r["Hash"], r["SubmissionUser"]) for r in found["results"]] == [(digest, "red"), (digest, "blue")]
    assert [r["SubmissionUser"] for r in client.get("/Marti/sync/search", headers=BLUE).json()["results"]] == [
        "blue"]


def test_filenames_are_sanitized(setup: tuple[TestClient, sync.SyncFeature]) -> None:
    client, _ = setup
    data = package("x")
    digest = hashlib.sha256(data).hexdigest()
    r = client.post('/Marti/sync/missionupload', params={"filename": '../../etc/pa"ss\r\nwd.zip'},
                    files={"assetfile": ("a.zip", data)}, headers=RED)
    assert r.status_code == 200
    got = client.get(f"/Marti/sync/content?hash={digest}", headers=RED)
    assert got.headers["content-disposition"] == 'attachment; filename="pa_sswd.zip"'
