"""UDP, HTTP-poll and file-watch runners on loopback: decode, pause, change detection, failures counted."""

from __future__ import annotations

import asyncio
import os
import random
import socket
from datetime import datetime
from pathlib import Path

import pytest

from rallypoint.clock import ManualClock
from rallypoint.connectors.base import Rejects
from rallypoint.connectors.runners.datagram import UdpRunner
from rallypoint.connectors.runners.documents import FileWatchRunner, HttpPollRunner
from rallypoint.connectors.runners.http_get import HttpFetchError, parse_answer, request_bytes
from rallypoint.model.track import Observation
from tests.support.poll import wait_until
from tests.unit.connectors.runner_support import Collected, LineDecoder, running


class LinesDocument:
    """A document decoder over the test line format: each document is a set of lines."""

    def __init__(self) -> None:
        self.rejects = Rejects()
        self.documents: list[bytes] = []

    def decode(self, document: bytes, received_at: datetime) -> list[Observation]:
        self.documents.append(document)
        lines = LineDecoder()
        out = lines.receive(document + b"\n", received_at)
        if lines.rejects.total:
            self.rejects.add("malformed", lines.rejects.total)
        return out


async def test_udp_decodes_datagrams_and_drops_them_while_paused() -> None:
    sink = Collected()
    runner = UdpRunner("u", "127.0.0.1", 0, LineDecoder, ManualClock(), sink)
    async with running(runner):
        await runner.bound.wait()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # A forwarder that omits the final newline still decodes; a bad datagram is only counted.
        sock.sendto(b"m1,1,1", ("127.0.0.1", runner.port))
        sock.sendto(b"junk\n", ("127.0.0.1", runner.port))
        sock.sendto(b"m2,2,2\n", ("127.0.0.1", runner.port))
        await wait_until(lambda: sink.ids() == ["m1", "m2"], "datagrams decoded")
        runner.pause()
        sock.sendto(b"m3,3,3\n", ("127.0.0.1", runner.port))
        await wait_until(lambda: runner.statistics().dropped_paused == 1, "paused datagram dropped")
        runner.resume()
        sock.sendto(b"m4,4,4\n", ("127.0.0.1", runner.port))
        await wait_until(lambda: sink.ids() == ["m1", "m2", "m4"], "decoding again")
        sock.close()
        stats = runner.statistics()
    assert stats.rejects == {"malformed": 1} and stats.connected and stats.observations == 3


def test_udp_multicast_socket_joins_the_group() -> None:
    from rallypoint.connectors.runners.datagram import feed_socket

    try:
        sock = feed_socket("239.2.3.99", 0, multicast="239.2.3.99", interface="127.0.0.1")
    except OSError as exc:  # a host without a multicast route
        pytest.skip(f"multicast not available here: {exc}")
    sock.close()
    with pytest.raises(ValueError):
        feed_socket("127.0.0.1", 0, multicast="127.0.0.1")


class FakeHttp:
    """An HTTP server answering from a list of (status, headers, body) and recording requests."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str], bytes]] = []
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.requests.append(await reader.readuntil(b"\r\n\r\n"))
        status, headers, body = self.answers.pop(0) if self.answers else (500, {}, b"")
        head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()
        writer.close()


async def test_http_poll_uses_etags_counts_failures_and_recovers() -> None:
    http = FakeHttp()
    await http.start()
    body = b"p1,1,1\np2,2,2"
    http.answers = [
        (200, {"Content-Length": str(len(body)), "ETag": '"v1"'}, body),
        (304, {}, b""),
        (503, {"Content-Length": "0"}, b""),
        (200, {"Transfer-Encoding": "chunked"}, b"6\r\np3,3,3\r\n0\r\n\r\n"),
    ]
    sink = Collected()
    runner = HttpPollRunner("h", f"http://127.0.0.1:{http.port}/data/aircraft.json", LinesDocument, ManualClock(),
                            sink, random.Random(3), interval_s=0.01, backoff_max_s=0.02)
    async with running(runner):
        await wait_until(lambda: sink.ids() == ["p1", "p2", "p3"], "documents decoded")
        stats = runner.statistics()
    assert b"If-None-Match: \"v1\"" in http.requests[1]
    assert b"GET /data/aircraft.json HTTP/1.1" in http.requests[0]
    assert stats.documents == 2  # the 304 decoded nothing
    assert stats.rejects["http_status"] >= 1 and stats.reconnects >= 1


async def test_http_poll_refuses_an_oversized_document() -> None:
    http = FakeHttp()
    await http.start()
    http.answers = [(200, {"Content-Length": "5000"}, b"x" * 5000)] * 3
    runner = HttpPollRunner("h", f"http://127.0.0.1:{http.port}/a.json", LinesDocument, ManualClock(), Collected(),
                            random.Random(3), interval_s=0.01, max_bytes=1000, backoff_max_s=0.02)
    async with running(runner):
        await wait_until(lambda: runner.statistics().rejects.get("too_large"), "oversized answer refused")
    assert runner.statistics().documents == 0


async def test_http_poll_of_nobody_is_counted_and_retried() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now
    runner = HttpPollRunner("h", f"http://127.0.0.1:{port}/a.json", LinesDocument, ManualClock(), Collected(),
                            random.Random(3), interval_s=0.01, backoff_max_s=0.02)
    async with running(runner):
        await wait_until(lambda: runner.checks >= 2, "two attempts")
    stats = runner.statistics()
    assert stats.rejects["http_unreachable"] >= 2 and not stats.connected and stats.last_error


def test_answer_parser() -> None:
    answer = parse_answer(b"HTTP/1.1 200 OK\r\nETag: \"a\"\r\nContent-Length: 3\r\n\r\nabcdef", max_bytes=10)
    assert (answer.status, answer.headers["etag"], answer.body) == (200, '"a"', b"abc")
    assert parse_answer(b"HTTP/1.0 200 OK\r\n\r\nuntil close", max_bytes=100).body == b"until close"
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    assert parse_answer(chunked, max_bytes=100).body == b"abcde"
    for raw, reason in [
        (b"garbage", "http_malformed"),
        (b"SMTP 220\r\n\r\n", "http_malformed"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", "http_truncated"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nabc", "too_large"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "http_malformed"),
    ]:
        with pytest.raises(HttpFetchError) as err:
            parse_answer(raw, max_bytes=50)
        assert err.value.reason == reason
    request = request_bytes("http://h:8080/a?b=1", etag='"e"', last_modified="Mon, 01 Jan 2024 00:00:00 GMT")
    assert request.startswith(b"GET /a?b=1 HTTP/1.1\r\nHost: h:8080\r\n")
    assert b"If-Modified-Since: Mon, 01 Jan 2024" in request


async def test_file_watch_decodes_on_change_only(tmp_path: Path) -> None:
    path = tmp_path / "layer.txt"
    path.write_bytes(b"f1,1,1")
    sink = Collected()
    decoder = LinesDocument()
    runner = FileWatchRunner("f", str(path), lambda: decoder, ManualClock(), sink, interval_s=0.01)
    async with running(runner):
        await wait_until(lambda: sink.ids() == ["f1"], "first read")
        # Touched (new mtime) but the same bytes: the hash says nothing changed.
        checks = runner.checks
        os.utime(path, ns=(1, 1))
        await wait_until(lambda: runner.checks > checks + 2, "checked after touch")
        assert len(decoder.documents) == 1
        path.write_bytes(b"f1,1,1\nf2,2,2")
        await wait_until(lambda: sink.ids() == ["f1", "f1", "f2"], "changed file decoded again")
        path.unlink()
        await wait_until(lambda: not runner.statistics().connected, "missing file noticed")
        stats = runner.statistics()
    assert stats.documents == 2 and stats.last_error is not None
