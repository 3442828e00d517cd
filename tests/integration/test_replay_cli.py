"""``rallypoint replay``: a stored window sent into a real server (received by PyTAK) or written to files."""

from __future__ import annotations

import asyncio
import configparser
import csv
import io
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from fastkml import kml

from rallypoint.protocol.limits import Limits
from rallypoint.protocol.timefmt import parse_time
from rallypoint.protocol.xml_codec import parse_event
from rallypoint.storage.base import StoredEvent
from rallypoint.storage.export import iso_ms
from rallypoint.storage.factory import open_event_store
from tests.support.postgres import PostgresDatabase
from tests.support.server import ServerProcess
from tests.support.stored import T0, make_event

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pytak

SPEED = 20
# Two units moving north every 4 s over a minute, one of group B, and an addressed row (a direct chat).
ROWS = [
    *(make_event("u-alpha", time=T0 + i * 4000, lat=10 + i / 100, lon=20, callsign="ALPHA", groups=("A",))
      for i in range(15)),
    *(make_event("u-bravo", time=T0 + 2000 + i * 8000, lat=11, lon=21 + i / 100, callsign="BRAVO", groups=("B",))
      for i in range(7)),
    make_event("chat-1", type="b-t-f", time=T0 + 3000, groups=(), sender="alice"),
    make_event("u-far", time=T0 + 5000, lat=-40, lon=170, callsign="FAR", groups=("A",)),
]
WINDOW = ("--since", iso_ms(T0), "--until", iso_ms(T0 + 60_000))


def seed(url: str, data_dir: Path, rows: list[StoredEvent]) -> None:
    async def go() -> None:
        store = open_event_store(url, data_dir)
        try:
            await store.append(rows)
        finally:
            await store.close()

    asyncio.run(go())


def replay(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rallypoint.cli.main", "replay", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, check=check, timeout=120)


@pytest.fixture
def history(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    source.mkdir()
    seed("sqlite://", source, ROWS)
    return source


async def _frames(reader: asyncio.StreamReader, count: int, prefix: bytes, timeout: float = 30.0) -> list[bytes]:
    """The first ``count`` events whose uid starts with ``prefix``, in arrival order."""
    buf, found = b"", []
    async with asyncio.timeout(timeout):
        while len(found) < count:
            chunk = await reader.read(65536)
            assert chunk, "the server closed the connection"
            buf += chunk
            while (end := buf.find(b"</event>")) >= 0:
                frame, buf = buf[: end + 8], buf[end + 8:]
                frame = frame[frame.find(b"<event"):]
                if b'uid="' + prefix in frame:
                    found.append(frame)
    return found


async def test_replay_into_a_live_server_keeps_order_and_scaled_spacing(history: Path, server: ServerProcess) -> None:
    parser = configparser.ConfigParser()
    parser["replay"] = {"COT_URL": f"tcp://127.0.0.1:{server.ports['cot']}"}
    reader, writer = await pytak.protocol_factory(parser["replay"])
    try:
        # The server's protocol offer: from then on the session is registered and receives the picture.
        await _wait_offer(reader)
        done = await asyncio.to_thread(replay, history, *WINDOW, "--speed", str(SPEED),
                                       "--to", f"tcp://127.0.0.1:{server.ports['cot']}")
        # Broadcast rows only: the addressed chat stays out.
        expected = sorted((r for r in ROWS if r.groups), key=lambda r: r.time)
        assert f"sent {len(expected)} events" in done.stderr
        frames = await _frames(reader, len(expected), b"replay-")
    finally:
        writer.close()
    events = [parse_event(f, Limits()) for f in frames]
    assert [e.uid for e in events] == ["replay-" + r.uid for r in expected]
    times = [e.time for e in events]
    assert times == sorted(times)
    # Re-stamped to the moment each was due: the original spacing divided by the speed, lifetimes kept.
    assert [t - times[0] for t in times] == [round((r.time - expected[0].time) / SPEED) for r in expected]
    assert all(e.stale - e.time == r.stale - r.time for e, r in zip(events, expected, strict=True))
    assert times[0] > T0 + 86_400_000
    assert events[0].detail.callsign == "ALPHA"


async def _wait_offer(reader: asyncio.StreamReader) -> None:
    buf = b""
    async with asyncio.timeout(10):
        while b"t-x-takp-v" not in buf:
            chunk = await reader.read(65536)
            assert chunk
            buf += chunk


def test_replay_out_files_parse_back(history: Path, tmp_path: Path) -> None:
    in_window = [r for r in ROWS if T0 <= r.time < T0 + 60_000]
    out = tmp_path / "out"
    for name in ("w.kml", "w.geojson", "w.csv", "w.cot"):
        done = replay(history, *WINDOW, "--out", str(out / name))
        assert f"wrote {len(in_window)} events" in done.stderr

    doc = kml.KML.from_string((out / "w.kml").read_bytes().split(b"?>", 1)[1].decode())
    names = [mark.name for mark in doc.features[0].features]
    assert names.count("ALPHA") == 15 and names.count("BRAVO") == 7

    features = json.loads((out / "w.geojson").read_text())["features"]
    times = [f["properties"]["time"] for f in features]
    assert times == sorted(times) and len(features) == len(in_window)

    rows = list(csv.DictReader(io.StringIO((out / "w.csv").read_text())))
    assert [r["uid"] for r in rows] == [r.uid for r in sorted(in_window, key=lambda r: r.time)]

    stream = (out / "w.cot").read_bytes()
    assert stream.count(b"</event>") == len(in_window)
    assert parse_time(stream.split(b'time="', 1)[1].split(b'"', 1)[0].decode()) == T0

    # An area and a group narrow the window.
    replay(history, *WINDOW, "--bbox", "165,-45,175,-35", "--out", str(out / "far.geojson"))
    assert [f["properties"]["uid"] for f in json.loads((out / "far.geojson").read_text())["features"]] == ["u-far"]
    replay(history, *WINDOW, "--group", "B", "--out", str(out / "b.csv"))
    assert {r["uid"] for r in csv.DictReader(io.StringIO((out / "b.csv").read_text()))} == {"u-bravo"}


@pytest.mark.parametrize(("args", "words"), [
    (("--since", "2024-01-02T00:00:00Z", "--until", "2024-01-01T00:00:00Z", "--out", "x.csv"), "later than since"),
    (("--since", "2020-01-01T00:00:00Z", "--until", "2024-01-01T00:00:00Z", "--out", "x.csv"), "longer than"),
    (("--since", "yesterday-ish", "--out", "x.csv"), "neither ISO-8601"),
    (("--since", "-2h", "--out", "x.pdf"), ".kml, .geojson"),
    (("--since", "-2h", "--to", "http://127.0.0.1:1"), "tcp://host:port"),
    (("--since", "-2h"), "exactly one of"),
    (("--since", "-2h", "--to", "tcp://127.0.0.1:9", "--speed", "0"), "speed must be"),
])
def test_bad_arguments_are_refused_with_words(history: Path, tmp_path: Path, args: tuple[str, ...], words: str) -> None:
    done = replay(history, *(a if a != "x.csv" and a != "x.pdf" else str(tmp_path / a) for a in args), check=False)
    assert done.returncode == 2, done.stderr
    assert words in " ".join(done.stderr.split())


def test_replay_from_postgresql(postgres_database: PostgresDatabase, tmp_path: Path) -> None:
    dsn = asyncio.run(postgres_database.fresh())
    seed(dsn, tmp_path, ROWS)
    out = tmp_path / "pg.geojson"
    replay(tmp_path, *WINDOW, "--storage", dsn, "--out", str(out))
    features = json.loads(out.read_text())["features"]
    assert len(features) == len([r for r in ROWS if T0 <= r.time < T0 + 60_000])
