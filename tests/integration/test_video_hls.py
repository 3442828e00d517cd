"""HLS through the server (``GET /api/video/{uid}/hls/{name}``) against a real server and a real stream:
ffmpeg's test pattern served over HTTP behind Basic authentication, registered through the Marti video API.

The playlist and its segments come through with the feed's credentials added by the server and never
shown; another group's caller gets 404; what is not HLS (an HTML page named .ts, a text file named
.m3u8, a redirect, a playlist over 1 MiB, a key file) is refused with 502 and counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.certs import client_context
from tests.support.groups import serve_with_groups
from tests.support.hls import hls_server, hls_stream
from tests.support.server import ServerProcess

CREDENTIALS = "viewer:stream-secret-7"


@pytest.fixture
def group_server(data_dir: Path) -> Iterator[ServerProcess]:
    with serve_with_groups(data_dir, {"red1": ["Red"], "red2": ["Red"], "blue1": ["Blue"]}) as proc:
        yield proc


@pytest.fixture
def stream(tmp_path: Path) -> Iterator[str]:
    hls_stream(tmp_path / "hls")
    (tmp_path / "hls" / "stream.key").write_bytes(bytes(16))
    with hls_server(tmp_path / "hls", credentials=CREDENTIALS) as base:
        yield base


def _http(srv: ServerProcess, name: str, tmp_path: Path) -> httpx.Client:
    return httpx.Client(base_url=f"https://127.0.0.1:{srv.ports['api']}",
                        verify=client_context(srv, name, tmp_path), timeout=30)


def _register(http: httpx.Client, uid: str, url: str) -> None:
    body = {"videoConnections": [{"uuid": uid, "alias": f"{uid} camera", "active": True,
                                  "feeds": [{"uuid": uid, "alias": f"{uid} camera", "url": url}]}]}
    assert http.post("/Marti/api/video", json=body).status_code == 200


def test_a_real_hls_stream_plays_through_the_server_for_its_groups_only(
    group_server: ServerProcess, stream: str, tmp_path: Path,
) -> None:
    user, password = CREDENTIALS.split(":")
    with (_http(group_server, "red1", tmp_path) as red1, _http(group_server, "red2", tmp_path) as red2,
          _http(group_server, "blue1", tmp_path) as blue1):
        _register(red1, "pattern", f"http://{user}:{password}@{stream.removeprefix('http://')}/index.m3u8")
        # Another reader of Red: the listing hides the password, the relay still uses it.
        listed = red2.get("/api/video").json()
        assert password not in str(listed)
        answer = red2.get("/api/video/pattern/hls/index.m3u8")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        assert answer.headers["cache-control"] == "no-store"
        playlist = answer.text
        assert playlist.startswith("#EXTM3U") and password not in playlist
        segments = [line for line in playlist.splitlines() if line and not line.startswith("#")]
        assert segments and all("/" not in s for s in segments)  # bare names, fetched through here again
        segment = red2.get(f"/api/video/pattern/hls/{segments[0]}")
        assert segment.status_code == 200 and segment.headers["content-type"] == "video/mp2t"
        assert segment.content[:1] == b"\x47" and len(segment.content) % 188 == 0
        # Blue does not read Red: the feed does not exist for it.
        assert blue1.get("/api/video/pattern/hls/index.m3u8").status_code == 404
        assert blue1.get(f"/api/video/pattern/hls/{segments[0]}").status_code == 404


# Registered URL, file asked for, expected status and error.
HOSTILE = [
    ("/index.m3u8", "fake.ts", 502, "not_hls"),          # an HTML login page where a segment should be
    ("/notm3u.m3u8", "notm3u.m3u8", 502, "not_hls"),    # text that is not a playlist
    ("/moved.m3u8", "moved.m3u8", 502, "not_hls"),      # a redirect is not followed
    ("/huge.m3u8", "huge.m3u8", 502, "too_large"),      # more than 1 MiB of playlist
    ("/index.m3u8", "stream.key", 502, "not_hls"),      # not an HLS media file
    ("/index.m3u8", ".hidden.ts", 400, "bad_name"),
    ("/index.m3u8", "-x.ts", 400, "bad_name"),
]


def test_what_is_not_hls_is_refused_and_counted(group_server: ServerProcess, stream: str, tmp_path: Path) -> None:
    user, password = CREDENTIALS.split(":")
    with _http(group_server, "red1", tmp_path) as red1:
        for i, (path, name, status, error) in enumerate(HOSTILE):
            _register(red1, f"odd-{i}", f"http://{user}:{password}@{stream.removeprefix('http://')}{path}")
            answer = red1.get(f"/api/video/odd-{i}/hls/{name}")
            assert (answer.status_code, answer.json()["error"]) == (status, error), (name, answer.text)
            assert password not in answer.text
    metrics = httpx.get(f"http://127.0.0.1:{group_server.ports['http']}/metrics").text
    refused = [line for line in metrics.splitlines()
               if line.startswith('rallypoint_events_rejected_total{reason="video_hls_refused",transport="http"}')]
    assert refused and float(refused[0].split()[-1]) == 5.0


def test_feeds_that_are_not_hls_or_do_not_answer(group_server: ServerProcess, tmp_path: Path) -> None:
    with _http(group_server, "red1", tmp_path) as red1:
        _register(red1, "rtsp-cam", "rtsp://10.1.2.3:8554/gate")
        assert red1.get("/api/video/rtsp-cam/hls/gate").json()["error"] == "not_hls"
        assert red1.get("/api/video/nobody/hls/index.m3u8").status_code == 404
        _register(red1, "gone", "http://127.0.0.1:9/index.m3u8")  # nothing listens on the discard port
        answer = red1.get("/api/video/gone/hls/index.m3u8")
        assert answer.status_code == 502 and answer.json()["error"] == "upstream_unreachable"
