"""Store-and-forward exactly once across nodes (real servers on one NATS server): mail collected on one
node is offered on no other; a ``dest@group`` message is not kept for a principal reading that group
on another node; a node that delivered a message and was killed does not write it again."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from pathlib import Path

from tests.support.certs import client_context
from tests.support.cot_client import CotClient, chat, cot, sa
from tests.support.metrics import metric_value
from tests.support.nodes import Cluster, running_cluster, stored_barrier
from tests.support.poll import wait_until

TIMEOUT_S = 15.0
RED = {"red1": ["Red"], "red2": ["Red"]}


async def _gone(watcher: CotClient, uid: str) -> None:
    """``watcher`` saw ``uid`` leave; its events so far are cleared for the next departure."""
    await watcher.wait_for(lambda e: e.type == "t-x-d-d" and e.detail.link_uid == uid, TIMEOUT_S)
    watcher.events.clear()


def _texts(client: CotClient, tag: str) -> list[str]:
    """The chat texts of this test the client received, in arrival order."""
    return [
        text
        for e in client.events
        if e.type == "b-t-f"
        for text in ("one", "two", "three")
        if f">{text}-{tag}<".encode() in e.detail.xml
    ]


async def test_mail_collected_on_one_node_is_offered_on_no_other(
    tmp_path: Path, ca_template: Path, clients: list[object]
) -> None:
    tag = uuid.uuid4().hex[:6]
    r_uid, r_cs = f"uid-r-{tag}", f"ROMEO{tag}"
    with running_cluster(tmp_path, ca_template, size=3) as cluster:
        sender = await CotClient.connect(cluster.port(0))
        clients.append(sender)
        await sender.send(sa(f"uid-s-{tag}", f"SIERRA{tag}"))
        # The recipient has been a client of every node; now it is offline.
        for node in (0, 1, 2):
            visit = await CotClient.connect(cluster.port(node))
            clients.append(visit)
            await visit.send(sa(r_uid, r_cs))
            await sender.wait_uid(r_uid, TIMEOUT_S)
            await visit.close()
            await _gone(sender, r_uid)
        for text in ("one", "two", "three"):
            await sender.send(chat(f"uid-s-{tag}", f"SIERRA{tag}", to_uid=r_uid, to_cs=r_cs, text=f"{text}-{tag}"))
        await wait_until(
            lambda: metric_value(cluster.nodes[0], "rallypoint_mailbox_queued_total") == 3, "mail kept by node A"
        )

        sessions: list[CotClient] = []
        for node in (1, 2, 0):  # collected on node B, then node C and node A have nothing more for it
            session = await CotClient.connect(cluster.port(node))
            clients.append(session)
            sessions.append(session)
            await session.send(sa(r_uid, r_cs))
            if node == 1:
                await session.wait_for(lambda e: f">three-{tag}<".encode() in e.detail.xml, TIMEOUT_S)
            await stored_barrier(session, sender)
            await session.close()
            await _gone(sender, r_uid)
        assert [_texts(s, tag) for s in sessions] == [["one", "two", "three"], [], []]
        assert metric_value(cluster.nodes[0], "rallypoint_mailbox_delivered_total") == 3
        for node in (1, 2):
            assert metric_value(cluster.nodes[node], "rallypoint_mailbox_queued_total") == 0


async def _tls(cluster: Cluster, node: int, context: ssl.SSLContext, clients: list[object]) -> CotClient:
    client = await CotClient.connect(cluster.port(node, "tls"), ssl_context=context)
    clients.append(client)
    return client


async def test_group_mail_is_not_kept_for_a_principal_reading_the_group_on_another_node(
    tmp_path: Path, ca_template: Path, clients: list[object]
) -> None:
    """Node A, where the message enters, decides from the SA its bus brought that red2 is connected
    to node B reading Red, so B delivers it live there and nothing is kept for red2."""
    with running_cluster(tmp_path / "cluster", ca_template, size=2, groups=RED) as cluster:
        ctx = {name: client_context(cluster.dirs[0], name, tmp_path / name) for name in RED}
        red1 = await _tls(cluster, 0, ctx["red1"], clients)
        red2 = await _tls(cluster, 1, ctx["red2"], clients)
        await red1.send(sa("uid-red1", "RED1"))
        await red2.send(sa("uid-red2", "RED2"))
        await red1.wait_uid("uid-red2", TIMEOUT_S)
        await red2.wait_uid("uid-red1", TIMEOUT_S)
        await red1.send(cot("to-red", "b-m-p-s-m", detail='<marti><dest group="Red"/></marti>'))
        await red2.wait_uid("to-red", TIMEOUT_S)
        await stored_barrier(red2, red1)
        assert metric_value(cluster.nodes[0], "rallypoint_mailbox_queued_total") == 0

        # red2 leaves node B and comes to node A: the message is not handed to it a second time.
        await red2.close()
        await _gone(red1, "uid-red2")
        again = await _tls(cluster, 0, ctx["red2"], clients)
        await again.send(sa("uid-red2", "RED2"))
        await stored_barrier(again, red1)
        assert not again.has(lambda e: e.uid == "to-red")


async def test_group_mail_a_principal_got_live_before_its_sa_is_not_offered_again_on_any_node(
    tmp_path: Path, ca_template: Path, clients: list[object]
) -> None:
    """red2 is connected to node B but has sent no SA, so node A keeps a Red message for it while B
    delivers it live. Node B tells node A (and remembers it on disk); B is then killed with kill -9
    and restarted, and red2 comes back on B, then on A: the message is written to it nowhere again."""
    with running_cluster(tmp_path / "cluster", ca_template, size=2, groups=RED) as cluster:
        ctx = {name: client_context(cluster.dirs[0], name, tmp_path / name) for name in RED}
        red1 = await _tls(cluster, 0, ctx["red1"], clients)
        await red1.send(sa("uid-red1", "RED1"))
        visit = await _tls(cluster, 1, ctx["red2"], clients)
        await visit.send(sa("uid-red2", "RED2"))
        await red1.wait_uid("uid-red2", TIMEOUT_S)
        await visit.close()
        await _gone(red1, "uid-red2")

        quiet = await _tls(cluster, 1, ctx["red2"], clients)
        await quiet.wait_uid("uid-red1", TIMEOUT_S)  # joined node B: its snapshot came
        await red1.send(cot("to-red", "b-m-p-s-m", detail='<marti><dest group="Red"/></marti>'))
        await quiet.wait_uid("to-red", TIMEOUT_S)
        await wait_until(
            lambda: (
                metric_value(cluster.nodes[0], "rallypoint_mailbox_queued_total") == 1
                and metric_value(cluster.nodes[0], "rallypoint_mailbox_delivered_total") == 1
            ),
            "node A keeping the message for red2, then retiring it on node B's report",
        )
        await wait_until(
            lambda: metric_value(cluster.nodes[1], "rallypoint_mailbox_unwritten") == 0, "node B's mailbox written"
        )
        await asyncio.to_thread(cluster.kill, 1)
        cluster.restart(1)

        for node in (1, 0):
            back = await _tls(cluster, node, ctx["red2"], clients)
            await back.send(sa("uid-red2", "RED2"))
            await stored_barrier(back, red1)
            assert not back.has(lambda e: e.uid == "to-red"), f"offered again on node {node}"
            await back.close()
            await _gone(red1, "uid-red2")
        assert metric_value(cluster.nodes[0], "rallypoint_mailbox_delivered_total") == 1
