"""The video registry against the real server: Marti video API over HTTPS with client certificates,
group isolation, credential redaction, refusals, and a b-i-v CoT over a TLS stream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.certs import client_context
from tests.support.cot_client import CotClient, cot
from tests.support.groups import serve_with_groups
from tests.support.poll import wait_until_sync
from tests.support.server import ServerProcess

SECRET_URL = "rtsp://camuser:s3cret@10.1.2.3:8554/gate?token=abc123&tcp=1"
SHOWN_URL = "rtsp://10.1.2.3:8554/gate?token=REDACTED&tcp=1"

# As ATAK's video tool posts a connection (TAK Server's VideoConnection JSON, client fields included).
ATAK_JSON = {
    "videoConnections": [{
        "uuid": "gate-cam", "active": True, "alias": "Gate camera", "thumbnail": None, "classification": None,
        "feeds": [{"uuid": "gate-cam", "active": True, "alias": "Gate camera", "url": SECRET_URL,
                   "order": None, "macAddress": "", "roverPort": "-1", "ignoreEmbeddedKLV": "false",
                   "source": None, "networkTimeout": "12000", "bufferTime": "-1", "rtspReliable": "0",
                   "latitude": "38.85", "longitude": "-77.03", "fov": None, "heading": None, "range": None}],
    }]
}
# As the legacy video manager posts to /Marti/vcm.
VCM_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<videoConnections><feed><uid>blue-uas</uid><active>true</active><alias>Blue UAS</alias>
<protocol>srt</protocol><address>10.9.9.9</address><port>8890</port><path>/uas</path><roverPort>-1</roverPort>
<ignoreEmbeddedKLV>false</ignoreEmbeddedKLV><preferredMacAddress></preferredMacAddress>
<preferredInterfaceAddress></preferredInterfaceAddress><timeout>5000</timeout><buffer>-1</buffer>
<rtspReliable>0</rtspReliable></feed></videoConnections>"""


@pytest.fixture
def group_server(data_dir: Path) -> Iterator[ServerProcess]:
    groups = {"red1": ["Red"], "red2": ["Red"], "blue1": ["Blue"], "both": ["Red", "Blue"]}
    with serve_with_groups(data_dir, groups) as proc:
        yield proc


def _http(srv: ServerProcess, name: str, tmp_path: Path) -> httpx.Client:
    return httpx.Client(base_url=f"https://127.0.0.1:{srv.ports['api']}",
                        verify=client_context(srv, name, tmp_path), timeout=10)


def _feeds(http: httpx.Client) -> dict[str, dict[str, object]]:
    doc = http.get("/Marti/api/video").json()
    return {c["uuid"]: c["feeds"][0] for c in doc["videoConnections"]}


def test_marti_video_groups_and_redaction(group_server: ServerProcess, tmp_path: Path) -> None:
    srv = group_server
    with (_http(srv, "red1", tmp_path) as red1, _http(srv, "red2", tmp_path) as red2,
          _http(srv, "blue1", tmp_path) as blue1, _http(srv, "both", tmp_path) as both):
        r = red1.post("/Marti/api/video", json=ATAK_JSON)
        assert r.status_code == 200, r.text
        # The adder sees its URL whole; another reader of Red sees it without credentials.
        assert _feeds(red1)["gate-cam"]["url"] == SECRET_URL
        seen = _feeds(both)["gate-cam"]
        assert seen["url"] == SHOWN_URL and seen["latitude"] == "38.85" and seen["alias"] == "Gate camera"
        assert "s3cret" not in both.get("/Marti/vcm").text and "abc123" not in both.get("/Marti/vcm").text
        assert both.get("/Marti/api/video/gate-cam").json()["feeds"][0]["url"] == SHOWN_URL
        # Blue does not see it at all, and cannot tell it exists.
        assert _feeds(blue1) == {}
        assert blue1.get("/Marti/api/video/gate-cam").status_code == 404
        assert blue1.delete("/Marti/api/video/gate-cam").status_code == 404
        assert b"gate-cam" not in blue1.get("/Marti/vcm").content

        # Blue registers over the legacy XML route; Red-only callers never see it.
        r = blue1.post("/Marti/vcm", content=VCM_XML, headers={"content-type": "application/xml"})
        assert r.status_code == 200, r.text
        vcm = blue1.get("/Marti/vcm")
        assert vcm.headers["content-type"].startswith("application/xml")
        assert b"<uid>blue-uas</uid>" in vcm.content and b"<url>srt://10.9.9.9:8890/uas</url>" in vcm.content
        assert b"<address>10.9.9.9</address>" in vcm.content and b"<port>8890</port>" in vcm.content
        assert "blue-uas" not in _feeds(red1)
        assert set(_feeds(both)) == {"gate-cam", "blue-uas"}

        # Another Red writer renames the feed, sending back the redacted URL: the credentials stay.
        body = both.get("/Marti/api/video/gate-cam").json()
        body["alias"] = "North gate"
        r = red2.put("/Marti/api/video/gate-cam", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["feeds"][0]["url"] == SHOWN_URL
        assert _feeds(red1)["gate-cam"]["url"] == SECRET_URL
        assert red1.get("/Marti/api/video/gate-cam").json()["alias"] == "North gate"
        # Blue cannot take over Red's uid.
        assert blue1.put("/Marti/api/video/gate-cam", json=body).status_code == 403

        assert red2.delete("/Marti/api/video/gate-cam").status_code == 200
        assert red1.get("/Marti/api/video/gate-cam").status_code == 404


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "javascript:alert(1)", "http://10.0.0.1/clip.mp4", "rtsp://", "ftp://h/x.m3u8",
    "rtsp://h/" + "a" * 3000, "rtsp://h/with space",
])
def test_bad_urls_are_refused(group_server: ServerProcess, tmp_path: Path, url: str) -> None:
    with _http(group_server, "red1", tmp_path) as red1:
        body = {"videoConnections": [{"uuid": "bad", "alias": "Bad", "feeds": [{"url": url}]}]}
        r = red1.post("/Marti/api/video", json=body)
        assert r.status_code == 400 and r.text.startswith("video connection refused: "), r.text
        assert _feeds(red1) == {}


def test_hostile_and_malformed_bodies(group_server: ServerProcess, tmp_path: Path) -> None:
    with _http(group_server, "red1", tmp_path) as red1:
        bomb = (b'<?xml version="1.0"?><!DOCTYPE v [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                b"<videoConnections><feed><uid>&b;</uid><url>rtsp://h/x</url></feed></videoConnections>")
        assert red1.post("/Marti/vcm", content=bomb).status_code == 400
        assert red1.post("/Marti/vcm", content=b"<videoConnections><feed>").status_code == 400
        assert red1.post("/Marti/vcm", content=b"<other/>").status_code == 400
        assert red1.post("/Marti/api/video", content=b"{not json").status_code == 400
        assert red1.post("/Marti/api/video", json={"videoConnections": [{"feeds": "x"}]}).status_code == 400
        big = b"<videoConnections>" + b"<feed><uid>x</uid></feed>" * 20_000 + b"</videoConnections>"
        assert red1.post("/Marti/vcm", content=big).status_code == 413
        assert _feeds(red1) == {}
        # The registry still works after all that.
        ok = {"videoConnections": [{"uuid": "ok", "alias": "OK", "feeds": [{"url": "https://h/live/index.m3u8"}]}]}
        assert red1.post("/Marti/api/video", json=ok).status_code == 200
        metrics = httpx.get(f"http://127.0.0.1:{group_server.ports['http']}/metrics", timeout=10).text
        assert 'rallypoint_events_rejected_total{reason="video_bad_request",transport="http"}' in metrics


async def test_video_cot_registers_for_the_senders_groups(group_server: ServerProcess, tmp_path: Path,
                                                          clients: list[object]) -> None:
    srv = group_server
    red = await CotClient.connect(srv.ports["tls"], ssl_context=client_context(srv, "red1", tmp_path))
    clients.append(red)
    # As ATAK shares a video alias: b-i-v with <__video> and its ConnectionEntry.
    detail = ('<__video url="rtsp://op:pw@192.168.1.50:554/drone"><ConnectionEntry networkTimeout="12000" '
              'uid="drone-1" path="/drone" protocol="rtsp" bufferTime="-1" address="192.168.1.50" port="554" '
              'roverPort="-1" rtspReliable="0" ignoreEmbeddedKLV="false" alias="Drone 1"/></__video>'
              '<contact callsign="Drone 1"/>')
    await red.send(cot("drone-1", "b-i-v", detail=detail, lat=38.9, lon=-77.0))
    await red.send(cot("no-video", "b-i-v", detail='<__video url="file:///etc/passwd"/>'))
    with _http(srv, "both", tmp_path) as both, _http(srv, "blue1", tmp_path) as blue1:
        feed = wait_until_sync(lambda: _feeds(both).get("drone-1"), "the b-i-v feed registered")
        assert feed["url"] == "rtsp://192.168.1.50:554/drone" and feed["alias"] == "Drone 1"
        assert feed["latitude"] == "38.9"
        assert "no-video" not in _feeds(both)
        assert _feeds(blue1) == {}
    with _http(srv, "red1", tmp_path) as red1:
        assert _feeds(red1)["drone-1"]["url"] == "rtsp://op:pw@192.168.1.50:554/drone"


def test_native_video_api(group_server: ServerProcess, tmp_path: Path) -> None:
    srv = group_server
    with (_http(srv, "red1", tmp_path) as red1, _http(srv, "blue1", tmp_path) as blue1,
          _http(srv, "both", tmp_path) as both):
        body = {"uid": "uas-2", "alias": "UAS 2",
                "feeds": [{"url": "srt://10.0.0.7:8890?streamid=publish:uas2&passphrase=longsecret", "latitude": 38.8,
                           "longitude": -77.1}]}
        r = red1.post("/api/video", json=body)
        assert r.status_code == 201, r.text
        assert r.json()["feeds"][0]["url"].endswith("passphrase=longsecret")
        assert r.json()["groups"] == ["Red"] and r.json()["owner"] == "red1"
        listed = both.get("/api/video").json()
        assert [c["uid"] for c in listed] == ["uas-2"]
        assert listed[0]["feeds"][0]["url"] == "srt://10.0.0.7:8890?streamid=REDACTED&passphrase=REDACTED"
        assert blue1.get("/api/video").json() == []
        # The same registry as the Marti API.
        assert "uas-2" in _feeds(both)
        bad = red1.post("/api/video", json={"alias": "x", "feeds": [{"url": "gopher://h/x"}]})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_video"
        assert red1.post("/api/video", json={"alias": "x", "feeds": [], "extra": 1}).status_code in (400, 422)
        assert blue1.delete("/api/video/uas-2").status_code == 404
        assert red1.delete("/api/video/uas-2").status_code == 204
        assert red1.get("/api/video").json() == []
