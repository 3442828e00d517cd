"""Routing rules over real sockets against a real server process (TAK Server semantics)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SAMPLES
from tests.support.cot_client import CotClient, chat, cot, sa
from tests.support.server import ServerProcess


async def _connect(server: ServerProcess, clients: list[object], n: int) -> list[CotClient]:
    out = []
    for _ in range(n):
        c = await CotClient.connect(server.ports["cot"])
        clients.append(c)
        out.append(c)
    return out


async def _identify(clients: list[CotClient], names: list[str]) -> None:
    """Each client sends its SA; wait until every other client has seen it (directory is bound)."""
    for c, name in zip(clients, names, strict=True):
        await c.send(sa(f"uid-{name}", name))
    for c in clients:
        for name in names:
            if f"uid-{name}" != _own(c, clients, names):
                await c.wait_uid(f"uid-{name}")


def _own(c: CotClient, clients: list[CotClient], names: list[str]) -> str:
    return f"uid-{names[clients.index(c)]}"


async def test_broadcast_reaches_others_but_not_sender(server: ServerProcess, clients: list[object]) -> None:
    a, b, c = await _connect(server, clients, 3)
    await a.send(sa("uid-alpha", "ALPHA"))
    got_b = await b.wait_uid("uid-alpha")
    await c.wait_uid("uid-alpha")
    assert got_b.detail.callsign == "ALPHA"
    await a.barrier(b)
    assert not a.has(lambda e: e.uid == "uid-alpha"), "the sender must not get its own event echoed"


async def test_directed_by_callsign_and_uid_only_reach_the_addressee(
    server: ServerProcess, clients: list[object]
) -> None:
    a, b, c = await _connect(server, clients, 3)
    await _identify([a, b, c], ["A", "B", "C"])
    await a.send(cot("to-b-by-callsign", "b-m-p-s-m", detail='<marti><dest callsign="B"/></marti>'))
    await a.send(cot("to-c-by-uid", "b-m-p-s-m", detail='<marti><dest uid="uid-C"/></marti>'))
    got = await b.wait_uid("to-b-by-callsign")
    await c.wait_uid("to-c-by-uid")
    assert b"<marti" not in b.raw[[e.uid for e in b.events].index("to-b-by-callsign")]
    assert got.detail.has_marti is False
    await c.barrier(a)
    await b.barrier(a)
    assert not c.has(lambda e: e.uid == "to-b-by-callsign")
    assert not b.has(lambda e: e.uid == "to-c-by-uid")


async def test_empty_marti_is_broadcast(server: ServerProcess, clients: list[object]) -> None:
    a, b = await _connect(server, clients, 2)
    sample = (SAMPLES / "03_marker_itak_empty_marti_taky_fixture.xml").read_bytes()
    from rallypoint.protocol.limits import Limits
    from rallypoint.protocol.xml_codec import parse_event

    uid = parse_event(sample, Limits()).uid
    # The sample's stale time is in the past; refresh the times so it is deliverable.
    fresh = _refresh(sample)
    await a.send(fresh)
    got = await b.wait_uid(uid)
    assert got.type == "a-u-G"


def _refresh(sample: bytes) -> bytes:
    import re
    from datetime import UTC, datetime, timedelta

    from tests.support.cot_client import iso

    now = datetime.now(UTC)
    out = re.sub(rb'time="[^"]+"', f'time="{iso(now)}"'.encode(), sample, count=1)
    out = re.sub(rb'start="[^"]+"', f'start="{iso(now)}"'.encode(), out, count=1)
    return re.sub(rb'stale="[^"]+"', f'stale="{iso(now + timedelta(hours=1))}"'.encode(), out, count=1)


async def test_all_chat_rooms_broadcast_and_direct_chat(server: ServerProcess, clients: list[object]) -> None:
    a, b, c = await _connect(server, clients, 3)
    await _identify([a, b, c], ["A", "B", "C"])
    await a.send(chat("uid-A", "A", to_uid=None, to_cs=None, text="hello all"))
    await b.wait_for(lambda e: e.type == "b-t-f" and e.detail.chat is not None)
    await c.wait_for(lambda e: e.type == "b-t-f")
    await a.send(chat("uid-A", "A", to_uid="uid-B", to_cs="B", text="just you"))
    direct = await b.wait_for(lambda e: e.type == "b-t-f" and e.detail.chat.chat_id == "uid-B")  # type: ignore[union-attr]
    assert direct.detail.chat is not None
    await c.barrier(a)
    assert sum(1 for e in c.events if e.type == "b-t-f") == 1, "C must only get the All Chat Rooms message"


async def test_direct_chat_without_marti_routes_by_chat_id(server: ServerProcess, clients: list[object]) -> None:
    a, b, c = await _connect(server, clients, 3)
    await _identify([a, b, c], ["A", "B", "C"])
    await a.send(chat("uid-A", "A", to_uid="uid-C", to_cs="C", text="uid only", marti=False))
    await c.wait_for(lambda e: e.type == "b-t-f")
    await b.barrier(a)
    assert not b.has(lambda e: e.type == "b-t-f")


async def test_chat_to_nobody_returns_delivery_failure(server: ServerProcess, clients: list[object]) -> None:
    a, b = await _connect(server, clients, 2)
    await _identify([a, b], ["A", "B"])
    await a.send(chat("uid-A", "A", to_uid="uid-GHOST", to_cs="GHOST", text="anyone?"))
    failure = await a.wait_for(lambda e: e.type == "b-t-f-s")
    assert failure.detail.link_uid is not None and failure.detail.link_uid.startswith("GeoChat.uid-A")
    await b.barrier(a)
    assert not b.has(lambda e: e.type in ("b-t-f", "b-t-f-s"))


async def test_ping_answered_with_pong_and_not_forwarded(server: ServerProcess, clients: list[object]) -> None:
    a, b = await _connect(server, clients, 2)
    await a.send(cot("uid-A-ping", "t-x-c-t", stale_s=10))
    pong = await a.wait_for(lambda e: e.type == "t-x-c-t-r")
    assert pong.uid == "takPong"
    await b.barrier(a)
    assert not b.has(lambda e: e.type.startswith("t-x-c-t"))


async def test_delete_is_forwarded_and_disconnect_sends_delete(server: ServerProcess, clients: list[object]) -> None:
    a, b = await _connect(server, clients, 2)
    await _identify([a, b], ["A", "B"])
    await a.send(cot("marker-1", "b-m-p-s-m"))
    await b.wait_uid("marker-1")
    await a.send(cot("del-1", "t-x-d-d", detail='<link uid="marker-1" relation="p-p" type="b-m-p-s-m"/>'))
    deleted = await b.wait_uid("del-1")
    assert deleted.detail.link_uid == "marker-1"
    await a.close()
    gone = await b.wait_for(lambda e: e.type == "t-x-d-d" and e.detail.link_uid == "uid-A")
    assert gone.detail.link_type == "a-f-G-U-C"


async def test_late_joiner_gets_latest_sa_markers_and_not_stale_or_deleted(
    server: ServerProcess, clients: list[object]
) -> None:
    a, b = await _connect(server, clients, 2)
    await a.send(sa("uid-A", "A"))
    await a.send(sa("uid-A", "A", lat=40.0))  # the later report wins
    await a.send(cot("shape-1", "u-d-r"))
    await a.send(cot("marker-stale", "b-m-p-s-m", stale_s=-5))
    await a.send(cot("marker-gone", "b-m-p-s-m"))
    await a.send(cot("del-gone", "t-x-d-d", detail='<link uid="marker-gone" relation="p-p" type="b-m-p-s-m"/>'))
    await b.wait_uid("del-gone")
    late = await CotClient.connect(server.ports["cot"])
    clients.append(late)
    got_sa = await late.wait_uid("uid-A")
    await late.wait_uid("shape-1")
    assert got_sa.point.lat == 40.0
    await late.barrier(a)
    assert not late.has(lambda e: e.uid in ("marker-stale", "marker-gone"))
    assert sum(1 for e in late.events if e.uid == "uid-A") == 1


async def test_samples_pass_through_unchanged(server: ServerProcess, clients: list[object]) -> None:
    a, b = await _connect(server, clients, 2)
    sent = []
    for path in sorted(Path(SAMPLES).glob("20_atak_export_*.xml")):
        data = _refresh(path.read_bytes())
        await a.send(data)
        sent.append(data)
    await b.barrier(a)
    received = {bytes(r) for r in b.raw}
    for data in sent:
        body = data[data.find(b"<event"):].strip()
        assert body in received, f"{body[:80]!r} was not forwarded byte for byte"
