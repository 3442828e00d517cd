"""Bad Marti requests are answered in our words (TAK Server's 400), counted and logged, over real HTTPS."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx

from tests.support.certs import client_context
from tests.support.cot_client import CotClient, sa
from tests.support.metrics import metric_value
from tests.support.server import ServerProcess

API = "/Marti/api/missions"
LIBRARY_WORDS = ("`", "Expected", "$.", "JSON is malformed", "Invalid enum", "Opening and ending tag")


def _refused(answer: httpx.Response, words: str) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.text == words
    assert not any(w in answer.text for w in LIBRARY_WORDS), answer.text


async def test_mission_requests_say_what_is_allowed(server: ServerProcess, tmp_path: Path) -> None:
    base = f"https://127.0.0.1:{server.ports['api']}"
    async with httpx.AsyncClient(base_url=base, verify=client_context(server, "alice", tmp_path),
                                 timeout=10) as http:
        made = await http.put(f"{API}/Op", params={"creatorUid": "uid-alice"})
        assert made.status_code == 201, made.text

        _refused(await http.put(f"{API}/Soon", params={"expiration": "soon"}),
                 "expiration must be a whole number (got 'soon')")
        _refused(await http.put(f"{API}/Boss", params={"defaultRole": "boss"}),
                 "defaultRole must be one of: MISSION_OWNER, MISSION_SUBSCRIBER, MISSION_READONLY_SUBSCRIBER "
                 "(got 'boss')")
        _refused(await http.get(f"{API}/Op/changes", params={"start": "yesterday"}),
                 "start must be an ISO 8601 time such as 2024-05-01T12:00:00Z (got 'yesterday')")
        _refused(await http.put(f"{API}/Op/invite/pigeon/bob", params={"creatorUid": "uid-alice"}),
                 "the invitation type must be one of: clientUid, callsign, group (got 'pigeon')")
        _refused(await http.put(f"{API}/Op/contents", params={"creatorUid": "uid-alice"},
                                json={"hashes": "abc"}),
                 "hashes must be a list (got 'abc')")
        _refused(await http.put(f"{API}/Op/contents", params={"creatorUid": "uid-alice"},
                                content=b'{"hashes": [abc]}'),
                 "the body is not valid JSON (error at byte 12)")
        _refused(await http.put(f"{API}/Op/keywords", params={"creatorUid": "uid-alice"}, json=["ok", 7]),
                 "the body[1] must be text (got 7)")
        # Nothing of the refused requests happened.
        assert (await http.get(f"{API}/Soon")).status_code == 404
        assert (await http.get(f"{API}/Op")).json()["data"][0]["keywords"] == []
    assert metric_value(server, "rallypoint_events_rejected_total",
                        reason="mission_bad_request", transport="http") == 7
    server.wait_for_log("mission request refused")


async def test_group_activation_body_in_our_words(server: ServerProcess, tmp_path: Path,
                                                  clients: list[object]) -> None:
    ctx = client_context(server, "alice", tmp_path)
    alice = await CotClient.connect(server.ports["tls"], ssl_context=ctx)
    bob = await CotClient.connect(server.ports["tls"], ssl_context=client_context(server, "bob", tmp_path))
    clients.extend([alice, bob])
    await alice.send(sa("uid-alice", "ALICE"))
    await bob.wait_uid("uid-alice")  # routed, so the server knows alice's session by its uid
    url = f"https://127.0.0.1:{server.ports['api']}/Marti/api/groups/active"
    async with httpx.AsyncClient(verify=ctx, timeout=10) as http:
        answer = await http.put(url, params={"clientUid": "uid-alice"}, json=[{"name": "__ANON__"}])
        _refused(answer, "the body[0].direction is required")
        _refused(await http.put(url, params={"clientUid": "uid-alice"}, content=b"[{"),
                 "the body is not valid JSON")
        _refused(await http.put(url, params={"clientUid": "uid-alice"}, json={"name": "Red"}),
                 "the body must be a list")
    assert metric_value(server, "rallypoint_events_rejected_total",
                        reason="groups_bad_body", transport="http") == 3


async def test_broken_manifest_says_where(server: ServerProcess, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("MANIFEST/manifest.xml", b"<MissionPackageManifest version='2'><Contents></Manifest>")
    url = f"https://127.0.0.1:{server.ports['api']}/Marti/sync/missionupload"
    async with httpx.AsyncClient(verify=client_context(server, "alice", tmp_path), timeout=10) as http:
        answer = await http.post(url, params={"filename": "p.zip"}, files={"assetfile": ("p.zip", buf.getvalue())})
    _refused(answer, "manifest_invalid: not well-formed XML (line 1, column 58)")

