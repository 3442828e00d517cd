"""The routing rules with sender and receivers on different nodes: three real servers on one NATS."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SAMPLES
from tests.integration.test_chat_routing import team_chat
from tests.support.certs import client_context
from tests.support.cot_client import CotClient, chat, cot, sa
from tests.support.nodes import Cluster, running_cluster, stored_barrier
from tests.support.samples import fresh

# (sender's node, receiver's node, bystander's node): every node plays every part once.
PLACES = [(0, 1, 2), (1, 2, 0), (2, 0, 1)]
TIMEOUT_S = 15.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, ca_template: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster"), ca_template) as running:
        yield running


class People:
    """Clients of this test, one per (node, callsign); uids and callsigns unique to the test."""

    def __init__(self, cluster: Cluster, clients: list[object]) -> None:
        self.cluster = cluster
        self.clients = clients
        self.tag = uuid.uuid4().hex[:6].upper()

    def uid(self, name: str) -> str:
        return f"uid-{name}-{self.tag}"

    def callsign(self, name: str) -> str:
        return f"{name}{self.tag}"

    async def join(self, places: list[tuple[int, str, str]]) -> list[CotClient]:
        """Connect (node, name, team) clients; each sends its SA and sees everyone else's."""
        joined = []
        for node, name, team in places:
            client = await CotClient.connect(self.cluster.port(node))
            self.clients.append(client)
            await client.send(sa(self.uid(name), self.callsign(name), group=team))
            joined.append(client)
        for client, (_, own, _) in zip(joined, places, strict=True):
            for _, name, _ in places:
                if name != own:
                    await client.wait_uid(self.uid(name), TIMEOUT_S)
        return joined


def _count(client: CotClient, uid: str) -> int:
    return sum(1 for e in client.events if e.uid == uid)


@pytest.mark.parametrize(("src", "dst", "other"), PLACES)
async def test_implicit_broadcast_reaches_every_other_node_once(
    cluster: Cluster, clients: list[object], src: int, dst: int, other: int
) -> None:
    people = People(cluster, clients)
    a, b, c = await people.join([(src, "A", "Cyan"), (dst, "B", "Cyan"), (other, "C", "Cyan")])
    marker = f"marker-{people.tag}"
    await a.send(cot(marker, "b-m-p-s-m", lat=45.0, lon=7.0))
    await b.wait_uid(marker, TIMEOUT_S)
    await c.wait_uid(marker, TIMEOUT_S)
    await stored_barrier(a, b)
    await stored_barrier(b, a)
    assert _count(b, marker) == 1 and _count(c, marker) == 1
    assert _count(a, marker) == 0, "the sender got its own event echoed"


@pytest.mark.parametrize(("src", "dst", "other"), PLACES)
async def test_marti_dest_by_callsign_and_uid_reach_only_the_addressee(
    cluster: Cluster, clients: list[object], src: int, dst: int, other: int
) -> None:
    people = People(cluster, clients)
    a, b, c = await people.join([(src, "A", "Cyan"), (dst, "B", "Cyan"), (other, "C", "Cyan")])
    by_cs, by_uid = f"to-b-cs-{people.tag}", f"to-c-uid-{people.tag}"
    await a.send(cot(by_cs, "b-m-p-s-m", detail=f'<marti><dest callsign="{people.callsign("B")}"/></marti>'))
    await a.send(cot(by_uid, "b-m-p-s-m", detail=f'<marti><dest uid="{people.uid("C")}"/></marti>'))
    got = await b.wait_uid(by_cs, TIMEOUT_S)
    await c.wait_uid(by_uid, TIMEOUT_S)
    assert got.detail.has_marti is False, "<marti> must be stripped on every node"
    await stored_barrier(b, a)
    await stored_barrier(c, a)
    assert not b.has(lambda e: e.uid == by_uid) and not c.has(lambda e: e.uid == by_cs)


@pytest.mark.parametrize(("src", "dst", "other"), PLACES)
async def test_all_chat_rooms_and_team_chat_across_nodes(
    cluster: Cluster, clients: list[object], src: int, dst: int, other: int
) -> None:
    people = People(cluster, clients)
    a, cyan, yellow = await people.join([(src, "A", "Cyan"), (dst, "B", "Cyan"), (other, "C", "Yellow")])
    await a.send(chat(people.uid("A"), people.callsign("A"), to_uid=None, to_cs=None, text="all"))
    everyone = await cyan.wait_for(lambda e: e.type == "b-t-f", TIMEOUT_S)
    await yellow.wait_uid(everyone.uid, TIMEOUT_S)
    team_uid, message = team_chat(people.uid("A"), people.callsign("A"), "Cyan", "cyan only")
    await a.send(message)
    await cyan.wait_uid(team_uid, TIMEOUT_S)
    await stored_barrier(yellow, a)
    assert _count(yellow, team_uid) == 0, "a Cyan team message reached a Yellow member on another node"
    assert _count(cyan, everyone.uid) == 1 and _count(yellow, everyone.uid) == 1


@pytest.mark.parametrize(("src", "dst", "other"), PLACES)
async def test_direct_chat_across_nodes_and_failure_notice_only_when_nobody_is_reachable(
    cluster: Cluster, clients: list[object], src: int, dst: int, other: int
) -> None:
    people = People(cluster, clients)
    a, b, c = await people.join([(src, "A", "Cyan"), (dst, "B", "Cyan"), (other, "C", "Cyan")])
    await a.send(chat(people.uid("A"), people.callsign("A"), to_uid=people.uid("B"), to_cs=people.callsign("B"),
                      text="to B on another node"))
    direct = await b.wait_for(lambda e: e.type == "b-t-f", TIMEOUT_S)
    # Without <marti> the chat id (the addressee's uid) is the address, resolved cluster-wide.
    await a.send(chat(people.uid("A"), people.callsign("A"), to_uid=people.uid("C"), to_cs=people.callsign("C"),
                      text="by uid", marti=False))
    await c.wait_for(lambda e: e.type == "b-t-f", TIMEOUT_S)
    await stored_barrier(a, b)
    assert not a.has(lambda e: e.type == "b-t-f-s"), "a failure notice for a chat that reached another node"
    assert _count(c, direct.uid) == 0
    await a.send(chat(people.uid("A"), people.callsign("A"), to_uid="uid-GHOST", to_cs=f"GHOST{people.tag}",
                      text="anyone?"))
    failure = await a.wait_for(lambda e: e.type == "b-t-f-s", TIMEOUT_S)
    assert failure.detail.link_uid is not None and failure.detail.link_uid.startswith(f"GeoChat.{people.uid('A')}")
    await stored_barrier(b, a)
    await stored_barrier(c, a)
    assert not b.has(lambda e: e.type == "b-t-f-s") and not c.has(lambda e: e.type == "b-t-f-s")
    assert sum(1 for e in a.events if e.type == "b-t-f-s") == 1, "one notice, from the sender's node only"


async def test_real_direct_chat_sample_reaches_its_addressee_on_another_node(
    cluster: Cluster, clients: list[object]
) -> None:
    sender = await CotClient.connect(cluster.port(0))
    hummer = await CotClient.connect(cluster.port(1))
    other = await CotClient.connect(cluster.port(2))
    clients.extend([sender, hummer, other])
    # The people of sample 04, exactly as it names them.
    await sender.send(sa("ANDROID-d8c7f552857ee744", "DEMO2"))
    await hummer.send(sa("S-1-5-21-3476584777-3751678839-889941227-17669", "HUMMER"))
    await other.send(sa("uid-OTHER-sample", "OTHER-sample"))
    for client in (sender, other):
        await client.wait_uid("S-1-5-21-3476584777-3751678839-889941227-17669", TIMEOUT_S)
    await hummer.wait_uid("ANDROID-d8c7f552857ee744", TIMEOUT_S)
    await sender.send(fresh((SAMPLES / "04_chat_p2p_atak_takserver_comment.xml").read_bytes()))
    p2p = "GeoChat.ANDROID-d8c7f552857ee744.HUMMER.a77c739b-213a-4f74-879f-014175867dc9"
    await hummer.wait_uid(p2p, TIMEOUT_S)
    await stored_barrier(other, sender)
    assert _count(other, p2p) == 0 and _count(hummer, p2p) == 1


GROUPS = {"red1": ["Red"], "red2": ["Red"], "blue1": ["Blue"], "both": ["Red", "Blue"]}


@pytest.fixture(scope="module")
def group_cluster(tmp_path_factory: pytest.TempPathFactory, ca_template: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("groups"), ca_template, groups=GROUPS) as running:
        yield running


async def test_groups_isolate_traffic_across_nodes(
    group_cluster: Cluster, tmp_path: Path, clients: list[object]
) -> None:
    c = group_cluster

    async def tls(node: int, name: str) -> CotClient:
        client = await CotClient.connect(
            c.port(node, "tls"), ssl_context=client_context(c.dirs[node], name, tmp_path / f"{name}-{node}")
        )
        clients.append(client)
        return client

    red1, red2, blue1, both = await tls(0, "red1"), await tls(1, "red2"), await tls(2, "blue1"), await tls(1, "both")
    await red1.send(sa("uid-red1", "RED1"))
    await red2.wait_uid("uid-red1", TIMEOUT_S)
    await both.wait_uid("uid-red1", TIMEOUT_S)
    await blue1.send(sa("uid-blue1", "BLUE1"))
    await both.wait_uid("uid-blue1", TIMEOUT_S)
    # Addressed traffic is still filtered by group reachability, whatever node the addressee is on.
    await red1.send(cot("red-to-blue", "b-m-p-s-m", detail='<marti><dest callsign="BLUE1"/></marti>'))
    await both.send(cot("to-group-red", "b-m-p-s-m", detail='<marti><dest group="Red"/></marti>'))
    await red1.wait_uid("to-group-red", TIMEOUT_S)
    await red2.wait_uid("to-group-red", TIMEOUT_S)
    await red1.send(cot("red-item", "b-m-p-s-m"))
    await red2.wait_uid("red-item", TIMEOUT_S)
    await stored_barrier(blue1, both)
    await stored_barrier(both, red1)
    await stored_barrier(blue1, both)
    assert not blue1.has(lambda e: e.uid in ("uid-red1", "red-to-blue", "to-group-red", "red-item"))
    assert not red2.has(lambda e: e.uid == "uid-blue1")
    # A late Blue joiner on a third node sees Blue's picture only.
    late = await tls(0, "blue1")
    await both.send(cot("blue-item", "b-m-p-s-m"))
    await late.wait_uid("blue-item", TIMEOUT_S)
    assert not late.has(lambda e: e.uid in ("uid-red1", "red-item", "to-group-red"))
