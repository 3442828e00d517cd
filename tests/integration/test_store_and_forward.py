"""Store-and-forward over the real server: addressed traffic waits for an offline client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rallypoint.model.cot import CotEvent
from tests.support.certs import client_context
from tests.support.cot_client import CotClient, chat, cot, sa
from tests.support.groups import serve_with_groups
from tests.support.metrics import metric_value
from tests.support.poll import wait_until
from tests.support.server import ServerProcess

A_UID, B_UID = "uid-alpha", "uid-bravo"


def _marker(uid: str, to_cs: str, *, stale_s: float = 300.0) -> bytes:
    return cot(uid, "b-m-p-s-m", detail=f'<marti><dest callsign="{to_cs}"/></marti>', stale_s=stale_s)


def _text(event: CotEvent) -> str:
    return event.detail.xml.decode(errors="replace")


def _kept(events: list[CotEvent]) -> list[CotEvent]:
    """Events B got that A addressed to it (chat and the directed marker)."""
    return [e for e in events if e.type == "b-t-f" or e.uid.startswith("marker-")]


async def _bind_and_leave(port: int, uid: str, callsign: str, peer: CotClient) -> None:
    """Connect, send a self-SA (binding uid and callsign), make sure it was routed, disconnect."""
    client = await CotClient.connect(port)
    await client.send(sa(uid, callsign))
    await peer.wait_uid(uid)
    await client.close()
    # The departure notice proves the server processed the disconnect.
    await peer.wait_for(lambda e: e.type == "t-x-d-d" and e.detail.link_uid == uid)


async def _send_four(alpha: CotClient) -> list[str]:
    texts = ["first", "second", "third"]
    for text in texts:
        await alpha.send(chat(A_UID, "ALPHA", to_uid=B_UID, to_cs="BRAVO", text=text))
    await alpha.send(_marker("marker-1", "BRAVO"))
    return texts


async def _reconnect(port: int, clients: list[object]) -> CotClient:
    bravo = await CotClient.connect(port)
    clients.append(bravo)
    await bravo.send(sa(B_UID, "BRAVO"))
    return bravo


async def _processed(client: CotClient) -> None:
    """Everything ``client`` sent before now was processed: the server answers a ping in order."""
    seen = {id(e) for e in client.events if e.type == "t-x-c-t-r"}
    await client.send(cot(f"ping-{time.monotonic_ns()}", "t-x-c-t"))
    await client.wait_for(lambda e: e.type == "t-x-c-t-r" and id(e) not in seen)


async def _routed(client: CotClient, peer: CotClient) -> None:
    """Everything sent to ``client`` before now has arrived (see CotClient.barrier)."""
    await client.barrier(peer)


async def test_offline_client_gets_its_messages_in_order_once(server: ServerProcess, clients: list[object]) -> None:
    port = server.ports["cot"]
    alpha = await CotClient.connect(port)
    clients.append(alpha)
    await alpha.send(sa(A_UID, "ALPHA"))
    await _bind_and_leave(port, B_UID, "BRAVO", alpha)
    texts = await _send_four(alpha)
    await _processed(alpha)
    # Kept for a known recipient: the sender is not told the chat failed.
    assert not alpha.has(lambda e: e.type == "b-t-f-s")

    bravo = await _reconnect(port, clients)
    await bravo.wait_uid("marker-1")
    kept = _kept(bravo.events)
    assert [e.type for e in kept] == ["b-t-f"] * 3 + ["b-m-p-s-m"]
    assert [t for e in kept[:3] for t in texts if f">{t}<" in _text(e)] == texts
    # Live traffic follows.
    await alpha.send(cot("after-reconnect", "b-m-p-s-m", detail='<marti><dest callsign="BRAVO"/></marti>'))
    await bravo.wait_uid("after-reconnect")
    assert len(_kept(bravo.events)) == 4

    # Reconnect once more: nothing is delivered again.
    await bravo.close()
    await alpha.wait_for(lambda e: e.type == "t-x-d-d" and e.detail.link_uid == B_UID)
    again = await _reconnect(port, clients)
    await again.wait_uid(A_UID)  # the snapshot arrived: the session is live
    await _routed(again, alpha)
    assert _kept(again.events) == []


async def _stop(server: ServerProcess, how: str) -> None:
    """Stop cleanly (SIGTERM) or crash (SIGKILL once the mailbox reports everything on disk)."""
    if how == "sigterm":
        assert await asyncio.to_thread(server.terminate) == 0
        return
    # Kept means on disk: once the server reports nothing unwritten, a crash loses nothing.
    await wait_until(lambda: metric_value(server, "rallypoint_mailbox_unwritten") == 0, "mailbox written")
    assert server.proc is not None
    server.proc.kill()
    server.proc.wait(timeout=10)


@pytest.mark.parametrize("how", ["sigterm", "kill-9"])
async def test_messages_and_cursors_survive_a_restart(data_dir: Path, clients: list[object], how: str) -> None:
    first = ServerProcess(data_dir)
    first.start()
    try:
        port = first.ports["cot"]
        alpha = await CotClient.connect(port)
        await alpha.send(sa(A_UID, "ALPHA"))
        await _bind_and_leave(port, B_UID, "BRAVO", alpha)
        texts = await _send_four(alpha)
        # A's own SA coming back through another client proves A's earlier events were routed.
        watcher = await CotClient.connect(port)
        await watcher.barrier(alpha)
        await alpha.close()
        await watcher.close()
        await _stop(first, how)
    finally:
        first.stop()
    second = ServerProcess(data_dir)
    second.start()
    try:
        bravo = await _reconnect(second.ports["cot"], clients)
        await bravo.wait_uid("marker-1")
        kept = _kept(bravo.events)
        assert [e.type for e in kept] == ["b-t-f"] * 3 + ["b-m-p-s-m"]
        assert [t for e in kept[:3] for t in texts if f">{t}<" in _text(e)] == texts
        await bravo.close()
        # Delivered once, also across restarts: the delivery cursor is on disk before the stop.
        await _stop(second, how)
    finally:
        second.stop()
    third = ServerProcess(data_dir)
    third.start()
    try:
        port = third.ports["cot"]
        peer = await CotClient.connect(port)
        clients.append(peer)
        bravo = await _reconnect(port, clients)
        await _routed(bravo, peer)
        assert _kept(bravo.events) == []
    finally:
        third.stop()


async def test_expired_message_is_not_delivered(server: ServerProcess, clients: list[object]) -> None:
    port = server.ports["cot"]
    alpha = await CotClient.connect(port)
    clients.append(alpha)
    await alpha.send(sa(A_UID, "ALPHA"))
    await _bind_and_leave(port, B_UID, "BRAVO", alpha)
    await alpha.send(_marker("marker-short", "BRAVO", stale_s=1.0))
    await alpha.send(_marker("marker-long", "BRAVO"))
    await _processed(alpha)
    # Let the wall clock pass the short marker's stale time: expiry is the behaviour under test, and
    # the server's own clock cannot be moved from outside.
    await asyncio.sleep(1.2)
    bravo = await _reconnect(port, clients)
    await bravo.wait_uid("marker-long")
    await _routed(bravo, alpha)
    assert not bravo.has(lambda e: e.uid == "marker-short")


@pytest.fixture
def group_server(data_dir: Path) -> Iterator[ServerProcess]:
    with serve_with_groups(data_dir, {"red1": ["Red"], "red2": ["Red"], "blue1": ["Blue"]}) as proc:
        yield proc


async def test_groups_bound_stored_messages(group_server: ServerProcess, tmp_path: Path, clients: list[object]) -> None:
    port = group_server.ports["tls"]
    contexts = {name: client_context(group_server, name, tmp_path) for name in ("red1", "red2", "blue1")}
    red1 = await CotClient.connect(port, ssl_context=contexts["red1"])
    clients.append(red1)
    await red1.send(sa("uid-red1", "RED1"))
    # Blue and a second Red user register (bind their SA), then go offline.
    for name, uid, callsign in (("blue1", "uid-blue1", "BLUE1"), ("red2", "uid-red2", "RED2")):
        client = await CotClient.connect(port, ssl_context=contexts[name])
        await client.send(sa(uid, callsign))
        await _processed(client)
        await client.close()
    await red1.wait_for(lambda e: e.type == "t-x-d-d" and e.detail.link_uid == "uid-red2")

    await red1.send(_marker("marker-to-blue", "BLUE1"))
    await red1.send(cot("marker-red-group", "b-m-p-s-m", detail='<marti><dest group="Red"/></marti>'))
    await red1.send(chat("uid-red1", "RED1", to_uid="uid-red2", to_cs="RED2", text="hello-red2"))
    await _processed(red1)

    red2 = await CotClient.connect(port, ssl_context=contexts["red2"])
    clients.append(red2)
    await red2.wait_uid("uid-red1")
    uids = [e.uid for e in red2.events]
    types = [e.type for e in red2.events]
    # A certificate client gets its mail at connect, in order, before the picture snapshot.
    assert uids.index("marker-red-group") < types.index("b-t-f") < uids.index("uid-red1")
    assert types.count("b-t-f") == 1
    assert "marker-to-blue" not in uids

    blue1 = await CotClient.connect(port, ssl_context=contexts["blue1"])
    blue_peer = await CotClient.connect(port, ssl_context=client_context(group_server, "blue1", tmp_path / "peer"))
    clients.extend([blue1, blue_peer])
    await blue1.send(sa("uid-blue1", "BLUE1"))
    await blue1.barrier(blue_peer)
    assert not blue1.has(lambda e: e.uid in ("marker-to-blue", "marker-red-group") or e.type == "b-t-f")


@pytest.fixture
def short_ttl_server(data_dir: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(data_dir, env={"RALLYPOINT_MAILBOX_TTL_S": "1"})
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


async def test_mail_older_than_the_ttl_is_not_delivered(short_ttl_server: ServerProcess, clients: list[object]) -> None:
    port = short_ttl_server.ports["cot"]
    alpha = await CotClient.connect(port)
    clients.append(alpha)
    await alpha.send(sa(A_UID, "ALPHA"))
    await _bind_and_leave(port, B_UID, "BRAVO", alpha)
    # Stale in five minutes, but the mailbox keeps it for one second only.
    await alpha.send(_marker("marker-ttl", "BRAVO"))
    await _processed(alpha)
    # The TTL is wall-clock time inside the server; it cannot be moved from outside.
    await asyncio.sleep(1.2)
    bravo = await _reconnect(port, clients)
    await bravo.wait_uid(A_UID)
    await _routed(bravo, alpha)
    assert not bravo.has(lambda e: e.uid == "marker-ttl")
    # Live traffic to the same recipient still flows.
    await alpha.send(_marker("marker-live", "BRAVO"))
    await bravo.wait_uid("marker-live")
