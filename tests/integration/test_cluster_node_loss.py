"""A node killed with ``kill -9`` under traffic: the surviving nodes lose and double nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cot_client import CotClient, chat, sa, uid_of
from tests.support.nodes import Cluster, running_cluster, stored_barrier

TIMEOUT_S = 30.0
# docs/operations.md ("Several nodes"): a dead node's clients are removed 6 to 10 s after its death
# (one lease TTL and two liveness checks); the margin is for a loaded test machine.
NODE_DEATH_S = 45.0
# Traffic rates (pacing the senders, not synchronisation): positions at 10 Hz, chats at 20 Hz.
POSITION_PERIOD_S = 0.1
CHAT_PERIOD_S = 0.05


@pytest.fixture
def cluster(tmp_path: Path, ca_template: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, ca_template) as running:
        yield running


def _deleted(uid: str) -> object:
    return lambda e: e.type == "t-x-d-d" and e.detail.link_uid == uid


class Traffic:
    """A client reporting its position and chatting to one peer, until stopped."""

    def __init__(self, client: CotClient, uid: str, callsign: str, peer_uid: str, peer_cs: str) -> None:
        self.client, self.uid, self.callsign = client, uid, callsign
        self.peer_uid, self.peer_cs = peer_uid, peer_cs
        self.reports = 0
        self.chats: list[str] = []

    async def positions(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.reports += 1
            await self.client.send(sa(self.uid, self.callsign, lat=self.reports / 1000))
            await asyncio.sleep(POSITION_PERIOD_S)

    async def chatter(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            message = chat(self.uid, self.callsign, to_uid=self.peer_uid, to_cs=self.peer_cs,
                           text=f"{self.callsign} {len(self.chats)}")
            self.chats.append(uid_of(message))
            await self.client.send(message)
            await asyncio.sleep(CHAT_PERIOD_S)


async def test_kill_9_of_a_node_mid_traffic_loses_and_doubles_nothing_between_the_survivors(
    cluster: Cluster, clients: list[object]
) -> None:
    victims = [await CotClient.connect(cluster.port(0)) for _ in range(2)]
    bravo, charlie = await CotClient.connect(cluster.port(1)), await CotClient.connect(cluster.port(2))
    clients.extend([*victims, bravo, charlie])
    for n, victim in enumerate(victims):
        await victim.send(sa(f"uid-victim-{n}", f"VICTIM{n}"))
    b = Traffic(bravo, "uid-bravo", "BRAVO", "uid-charlie", "CHARLIE")
    c = Traffic(charlie, "uid-charlie", "CHARLIE", "uid-bravo", "BRAVO")
    await bravo.send(sa(b.uid, b.callsign))
    await charlie.send(sa(c.uid, c.callsign))
    for survivor in (bravo, charlie):
        for n in range(len(victims)):
            await survivor.wait_uid(f"uid-victim-{n}", TIMEOUT_S)
    await bravo.wait_uid(c.uid, TIMEOUT_S)
    await charlie.wait_uid(b.uid, TIMEOUT_S)

    stop = asyncio.Event()
    tasks = [asyncio.create_task(job(stop)) for t in (b, c) for job in (t.positions, t.chatter)]
    try:
        # Traffic is flowing both ways before the kill.
        await charlie.wait_for(lambda e: e.uid in b.chats, TIMEOUT_S)
        await bravo.wait_for(lambda e: e.uid in c.chats, TIMEOUT_S)
        await asyncio.to_thread(cluster.kill, 0)
        for survivor in (bravo, charlie):
            for n in range(len(victims)):
                await survivor.wait_for(_deleted(f"uid-victim-{n}"), NODE_DEATH_S)  # type: ignore[arg-type]
        # Positions still flow after the dead node's clients are gone.
        for receiver, sender in ((charlie, b), (bravo, c)):
            after = sender.reports
            await receiver.wait_for(
                lambda e, s=sender, n=after: e.uid == s.uid and e.point.lat > n / 1000, TIMEOUT_S)  # type: ignore[misc]
    finally:
        stop.set()
        await asyncio.gather(*tasks)

    for receiver, sender in ((charlie, b), (bravo, c)):
        await receiver.wait_for(lambda _, r=receiver, s=sender: set(s.chats) <= {e.uid for e in r.events},  # type: ignore[misc]
                                TIMEOUT_S)
        await stored_barrier(receiver, sender.client)
        copies = {u: sum(1 for e in receiver.events if e.uid == u) for u in sender.chats}
        assert {u: n for u, n in copies.items() if n != 1} == {}, "a chat lost or delivered twice"
        assert len(sender.chats) > 10
    for survivor in (bravo, charlie):
        for n in range(len(victims)):
            assert sum(1 for e in survivor.events if _deleted(f"uid-victim-{n}")(e)) == 1  # type: ignore[operator]
    # Gone from the survivors' pictures: a client joining either now is not given them.
    for node, peer in ((1, charlie), (2, bravo)):
        late = await CotClient.connect(cluster.port(node))
        clients.append(late)
        await late.wait_uid(b.uid if node == 2 else c.uid, TIMEOUT_S)
        await stored_barrier(late, peer)
        assert not late.has(lambda e: e.uid.startswith("uid-victim-")), "a client of the killed node is pictured"
