"""Hostile input against the real server: rejected, counted and logged; nothing else is affected.

Every attack runs inside an :class:`Attack` check: before it, a bystander's event is stored and
the counters are read; after it, the attack must show up in ``rallypoint_events_rejected_total``
with the expected reason and as a warning log line, other clients must still exchange traffic,
and the stored history must still hold the earlier event and none of the hostile ones.
"""

from __future__ import annotations

import asyncio
import re
import socket
import uuid
from collections.abc import Iterable

import httpx
import pytest

from tests.support.cot_client import CotClient, cot, sa
from tests.support.poll import wait_until
from tests.support.server import ServerProcess

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<event version="2.0" uid="laughs" type="a-f-G" how="m-g" time="2026-01-01T00:00:00Z" start="2026-01-01T00:00:00Z"
 stale="2099-01-01T00:00:00Z"><point lat="1" lon="1" hae="0" ce="0" le="0"/>
<detail><remarks>&lol3;</remarks></detail></event>"""

XXE = b"""<!DOCTYPE event [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<event version="2.0" uid="xxe" type="a-f-G" how="m-g" time="2026-01-01T00:00:00Z" start="2026-01-01T00:00:00Z"
 stale="2099-01-01T00:00:00Z"><point lat="1" lon="1" hae="0" ce="0" le="0"/>
<detail><remarks>&xxe;</remarks></detail></event>"""

# Every uid a hostile payload below carries: none of them may ever be routed or stored.
HOSTILE_UIDS = frozenset({"laughs", "xxe", "x", "nan-1", "inf-1", "lat-91", "badtime", "deep", "big"})


def _metrics(server: ServerProcess) -> str:
    return httpx.get(f"http://127.0.0.1:{server.ports['http']}/metrics", timeout=5).text


def _counts(text: str, metric: str) -> dict[tuple[str, str], float]:
    """``(reason, transport) -> value`` for a counter labelled by reason and transport."""
    pattern = rf'{metric}\{{reason="([^"]+)",transport="([^"]+)"\}} ([0-9.e+]+)'
    return {(m.group(1), m.group(2)): float(m.group(3)) for m in re.finditer(pattern, text)}


def _rejected(server: ServerProcess) -> dict[tuple[str, str], float]:
    return _counts(_metrics(server), "rallypoint_events_rejected_total")


def _stored(server: ServerProcess, **query: str) -> list[str]:
    """Uids in the stored history (native API, anonymous on the loopback HTTP port)."""
    answer = httpx.get(
        f"http://127.0.0.1:{server.ports['http']}/api/history", params={"limit": "1000", **query}, timeout=5
    )
    assert answer.status_code == 200, answer.text
    return [row["uid"] for row in answer.json()["events"]]


async def _until_stored(server: ServerProcess, uid: str, timeout: float = 10.0) -> None:
    """Storage writes in batches off the hot path: poll until ``uid`` is in the history."""
    await wait_until(lambda: uid in _stored(server, uid=uid), f"{uid} reaching storage", timeout)


def peer_of(writer: asyncio.StreamWriter | None) -> str:
    """How the server names a client in its logs: ``host:port`` of the client's socket."""
    assert writer is not None
    host, port = writer.get_extra_info("sockname")[:2]
    return f"{host}:{port}"


class Attack:
    """The checks every hostile case shares: armed before the attack, verified after it."""

    def __init__(self, server: ServerProcess, witness: CotClient, bystander: CotClient) -> None:
        self.server = server
        self.witness = witness
        self.bystander = bystander
        self.before: dict[tuple[str, str], float] = {}
        self.stored_before = f"stored-before-{uuid.uuid4().hex[:8]}"

    @classmethod
    async def arm(cls, server: ServerProcess, clients: list[object]) -> Attack:
        """Connect a witness and a bystander, store one event, read the counters."""
        witness = await CotClient.connect(server.ports["cot"])
        bystander = await CotClient.connect(server.ports["cot"])
        clients.extend([witness, bystander])
        attack = cls(server, witness, bystander)
        await bystander.send(cot(attack.stored_before, "b-m-p-s-m", stale_s=3600))
        await witness.wait_uid(attack.stored_before)
        await _until_stored(server, attack.stored_before)
        attack.before = _rejected(server)
        return attack

    async def verify(
        self,
        reasons: Iterable[str],
        *,
        transport: str = "tcp",
        log_msg: str = "input rejected",
        peer: str | None = None,
    ) -> None:
        """Rejected and counted with each of ``reasons``, logged, others unaffected, storage untouched."""
        reasons = list(reasons)
        server = self.server
        # (a) counted with the right reason (and transport).
        def counted() -> bool:
            after = _rejected(server)
            return all(after.get((r, transport), 0) > self.before.get((r, transport), 0) for r in reasons)

        await wait_until(counted, f"{reasons} counted as rejected ({transport})")
        # (b) a warning per reason, naming the attacker when we know its address.
        for reason in reasons:
            fields = {"reason": reason} if peer is None else {"reason": reason, "peer": peer}
            line = await asyncio.to_thread(server.wait_for_log, log_msg, 10.0, **fields)
            assert line["level"] == "warning", line
        # (c) other clients still exchange traffic.
        probe = f"probe-{uuid.uuid4().hex[:8]}"
        await self.bystander.send(sa(probe, "PROBE"))
        got = await self.witness.wait_uid(probe, timeout=10)
        assert got.detail.callsign == "PROBE"
        assert not self.witness.has(lambda e: e.uid in HOSTILE_UIDS)
        assert not any(b"root:" in r for r in self.witness.raw), "file contents must never leak"
        # (d) storage: the probe is written after anything the attack could have slipped in, so
        # once it is stored, the history is complete up to the attack.
        await _until_stored(server, probe)
        stored = _stored(server)
        assert self.stored_before in stored
        assert not HOSTILE_UIDS.intersection(stored), stored


CASES = [
    ("billion_laughs", BILLION_LAUGHS, {"entity"}),
    ("xxe", XXE, {"entity"}),
    ("malformed", b"<event version='2.0' uid='x' <<<>>> </event>", {"xml_malformed"}),
    ("nan", cot("nan-1").replace(b'lat="39.1"', b'lat="NaN"'), {"not_finite"}),
    ("inf", cot("inf-1").replace(b'lon="-120.0"', b'lon="1e999"'), {"not_finite"}),
    ("lat_out_of_range", cot("lat-91").replace(b'lat="39.1"', b'lat="91"'), {"bad_point"}),
    ("bad_time", cot("badtime").replace(b'time="', b'time="99999-', 1), {"bad_time"}),
    ("missing_uid", cot("x").replace(b'uid="x" ', b""), {"missing_uid"}),
    ("deep", b"<event uid='deep' type='a' how='m-g' time='2026-01-01T00:00:00Z' start='2026-01-01T00:00:00Z'"
             b" stale='2099-01-01T00:00:00Z'><point lat='1' lon='1'/><detail>" + b"<a>" * 5000 + b"</a>" * 5000
             + b"</detail></event>", {"too_deep"}),
    ("oversized", cot("big", detail="<remarks>" + "x" * 300_000 + "</remarks>"), {"event_too_large"}),
    ("garbage", b"\x00\xff\xfe GET / HTTP/1.1\r\n\r\n random junk \x01\x02", {"garbage"}),
]


@pytest.mark.parametrize(("name", "payload", "reasons"), CASES, ids=[c[0] for c in CASES])
async def test_hostile_input_rejected_session_survives_others_unaffected(
    server: ServerProcess, clients: list[object], name: str, payload: bytes, reasons: set[str]
) -> None:
    attack = await Attack.arm(server, clients)
    attacker = await CotClient.connect(server.ports["cot"])
    clients.append(attacker)
    await attacker.send(payload)
    # The stream resynchronises: a good event after the bad one still gets through.
    await attacker.send(sa(f"after-{name}", "AFTER"))
    got = await attack.witness.wait_uid(f"after-{name}", timeout=10)
    assert got.detail.callsign == "AFTER"
    await attack.verify(reasons, peer=peer_of(attacker._writer))


async def test_hostile_protobuf_after_upgrade(server: ServerProcess, clients: list[object]) -> None:
    from rallypoint.protocol.limits import Limits
    from rallypoint.protocol.proto_codec import encode_payload
    from rallypoint.protocol.wire import encode_varint
    from rallypoint.protocol.xml_codec import parse_event
    from tests.integration.test_protobuf_stream import ProtoClient

    attack = await Attack.arm(server, clients)
    proto = await ProtoClient.connect(server.ports["cot"])
    try:
        peer = peer_of(proto.writer)
        # A varint longer than 10 bytes, a huge length prefix, then a truncated/bogus payload.
        proto.writer.write(b"\xbf" + b"\xff" * 11 + b"\x01")
        proto.writer.write(b"\xbf\xff\xff\xff\xff\x0f")
        proto.writer.write(b"\xbf\x04\x12\x03\x0a\x01")
        # Fields this server does not know (as a newer client would add): accepted, counted apart.
        # A marker, not SA: the session's own uid is the SA sent below.
        marker = cot("proto-newer", "b-m-p-s-m", detail='<contact callsign="NEWER"/>')
        newer = encode_payload(parse_event(marker, Limits())) + b"\xf8\x07\x01"
        proto.writer.write(b"\xbf" + encode_varint(len(newer)) + newer)
        await proto.writer.drain()
        await proto.send_xml_as_proto(sa("proto-after", "PA"))
        await attack.witness.wait_uid("proto-after", timeout=10)
        assert (await attack.witness.wait_uid("proto-newer")).detail.callsign == "NEWER"
        await attack.verify({"bad_varint", "event_too_large", "proto_malformed"}, peer=peer)
        tolerated = _counts(_metrics(server), "rallypoint_input_tolerated_total")
        assert tolerated == {("unknown_protobuf_field", "tcp"): 1.0}
        assert not any(r == "unknown_protobuf_field" for r, _ in _rejected(server))
    finally:
        proto.close()


async def test_hostile_datagrams_do_not_disturb_streams(server: ServerProcess, clients: list[object]) -> None:
    attack = await Attack.arm(server, clients)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for payload in (BILLION_LAUGHS, XXE, b"\xbf\x01\xbf\xff\xff", b"", b"\x00" * 1000):
            sock.sendto(payload, ("127.0.0.1", server.ports["udp"]))
        sock.sendto(sa("udp-good", "UG"), ("127.0.0.1", server.ports["udp"]))
    finally:
        sock.close()
    await attack.witness.wait_uid("udp-good")
    await attack.verify(
        {"doctype", "proto_malformed", "not_event"}, transport="udp", log_msg="datagram rejected", peer="127.0.0.1"
    )
    after = _rejected(server)
    # Two DOCTYPE attacks, and both the empty and the NUL datagram are not events.
    assert after[("doctype", "udp")] - attack.before.get(("doctype", "udp"), 0) == 2
    assert after[("not_event", "udp")] - attack.before.get(("not_event", "udp"), 0) == 2


async def test_connection_flood_of_garbage_closes_only_that_session(
    server: ServerProcess, clients: list[object]
) -> None:
    attack = await Attack.arm(server, clients)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["cot"])
    peer = peer_of(writer)
    try:
        for _ in range(50):
            writer.write(b"<" * 20000)
        await writer.drain()
    except ConnectionError:
        pass
    # The server ends the attacker's session: its reads reach end-of-stream (or a reset).
    async with asyncio.timeout(10):
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
    writer.close()
    # Garbage is reported as it is skipped; past one maximum-size event of it, the stream ends.
    await attack.verify({"garbage", "garbage_flood"}, peer=peer)
    closed = re.search(r'rallypoint_sessions_closed_total\{reason="protocol_error"\} ([0-9.]+)', _metrics(server))
    assert closed is not None and float(closed.group(1)) == 1.0
