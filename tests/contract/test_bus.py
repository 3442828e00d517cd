"""The bus contract, over the in-process bus (one node) and NATS (two nodes on one server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from rallypoint.bus.local import LocalBus
from rallypoint.bus.nats import NatsBus
from rallypoint.clock import ManualClock
from rallypoint.model.cot import CotEvent, Dest
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience
from tests.support.nats import NatsServer
from tests.support.picture import chat, event, marker
from tests.support.poll import wait_until

Bus = LocalBus | NatsBus
CLOCK = ManualClock()
GROUPS = Audience(groups=frozenset({"Cyan", "Blue"}), exclude="a:s-1")
ADDRESSED = Audience(dests=(Dest(uid="b-1"), Dest(callsign="BRAVO")), exclude="a:s-1", explicit=True,
                     unresolved=(Dest(callsign="BRAVO"),))


@dataclass
class Node:
    """A bus and everything its handler was given."""

    bus: Bus
    got: list[tuple[Envelope, Audience]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bus.subscribe(lambda envelope, audience: self.got.append((envelope, audience)))

    def uids(self) -> list[str]:
        return [envelope.event.uid for envelope, _ in self.got]

    def publish(self, cot: CotEvent, audience: Audience = GROUPS, **kw: bool) -> Envelope:
        envelope = Envelope(cot, Origin(session_id="s-1", groups=audience.groups, node=self.bus.node), 7, **kw)
        self.bus.publish(envelope, audience)
        return envelope


async def _nats_node(url: str, name: str, **options: int) -> Node:
    bus = NatsBus(url, name, **options)
    node = Node(bus)
    await bus.start()
    return node


@pytest.fixture(params=["local", "nats"])
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[list[Node]]:
    """Every node of a cluster: one for the local bus, two for NATS."""
    if request.param == "local":
        cluster = [Node(LocalBus("node-a"))]
    else:
        server: NatsServer = request.getfixturevalue("nats_server")
        cluster = [await _nats_node(server.url, "node-a"), await _nats_node(server.url, "node-b")]
    try:
        yield cluster
    finally:
        for node in cluster:
            await node.bus.close()


async def _settled(nodes: list[Node], publisher: Node, cot: CotEvent) -> None:
    """Publish a last event of ``cot``'s class and wait for it everywhere: what came before has arrived."""
    sentinel = publisher.publish(cot)
    await wait_until(lambda: all(sentinel.event.uid in n.uids() for n in nodes), "sentinel on every node")


def _emergency(uid: str) -> CotEvent:
    return event(CLOCK, uid, "b-a-o-tbl", '<emergency type="911 Alert">ALPHA</emergency><contact callsign="ALPHA"/>')


def _position(uid: str) -> CotEvent:
    return event(CLOCK, uid, "a-f-G-U-C", '<contact callsign="ALPHA"/><__group name="Cyan" role="Team Member"/>')


@pytest.mark.parametrize(("make", "audience"), [
    (lambda uid: _position(uid), GROUPS),
    (lambda uid: marker(CLOCK, uid), GROUPS),
    (lambda uid: chat(CLOCK, uid, room="Ops", chat_id="ops-1", members=("b-1",)), ADDRESSED),
    (lambda uid: event(CLOCK, uid, "b-m-p-s-m", '<marti><dest callsign="BRAVO"/></marti>'), ADDRESSED),
    (_emergency, GROUPS),
])
async def test_a_publication_reaches_every_node_once_unchanged(nodes: list[Node], make, audience: Audience) -> None:
    for publisher in nodes:
        sent = publisher.publish(make(f"x-{publisher.bus.node}"), audience, repeat=True)
        await _settled(nodes, publisher, make(f"end-{publisher.bus.node}"))
        for node in nodes:
            got = [(e, a) for e, a in node.got if e.event.uid == sent.event.uid]
            assert len(got) == 1, node.bus.node
            envelope, received_audience = got[0]
            assert received_audience == audience
            assert (envelope.event, envelope.origin, envelope.received_ms, envelope.priority, envelope.repeat) == (
                sent.event, sent.origin, sent.received_ms, sent.priority, True)


async def test_acknowledged_classes_keep_each_publishers_order(nodes: list[Node]) -> None:
    sent = [nodes[0].publish(marker(CLOCK, f"m-{i}") if i % 2 else _emergency(f"m-{i}")).event.uid for i in range(300)]
    await wait_until(lambda: all(sent[-1] in n.uids() for n in nodes), "the last marker on every node")
    for node in nodes:
        assert node.uids() == sent


async def test_own_publications_are_handed_over_without_serialising(nodes: list[Node]) -> None:
    publisher = nodes[0]
    envelope = publisher.publish(_position("own"))
    published, audience = publisher.got[0]
    assert published is envelope and audience is GROUPS
    await _settled(nodes, publisher, marker(CLOCK, "end"))
    assert [e.event.uid for e, _ in publisher.got] == ["own", "end"]


async def test_an_envelope_of_another_node_is_not_published_again(nodes: list[Node]) -> None:
    foreign = Envelope(marker(CLOCK, "m-1"), Origin(session_id="s", node="node-z"), 0)
    for node in nodes:
        node.bus.publish(foreign, GROUPS)
    received = nodes[-1]
    if received is not nodes[0]:
        # One that arrived from another node and is handed to this node's bus again (a repeat).
        nodes[0].publish(marker(CLOCK, "m-2"))
        await wait_until(lambda: "m-2" in received.uids(), "m-2 on the other node")
        envelope, _ = received.got[-1]
        received.bus.publish(envelope, GROUPS)
    await _settled(nodes, nodes[0], marker(CLOCK, "end"))
    for node in nodes:
        assert "m-1" not in node.uids() and node.uids().count("m-2") <= 1
    assert received.bus.statistics().foreign_refused == (1 if received is nodes[0] else 2)


# -- NATS only: what only a network bus has ----------------------------------------------------


async def test_messages_published_around_a_nats_restart_arrive_once(nats_server: NatsServer) -> None:
    a, b = await _nats_node(nats_server.url, "node-a"), await _nats_node(nats_server.url, "node-b")
    assert isinstance(a.bus, NatsBus)
    try:
        before = [a.publish(marker(CLOCK, f"before-{i}")).event.uid for i in range(50)]
        await wait_until(lambda: a.bus.statistics().sent == len(before), "the first markers acknowledged")
        await asyncio.to_thread(nats_server.stop)
        await wait_until(lambda: not a.bus.statistics().connected, "node-a seeing NATS gone")
        during = [a.publish(marker(CLOCK, f"during-{i}")).event.uid for i in range(50)]
        await asyncio.to_thread(nats_server.start)
        await _settled([a, b], a, marker(CLOCK, "end"))
        assert b.uids() == [*before, *during, "end"]
        assert a.bus.statistics().reconnects >= 1 and b.bus.statistics().dropped == {}
    finally:
        await a.bus.close()
        await b.bus.close()


async def test_a_node_that_was_away_gets_what_it_missed(nats_server: NatsServer) -> None:
    a, b = await _nats_node(nats_server.url, "node-a"), await _nats_node(nats_server.url, "node-b")
    try:
        await _settled([a, b], a, marker(CLOCK, "first"))
        await b.bus.close()
        missed = [a.publish(chat(CLOCK, f"u-{i}", room="All Chat Rooms", chat_id="All Chat Rooms")).event.uid
                  for i in range(20)]
        a.publish(_position("p-1"))  # positions are not kept for absent nodes
        await wait_until(lambda: a.bus.statistics().pending == 0, "node-a sent everything")
        b = await _nats_node(nats_server.url, "node-b")
        await _settled([a, b], a, marker(CLOCK, "last"))
        assert b.uids() == [*missed, "last"]
    finally:
        await a.bus.close()
        await b.bus.close()


async def test_the_latest_state_is_shared(nats_server: NatsServer) -> None:
    a, b = await _nats_node(nats_server.url, "node-a"), await _nats_node(nats_server.url, "node-b")
    assert isinstance(a.bus, NatsBus) and isinstance(b.bus, NatsBus)
    try:
        first = Envelope(_position("GeoChat.x.All Chat Rooms"), Origin(session_id="s", node="node-a"), 5)
        await a.bus.latest_put(first)
        await a.bus.latest_put(Envelope(_position("ANDROID-1"), Origin(session_id="s", node="node-a"), 6))
        got = await b.bus.latest_get("GeoChat.x.All Chat Rooms")
        assert got is not None and (got.event, got.origin, got.received_ms) == (first.event, first.origin, 5)
        assert await b.bus.latest_list() == ["ANDROID-1", "GeoChat.x.All Chat Rooms"]
        await b.bus.latest_delete("ANDROID-1")
        assert await a.bus.latest_get("ANDROID-1") is None and await a.bus.latest_get("nobody") is None
    finally:
        await a.bus.close()
        await b.bus.close()


async def test_bytes_from_nats_that_are_no_bus_message_are_refused_and_counted(nats_server: NatsServer) -> None:
    import nats

    b = await _nats_node(nats_server.url, "node-b", max_message_bytes=4096)
    assert isinstance(b.bus, NatsBus)
    other = await nats.connect(nats_server.url)
    try:
        subjects = b.bus.subjects
        await other.publish(subjects.core_wildcard.replace("*", "position"), b"\xc1 not msgpack")
        await other.publish(subjects.core_wildcard.replace("*", "bulk"), b"x" * (b.bus.codec.max_bytes + 1))
        await other.jetstream().publish(subjects.jetstream_wildcard.replace(">", "message"), b"{}")
        await other.flush()
        await wait_until(lambda: b.bus.statistics().dropped == {"malformed": 2, "oversize": 1}, "refusals counted")
        a = await _nats_node(nats_server.url, "node-a")
        try:
            await _settled([a, b], a, marker(CLOCK, "after"))  # the consumer went on
        finally:
            await a.bus.close()
        assert b.uids() == ["after"]
    finally:
        await other.close()
        await b.bus.close()


async def test_a_bus_whose_nats_is_gone_closes_and_leaves_no_task_behind(nats_server: NatsServer) -> None:
    a = await _nats_node(nats_server.url, "node-a")
    assert isinstance(a.bus, NatsBus)
    await asyncio.to_thread(nats_server.stop)
    await wait_until(lambda: not a.bus.statistics().connected, "node-a seeing NATS gone")
    ours = asyncio.current_task()
    # The client is reconnecting now; close() must end that too, or the process never exits.
    async with asyncio.timeout(30):
        await a.bus.close()

    loop = asyncio.get_running_loop()

    def others() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks(loop) if t is not ours and not t.done()]

    await wait_until(lambda: not others(), "the NATS client's tasks ended")


async def test_a_cluster_only_handler_sees_the_other_nodes_publications(nodes: list[Node]) -> None:
    # Handlers of other nodes' state (contacts, reports on mail) subscribe cluster_only: every
    # publication reaches them on a network bus; a bus with no other node never calls them.
    calls: dict[str, list[str]] = {node.bus.node: [] for node in nodes}
    for node in nodes:
        node.bus.subscribe(lambda envelope, audience, seen=calls[node.bus.node]: seen.append(envelope.event.uid),
                           cluster_only=True)
    for publisher in nodes:
        publisher.publish(_position(f"c-{publisher.bus.node}"))
        await _settled(nodes, publisher, _position(f"end-{publisher.bus.node}"))
    if len(nodes) == 1:
        assert calls == {"node-a": []}
        return
    for node in nodes:
        for publisher in nodes:
            assert f"c-{publisher.bus.node}" in calls[node.bus.node]
