"""Property tests: arbitrary bytes in arbitrary chunks never break the framers or the connection.

The normal run tries ``RALLYPOINT_FUZZ_EXAMPLES`` (default 2500) cases per test, over 10,000 in
all. For a longer fuzz campaign raise it and lift the per-test timeout, for example::

    RALLYPOINT_FUZZ_EXAMPLES=200000 .venv/bin/pytest -p no:xdist --timeout=0 \
        tests/unit/protocol/test_framing_properties.py tests/unit/protocol/test_xml_decoder.py

(``test_xml_decoder.py`` reads the same variable for its detail property.) Hypothesis keeps
failing examples in ``.hypothesis/`` and replays them first on the next run.
"""

from __future__ import annotations

import itertools
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rallypoint.errors import RemoteProtocolError
from rallypoint.protocol import (
    NEED_DATA,
    CotConnection,
    Limits,
    ProtoStreamFramer,
    UpgradeRequested,
    XmlDecoder,
    XmlStreamFramer,
    parse_event,
)
from rallypoint.protocol.wire import encode_varint
from tests.unit.protocol.conftest import PLI, sample

EXAMPLES = int(os.environ.get("RALLYPOINT_FUZZ_EXAMPLES", "2500"))
LIMITS = Limits(max_event_bytes=200, max_buffer_bytes=64 * 1024)
PLI_BYTES = sample(PLI).strip()

# Pieces that exercise the interesting paths far more often than uniform random bytes would.
PIECES = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [
            b"<event",
            b"<event ",
            b"</event>",
            b"<?xml version='1.0'?>",
            b"<auth>",
            b"\xbf",
            b"\xbf\x01\xbf",
            b"\xff" * 11,
            b'<event uid="a" type="a-f-G" how="m-g"><point lat="0" lon="0"/></event>',
            PLI_BYTES[:150],
            PLI_BYTES[150:],
        ]
    ),
    st.integers(min_value=0, max_value=2**70).map(lambda n: b"\xbf" + encode_varint(n)),
    st.binary(max_size=30).map(lambda p: b"\xbf" + encode_varint(len(p)) + p),
)
STREAMS = st.lists(PIECES, max_size=30).map(b"".join)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def run(framer: XmlStreamFramer | ProtoStreamFramer, data: bytes, cuts: list[int], bound: int) -> list[bytes]:
    frames: list[bytes] = []
    for chunk in chunked(data, cuts):
        framer.feed(chunk)
        while True:
            try:
                frame = framer.next_frame()
            except RemoteProtocolError as exc:
                assert not exc.fatal
                continue
            if frame is None:
                break
            frames.append(frame)
        assert framer.buffered <= bound
    return frames


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STREAMS, st.lists(st.integers(min_value=0, max_value=10_000), max_size=20))
def test_xml_framer_survives_anything(data: bytes, cuts: list[int]) -> None:
    frames = run(XmlStreamFramer(LIMITS), data, cuts, LIMITS.max_event_bytes)
    for frame in frames:
        assert frame.startswith(b"<event") and frame.endswith(b"</event>")
        assert len(frame) <= LIMITS.max_event_bytes


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STREAMS, st.lists(st.integers(min_value=0, max_value=10_000), max_size=20))
def test_proto_framer_survives_anything(data: bytes, cuts: list[int]) -> None:
    frames = run(ProtoStreamFramer(LIMITS), data, cuts, LIMITS.max_event_bytes + 11)
    assert all(0 < len(frame) <= LIMITS.max_event_bytes for frame in frames)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400) | STREAMS, st.booleans())
def test_connection_never_raises_on_garbage(data: bytes, upgrade: bool) -> None:
    conn = CotConnection(Limits())
    if upgrade:
        request = (
            b'<event version="2.0" uid="s" type="t-x-takp-q" how="m-g" time="2024-01-01T00:00:00Z" '
            b'start="2024-01-01T00:00:00Z" stale="2024-01-01T00:01:00Z"><point lat="0" lon="0"/>'
            b'<detail><TakControl><TakRequest version="1"/></TakControl></detail></event>'
        )
        conn.receive_data(request)
        assert conn.next_event() == UpgradeRequested(1)
        conn.respond_upgrade(True, 0)
    conn.receive_data(data)
    conn.receive_data(b"")
    for _ in range(10_000):
        ev = conn.next_event()
        assert ev is not NEED_DATA
        if type(ev).__name__ == "ConnectionClosed":
            break


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(PLI_BYTES) - 1), st.binary(min_size=1, max_size=8))
def test_mutated_events_fail_only_with_remote_protocol_error(pos: int, junk: bytes) -> None:
    data = PLI_BYTES[:pos] + junk + PLI_BYTES[pos + len(junk) :]
    try:
        event = parse_event(data, Limits())
    except RemoteProtocolError:
        return
    assert event.raw == data.strip()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=len(PLI_BYTES) - 1), st.binary(min_size=1, max_size=8))))
def test_one_decoder_agrees_with_parse_event_on_mutated_events(mutations: list[tuple[int, bytes]]) -> None:
    # A single decoder sees every mutant in turn, so state left by one (parser, caches) would show.
    decoder = XmlDecoder(Limits())
    for pos, junk in [(0, b"<"), *mutations]:
        data = PLI_BYTES[:pos] + junk + PLI_BYTES[pos + len(junk) :]
        try:
            expected: object = parse_event(data, Limits())
        except RemoteProtocolError as exc:
            expected = exc.reason
        try:
            got: object = decoder.decode(data)
        except RemoteProtocolError as exc:
            got = exc.reason
        assert got == expected
