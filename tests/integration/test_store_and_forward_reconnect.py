"""Store-and-forward over the real server: what a reconnecting client gets, in which order, and when
stored mail counts as delivered (written to its socket, not merely offered to its session)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rallypoint.model.cot import CotEvent
from tests.support.certs import client_context
from tests.support.cot_client import CotClient, chat, cot, sa
from tests.support.groups import serve_with_groups
from tests.support.server import ServerProcess

A_UID, B_UID = "uid-alpha", "uid-bravo"
TEXTS = ("first", "second", "third")


def _chats(client: CotClient) -> list[str]:
    """Which of TEXTS the client received as chat, in arrival order."""
    found: list[str] = []
    for event in client.events:
        if event.type == "b-t-f":
            body = event.detail.xml.decode(errors="replace")
            found += [t for t in TEXTS if f">{t}-" in body]
    return found


def _is_chat(text: str) -> Callable[[CotEvent], bool]:
    return lambda e: e.type == "b-t-f" and f">{text}-".encode() in e.detail.xml


async def _departed(peer: CotClient, uid: str) -> None:
    # The departure notice proves the server processed the disconnect.
    await peer.wait_for(lambda e: e.type == "t-x-d-d" and e.detail.link_uid == uid)


@pytest.fixture
def narrow_server(data_dir: Path) -> Iterator[ServerProcess]:
    """Every client on a link of 1 byte/s: one burst (about 4 KB) then nearly nothing."""
    env = {"RALLYPOINT_SESSION_BUDGET_BYTES_PER_S": "1", "RALLYPOINT_MAX_EVENT_BYTES": "4096"}
    proc = ServerProcess(data_dir, env=env)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


async def test_mail_still_queued_at_disconnect_is_delivered_on_the_next_connection(
    narrow_server: ServerProcess, clients: list[object]
) -> None:
    port = narrow_server.ports["cot"]
    alpha = await CotClient.connect(port)
    clients.append(alpha)
    await alpha.send(sa(A_UID, "ALPHA"))
    bravo = await CotClient.connect(port)
    await bravo.send(sa(B_UID, "BRAVO"))
    await alpha.wait_uid(B_UID)
    await bravo.close()
    await _departed(alpha, B_UID)
    # About 2.5 KB each: the link's burst takes one of them, the next would wait a quarter of an hour.
    for text in TEXTS:
        await alpha.send(chat(A_UID, "ALPHA", to_uid=B_UID, to_cs="BRAVO", text=f"{text}-{'x' * 2400}"))

    # Each connection gets the next message and leaves while the rest still waits in its outbox:
    # what was not written then is not lost, and what was written is not sent again.
    for expected in TEXTS:
        session = await CotClient.connect(port)
        clients.append(session)
        await session.send(sa(B_UID, "BRAVO"))
        await session.wait_for(_is_chat(expected))
        await session.close()
        await _departed(alpha, B_UID)
        assert _chats(session) == [expected]


@pytest.fixture
def group_server(data_dir: Path) -> Iterator[ServerProcess]:
    with serve_with_groups(data_dir, {"red1": ["Red"], "red2": ["Red"]}) as proc:
        yield proc


async def test_certificate_client_gets_mail_then_snapshot_then_live(
    group_server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    port = group_server.ports["tls"]
    contexts = {name: client_context(group_server, name, tmp_path) for name in ("red1", "red2")}
    red1 = await CotClient.connect(port, ssl_context=contexts["red1"])
    clients.append(red1)
    await red1.send(sa("uid-red1", "RED1"))
    red2 = await CotClient.connect(port, ssl_context=contexts["red2"])
    await red2.send(sa("uid-red2", "RED2"))
    await red1.wait_uid("uid-red2")
    await red2.close()
    await _departed(red1, "uid-red2")
    # A marker on the shared map (part of the snapshot) and two messages addressed to RED2.
    await red1.send(cot("map-marker", "b-m-p-s-m"))
    for text in TEXTS[:2]:
        await red1.send(chat("uid-red1", "RED1", to_uid="uid-red2", to_cs="RED2", text=f"{text}-mail"))
    await red1.send(cot("kept-marker", "b-m-p-s-m", detail='<marti><dest callsign="RED2"/></marti>'))
    watcher = await CotClient.connect(port, ssl_context=client_context(group_server, "red1", tmp_path / "w"))
    clients.append(watcher)
    await watcher.barrier(red1)  # red1's events were all processed

    back = await CotClient.connect(port, ssl_context=contexts["red2"])
    clients.append(back)
    await back.wait_uid("map-marker")
    await red1.send(chat("uid-red1", "RED1", to_uid="uid-red2", to_cs="RED2", text="third-live"))
    await back.wait_for(_is_chat("third"))
    uids = [e.uid for e in back.events]
    order: list[str] = []
    for event in back.events:
        if event.type == "b-t-f":
            order += [f"chat:{t}" for t in TEXTS if f">{t}-".encode() in event.detail.xml]
        elif event.uid in ("kept-marker", "map-marker", "uid-red1"):
            order.append(event.uid)
    # Mail (in the order it was sent), then the snapshot (red1's SA and the map marker), then live.
    assert order[:3] == ["chat:first", "chat:second", "kept-marker"]
    assert sorted(order[3:5]) == ["map-marker", "uid-red1"]
    assert order[5:] == ["chat:third"]
    assert uids.count("kept-marker") == 1
