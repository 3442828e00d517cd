"""The ATAK mission package send flow against the real server, over HTTPS and TLS with client certificates."""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree

from tests.support.certs import client_context
from tests.support.cot_client import CotClient, cot, sa
from tests.support.groups import serve_with_groups
from tests.support.server import ServerProcess


@pytest.fixture
def group_server(data_dir: Path) -> Iterator[ServerProcess]:
    with serve_with_groups(data_dir, {"alice": ["Red"], "bob": ["Red"], "eve": ["Blue"]}) as proc:
        yield proc


def mission_package(marker: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.comment = b"Created by ATAK. Mission Package version 2"
        zf.writestr("MANIFEST/manifest.xml", (
            '<MissionPackageManifest version="2"><Configuration>'
            f'<Parameter name="uid" value="{marker}"/><Parameter name="name" value="{marker}.zip"/>'
            '<Parameter name="onReceiveDelete" value="false"/></Configuration><Contents>'
            '<Content ignore="false" zipEntry="pt-1/pt-1.cot"><Parameter name="uid" value="pt-1"/></Content>'
            '</Contents></MissionPackageManifest>'
        ))
        zf.writestr("pt-1/pt-1.cot", cot("pt-1", "b-m-p-s-m").decode())
    return buf.getvalue()


async def test_mission_package_send_flow(group_server: ServerProcess, tmp_path: Path, clients: list[object]) -> None:
    srv = group_server
    api = f"https://127.0.0.1:{srv.ports['api']}"
    ctx_alice, ctx_bob, ctx_eve = (client_context(srv, n, tmp_path) for n in ("alice", "bob", "eve"))
    alice = await CotClient.connect(srv.ports["tls"], ssl_context=ctx_alice)
    bob = await CotClient.connect(srv.ports["tls"], ssl_context=ctx_bob)
    eve = await CotClient.connect(srv.ports["tls"], ssl_context=ctx_eve)
    clients.extend([alice, bob, eve])
    await alice.send(sa("ANDROID-alice", "ALICE"))
    await bob.send(sa("ANDROID-bob", "BOB"))
    await eve.send(sa("ANDROID-eve", "EVE"))
    await bob.wait_uid("ANDROID-alice")
    await alice.wait_uid("ANDROID-bob")

    data = mission_package("flow")
    digest = hashlib.sha256(data).hexdigest()
    async with httpx.AsyncClient(verify=ctx_alice, timeout=10) as http:
        # 1. Is it on the server already?
        assert (await http.get(f"{api}/Marti/sync/missionquery", params={"hash": digest})).status_code == 404
        # 2. Upload it.
        r = await http.post(f"{api}/Marti/sync/missionupload",
                      params={"hash": digest, "filename": "flow.zip", "creatorUid": "ANDROID-alice"},
                      files={"assetfile": ("flow.zip", data, "application/x-zip-compressed")})
        assert r.status_code == 200, r.text
        url = r.text
        assert url == f"{api}/Marti/sync/content?hash={digest}"
        assert (await http.get(f"{api}/Marti/sync/missionquery", params={"hash": digest})).text == url
        # 3. Mark it private (a send to contacts).
        r = await http.put(f"{api}/Marti/api/sync/metadata/{digest}/tool", content=b"private",
                     headers={"content-type": "text/plain"})
        assert r.status_code == 200
    # 4. The file transfer request, addressed to BOB.
    request_uid = str(uuid.uuid4())
    ack_uid = str(uuid.uuid4())
    fileshare = (f'<fileshare filename="flow.zip" name="flow" senderCallsign="ALICE" senderUid="ANDROID-alice" '
                 f'senderUrl="{url}" sha256="{digest}" sizeInBytes="{len(data)}"/>')
    await alice.send(cot(request_uid, "b-f-t-r", how="h-e", stale_s=10, detail=(
        f'{fileshare}<ackrequest uid="{ack_uid}" ackrequested="true" tag="flow"/>'
        '<marti><dest callsign="BOB"/></marti>')))
    received = await bob.wait_uid(request_uid)
    assert received.type == "b-f-t-r"
    frame = next(raw for raw in bob.raw if request_uid.encode() in raw)
    share = etree.fromstring(frame).find("detail/fileshare")
    assert share is not None and share.get("sha256") == digest
    # 5. The receiver downloads with its own certificate and checks the hash.
    async with httpx.AsyncClient(verify=ctx_bob, timeout=10) as http:
        got = await http.get(share.get("senderUrl"))
        assert got.status_code == 200
        assert hashlib.sha256(got.content).hexdigest() == digest == share.get("sha256")
        assert int(share.get("sizeInBytes")) == len(got.content)
    ack = str(uuid.uuid4())
    await bob.send(cot(ack, "b-f-t-a", how="m-g", detail=(
        f'{fileshare}<ackresponse uid="{ack_uid}" success="true" senderUid="ANDROID-bob"/>'
        '<marti><dest callsign="ALICE"/></marti>')))
    assert (await alice.wait_uid(ack)).type == "b-f-t-a"
    # Eve (another group) saw neither message.
    await eve.barrier(eve_peer := await CotClient.connect(srv.ports["tls"], ssl_context=ctx_eve))
    clients.append(eve_peer)
    assert not eve.has(lambda e: e.uid in (request_uid, ack))


async def test_packages_are_invisible_across_groups(group_server: ServerProcess, tmp_path: Path) -> None:
    srv = group_server
    api = f"https://127.0.0.1:{srv.ports['api']}"
    data = mission_package("secret")
    digest = hashlib.sha256(data).hexdigest()
    async with httpx.AsyncClient(verify=client_context(srv, "alice", tmp_path), timeout=10) as alice:
        r = await alice.post(f"{api}/Marti/sync/missionupload", params={"filename": "secret.zip"},
                       files={"assetfile": ("secret.zip", data)})
        assert r.status_code == 200
        # The URL follows the Host header the client used, not the bound address.
        q = await alice.get(f"{api}/Marti/sync/missionquery", params={"hash": digest},
                      headers={"host": f"tak.example.org:{srv.ports['api']}"})
        assert q.text == f"https://tak.example.org:{srv.ports['api']}/Marti/sync/content?hash={digest}"
        found = await alice.get(f"{api}/Marti/sync/search", params={"keywords": "missionpackage"})
        assert found.json()["resultCount"] == 1
    async with httpx.AsyncClient(verify=client_context(srv, "eve", tmp_path), timeout=10) as eve:
        assert (await eve.get(f"{api}/Marti/sync/missionquery", params={"hash": digest})).status_code == 404
        assert (await eve.get(f"{api}/Marti/sync/content", params={"hash": digest})).status_code == 404
        assert (await eve.head(f"{api}/Marti/sync/content", params={"hash": digest})).status_code == 404
        assert (await eve.get(f"{api}/Marti/sync/search", params={"keywords": "missionpackage"})).json() == {
            "resultCount": 0, "results": []}
        assert (await eve.put(f"{api}/Marti/api/sync/metadata/{digest}/tool", content=b"public")).status_code == 404
    async with httpx.AsyncClient(verify=client_context(srv, "bob", tmp_path), timeout=10) as bob:
        assert (await bob.get(f"{api}/Marti/sync/content", params={"hash": digest})).content == data
    # Anonymous plain HTTP (loopback) reads __ANON__ only.
    async with httpx.AsyncClient(timeout=10) as plain:
        anon = await plain.get(f"http://127.0.0.1:{srv.ports['http']}/Marti/sync/content", params={"hash": digest})
    assert anon.status_code == 404


async def test_hostile_upload_rejected_and_counted(group_server: ServerProcess, tmp_path: Path) -> None:
    srv = group_server
    api = f"https://127.0.0.1:{srv.ports['api']}"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("x")
        info.filename = "../../escape.cot"
        zf.writestr(info, b"<event/>")
    async with httpx.AsyncClient(verify=client_context(srv, "alice", tmp_path), timeout=10) as alice:
        r = await alice.post(f"{api}/Marti/sync/missionupload", params={"filename": "evil.zip"},
                       files={"assetfile": ("evil.zip", buf.getvalue())})
        assert r.status_code == 400 and "zip_path" in r.text
    async with httpx.AsyncClient(timeout=10) as plain:
        metrics = (await plain.get(f"http://127.0.0.1:{srv.ports['http']}/metrics")).text
    assert 'rallypoint_events_rejected_total{reason="zip_path",transport="http"} 1.0' in metrics
    assert not any(p.name == "escape.cot" for p in srv.data_dir.rglob("*"))
    blob_files = [p for p in (srv.data_dir / "blobs").rglob("*") if p.is_file()]
    assert blob_files == []


async def test_same_bytes_in_two_groups_keep_separate_descriptions(group_server: ServerProcess, tmp_path: Path) -> None:
    srv = group_server
    api = f"https://127.0.0.1:{srv.ports['api']}"
    data = b"identical bytes held by Blue and Red"
    digest = hashlib.sha256(data).hexdigest()
    blob = srv.data_dir / "blobs" / digest[:2] / digest[2:4] / digest
    secrets = ("blue-secret.zip", "bluekw", '"eve"', '"Blue"', "ANDROID-eve")

    def leaks(text: str) -> list[str]:
        return [s for s in secrets if s in text]

    eve = httpx.AsyncClient(base_url=api, verify=client_context(srv, "eve", tmp_path), timeout=10)
    alice = httpx.AsyncClient(base_url=api, verify=client_context(srv, "alice", tmp_path), timeout=10)
    bob = httpx.AsyncClient(base_url=api, verify=client_context(srv, "bob", tmp_path), timeout=10)
    try:
        up = await eve.post("/Marti/sync/upload", params={
            "name": "blue-secret.zip", "keywords": "bluekw", "creatorUid": "ANDROID-eve"},
            files={"assetfile": ("blue-secret.zip", data)})
        assert up.status_code == 200, up.text
        blue_view = up.json()
        up = await alice.post("/Marti/sync/upload", params={"name": "red.zip", "keywords": "redkw"},
                              files={"assetfile": ("red.zip", data)})
        assert up.status_code == 200, up.text
        assert up.json()["Hash"] == digest and not leaks(up.text)
        assert (up.json()["Name"], up.json()["SubmissionUser"], up.json()["Groups"]) == ("red.zip", "alice", ["Red"])

        made = await bob.put("/Marti/api/missions/RedOp", params={"creatorUid": "ANDROID-bob"})
        assert made.status_code in (200, 201), made.text
        added = await bob.put("/Marti/api/missions/RedOp/contents", params={"creatorUid": "ANDROID-bob"},
                              json={"hashes": [digest]})
        assert added.status_code == 200, added.text
        for red in (alice, bob):
            answers = [
                await red.get("/Marti/sync/missionquery", params={"hash": digest}),
                await red.get("/Marti/sync/search"),
                await red.get("/Marti/sync/search", params={"keywords": "bluekw"}),
                await red.get("/api/packages"),
                await red.get(f"/api/packages/{digest}"),
                await red.get("/api/missions/RedOp"),
                await red.get("/Marti/api/missions/RedOp"),
            ]
            for answer in answers:
                assert answer.status_code == 200, (answer.url, answer.text)
                assert not leaks(answer.text), (answer.url, answer.text)
            assert [r["Name"] for r in answers[1].json()["results"]] == ["red.zip"]
            assert answers[2].json()["resultCount"] == 0
            assert [(p["name"], p["submitter"], p["groups"]) for p in answers[3].json()] == [
                ("red.zip", "alice", ["Red"])]
            assert [c["name"] for c in answers[5].json()["contents"]] == ["red.zip"]
            for method in ("GET", "HEAD"):
                got = await red.request(method, "/Marti/sync/content", params={"hash": digest})
                assert got.status_code == 200 and 'filename="red.zip"' in got.headers["content-disposition"]
                assert not leaks(str(got.headers))
            native = await red.get(f"/api/packages/{digest}/content")
            assert native.content == data and 'filename="red.zip"' in native.headers["content-disposition"]

        # Blue's view is unchanged.
        found = (await eve.get("/Marti/sync/search")).json()
        assert found["results"] == [blue_view]
        one = (await eve.get(f"/api/packages/{digest}")).json()
        assert (one["name"], one["submitter"], one["groups"], one["keywords"]) == (
            "blue-secret.zip", "eve", ["Blue"], ["bluekw"])

        # Bob (Red, not the submitter) may neither delete nor retool alice's upload, nor eve's.
        assert (await bob.delete(f"/api/packages/{digest}")).status_code == 403
        assert (await bob.put(f"/Marti/api/sync/metadata/{digest}/tool", content=b"private")).status_code == 403
        # Red deleting its upload leaves Blue's package in place.
        assert (await alice.delete(f"/api/packages/{digest}")).status_code == 200
        assert (await alice.get("/Marti/sync/missionquery", params={"hash": digest})).status_code == 404
        assert (await bob.get("/Marti/sync/content", params={"hash": digest})).status_code == 404
        assert (await eve.get("/Marti/sync/content", params={"hash": digest})).content == data
        assert (await eve.get("/Marti/sync/search")).json()["results"] == [blue_view]
        assert blob.is_file()
        # The last upload takes the content with it.
        assert (await eve.delete(f"/api/packages/{digest}")).status_code == 200
        assert (await eve.get("/Marti/sync/content", params={"hash": digest})).status_code == 404
        assert not blob.exists()
    finally:
        for client in (eve, alice, bob):
            await client.aclose()


async def test_download_urls_use_the_configured_public_host(data_dir: Path, tmp_path: Path) -> None:
    # Behind NAT or a port forward the Host header a client sends may be an internal name; the
    # configured public address is what other devices can reach.
    with serve_with_groups(data_dir, {"alice": ["Red"]}, env={"RALLYPOINT_PUBLIC_HOST": "tak.example.net"}) as srv:
        api = f"https://127.0.0.1:{srv.ports['api']}"
        data = mission_package("public-host")
        digest = hashlib.sha256(data).hexdigest()
        async with httpx.AsyncClient(verify=client_context(srv, "alice", tmp_path), timeout=10) as alice:
            r = await alice.post(f"{api}/Marti/sync/missionupload", params={"filename": "p.zip"},
                                 files={"assetfile": ("p.zip", data)})
            assert r.status_code == 200
            assert r.text == f"https://tak.example.net:{srv.ports['api']}/Marti/sync/content?hash={digest}"
            q = await alice.get(f"{api}/Marti/sync/missionquery", params={"hash": digest},
                                headers={"host": f"10.0.0.7:{srv.ports['api']}"})
            assert q.text == f"https://tak.example.net:{srv.ports['api']}/Marti/sync/content?hash={digest}"
