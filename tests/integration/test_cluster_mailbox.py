"""Store-and-forward across nodes: mail for a recipient offline in the whole cluster is kept once,
by the node it entered, and delivered once wherever the recipient comes back (real servers on one
NATS server)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from rallypoint.model.cot import CotEvent
from tests.support.cot_client import CotClient, chat, sa
from tests.support.metrics import metric_value
from tests.support.nodes import Cluster, running_cluster, stored_barrier
from tests.support.poll import wait_until

TIMEOUT_S = 15.0
TEXTS = ("first", "second", "third")


def _is_chat(text: str) -> Callable[[CotEvent], bool]:
    return lambda e: e.type == "b-t-f" and f">{text}-".encode() in e.detail.xml


def _chats(client: CotClient) -> list[str]:
    """Which of TEXTS the client received as chat, in arrival order."""
    return [t for e in client.events if e.type == "b-t-f" for t in TEXTS if f">{t}-".encode() in e.detail.xml]


async def _visit(cluster: Cluster, node: int, uid: str, callsign: str, watcher: CotClient,
                 clients: list[object]) -> CotClient:
    """Connect to ``node`` as ``uid`` and send the SA; ``watcher`` (on node A) sees it arrive."""
    client = await CotClient.connect(cluster.port(node))
    clients.append(client)
    await client.send(sa(uid, callsign))
    await watcher.wait_uid(uid, TIMEOUT_S)
    return client


async def _leave(client: CotClient, uid: str, watcher: CotClient) -> None:
    await client.close()
    await watcher.wait_for(lambda e: e.type == "t-x-d-d" and e.detail.link_uid == uid, TIMEOUT_S)
    watcher.events.clear()


async def _mail_for_a_recipient_known_to_both_nodes(
    tmp_path: Path, ca_template: Path, clients: list[object], *, holder: Literal["runs", "restarts", "killed"]
) -> None:
    tag = uuid.uuid4().hex[:6]
    r_uid, r_cs = f"uid-r-{tag}", f"ROMEO{tag}"
    with running_cluster(tmp_path, ca_template, size=2) as cluster:
        sender = await CotClient.connect(cluster.port(0))
        witness = await CotClient.connect(cluster.port(1))
        clients.extend([sender, witness])
        await sender.send(sa(f"uid-s-{tag}", f"SIERRA{tag}"))
        await witness.wait_uid(f"uid-s-{tag}", TIMEOUT_S)
        # The recipient has been a client of both nodes, so both know it; now it is offline.
        for node in (0, 1):
            visit = await _visit(cluster, node, r_uid, r_cs, sender, clients)
            await _leave(visit, r_uid, sender)

        await sender.send(chat(f"uid-s-{tag}", f"SIERRA{tag}", to_uid=r_uid, to_cs=r_cs, text="kept once"))
        await stored_barrier(witness, sender)  # node B has seen the chat too
        assert not sender.has(lambda e: e.type.startswith("b-t-f-s")), "a delivery failure for kept mail"
        if holder == "killed":
            # Acknowledged: the holding node has written the mail to its store; then kill -9.
            await wait_until(
                lambda: metric_value(cluster.nodes[0], "rallypoint_mailbox_queued_total") == 1
                and metric_value(cluster.nodes[0], "rallypoint_mailbox_unwritten") == 0,
                "mail written by the holding node",
            )
            await asyncio.to_thread(cluster.kill, 0)
        if holder != "runs":
            cluster.restart(0)  # the node that keeps the mail comes back with its data directory
            sender = await CotClient.connect(cluster.port(0))
            clients.append(sender)
            await sender.send(sa(f"uid-s-{tag}", f"SIERRA{tag}"))
            await witness.wait_uid(f"uid-s-{tag}", TIMEOUT_S)

        # Back on node B: node A hands its mail to the session there, once.
        on_b = await CotClient.connect(cluster.port(1))
        clients.append(on_b)
        await on_b.send(sa(r_uid, r_cs))
        got = await on_b.wait_for(lambda e: e.type == "b-t-f", TIMEOUT_S)
        assert b"kept once" in got.detail.xml
        await stored_barrier(on_b, sender)
        await on_b.close()
        # And again on node A: nothing is handed over a second time.
        on_a = await CotClient.connect(cluster.port(0))
        clients.append(on_a)
        await on_a.send(sa(r_uid, r_cs))
        await stored_barrier(on_a, witness)
        await stored_barrier(on_a, sender)
        chats = [e for client in (on_b, on_a) for e in client.events if e.type == "b-t-f"]
        assert len(chats) == 1, [e.uid for e in chats]


async def test_mail_is_kept_by_one_node_and_delivered_once_on_another(
    tmp_path: Path, ca_template: Path, clients: list[object]
) -> None:
    await _mail_for_a_recipient_known_to_both_nodes(tmp_path, ca_template, clients, holder="runs")


async def test_mail_kept_by_a_node_survives_its_restart_and_reaches_the_recipient_on_another(
    tmp_path: Path, ca_template: Path, clients: list[object]
) -> None:
    await _mail_for_a_recipient_known_to_both_nodes(tmp_path, ca_template, clients, holder="restarts")


async def test_mail_written_by_a_node_survives_kill_9_and_reaches_the_recipient_on_another(
    tmp_path: Path, ca_template: Path, clients: list[object]
) -> None:
    await _mail_for_a_recipient_known_to_both_nodes(tmp_path, ca_template, clients, holder="killed")


async def test_mail_handed_to_another_node_counts_once_written_there(
    tmp_path: Path, ca_template: Path, clients: list[object]
) -> None:
    """Each visit to node B writes one message (a 1 byte/s link) and leaves: node A, which keeps the
    mail, retires what B wrote and keeps what B had not written when the session left."""
    env = {"RALLYPOINT_SESSION_BUDGET_BYTES_PER_S": "1", "RALLYPOINT_MAX_EVENT_BYTES": "4096"}
    with running_cluster(tmp_path, ca_template, size=2, env=env) as cluster:
        sender = await CotClient.connect(cluster.port(0))
        clients.append(sender)
        await sender.send(sa("uid-alpha", "ALPHA"))
        visit = await _visit(cluster, 1, "uid-bravo", "BRAVO", sender, clients)
        await _leave(visit, "uid-bravo", sender)
        # About 2.5 KB each: the link's burst takes one of them, the next would wait a quarter of an hour.
        for text in TEXTS:
            message = chat("uid-alpha", "ALPHA", to_uid="uid-bravo", to_cs="BRAVO", text=f"{text}-{'x' * 2400}")
            await sender.send(message)
        await wait_until(lambda: metric_value(cluster.nodes[0], "rallypoint_mailbox_queued_total") == len(TEXTS),
                         "mail kept by node A")
        for expected in TEXTS:
            session = await _visit(cluster, 1, "uid-bravo", "BRAVO", sender, clients)
            await session.wait_for(_is_chat(expected), TIMEOUT_S)
            await _leave(session, "uid-bravo", sender)
            assert _chats(session) == [expected]
        await wait_until(lambda: metric_value(cluster.nodes[0], "rallypoint_mailbox_delivered_total") == len(TEXTS),
                         "every message written once")
