"""A real HLS stream for tests: ffmpeg's test pattern cut into segments, served by a loopback HTTP server.

``hls_stream(dir)`` runs ffmpeg (``testsrc``, 320x240, H.264 in MPEG-TS segments of one second, a VOD
playlist ``index.m3u8``) and skips the test, saying why, when ffmpeg or its H.264 encoder is missing.
``HlsServer`` serves a directory like a media server would (``video/mp2t``, the HLS playlist type),
optionally behind Basic authentication, plus a few hostile answers: ``/fake.ts`` is an HTML page,
``/moved.m3u8`` a redirect, ``/huge.m3u8`` a playlist of more than 1 MiB, ``/notm3u.m3u8`` plain text.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

WIDTH, HEIGHT = 320, 240


def hls_stream(out: Path, seconds: int = 6) -> Path:
    """Segments and ``index.m3u8`` of a test pattern in ``out``; the playlist's path."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed (Debian package ffmpeg): no real HLS stream to play")
    encoders = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True, check=False)
    if "libx264" not in encoders.stdout:
        pytest.skip("this ffmpeg has no libx264 encoder: no H.264 stream for the browser to play")
    out.mkdir(parents=True, exist_ok=True)
    playlist = out / "index.m3u8"
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"testsrc=size={WIDTH}x{HEIGHT}:rate=10", "-t", str(seconds), "-c:v", "libx264",
         "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "10", "-f", "hls", "-hls_time", "1",
         "-hls_list_size", "0", "-hls_playlist_type", "vod", "-hls_segment_filename", str(out / "seg%03d.ts"),
         str(playlist)],
        check=True, timeout=120,
    )
    return playlist


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t", "": "application/octet-stream"}
    credentials: str | None = None

    def do_GET(self) -> None:
        if self.credentials is not None:
            expected = "Basic " + base64.b64encode(self.credentials.encode()).decode()
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="media"')
                self.end_headers()
                return
        path = self.path.split("?")[0]
        if path == "/fake.ts":
            return self._answer(200, "text/html", b"<html><body>login page</body></html>")
        if path == "/moved.m3u8":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere.m3u8")
            self.end_headers()
            return None
        if path == "/huge.m3u8":
            return self._answer(200, "application/vnd.apple.mpegurl", b"#EXTM3U\n" + b"#" * (1 << 20) + b"\n")
        if path == "/notm3u.m3u8":
            return self._answer(200, "application/vnd.apple.mpegurl", b"user=admin\npassword=hunter2\n")
        super().do_GET()
        return None

    def _answer(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def hls_server(root: Path, *, credentials: str | None = None) -> Iterator[str]:
    """Serve ``root`` on a loopback port; yields the base URL (``http://127.0.0.1:PORT``)."""
    handler = type("Handler", (_Handler,), {"credentials": credentials})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
