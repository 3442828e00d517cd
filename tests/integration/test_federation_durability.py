"""Federation across a crash of the server holding the queue, and remote contacts that expire.

Same two-server setup as ``test_federation.py`` (A listens, B dials A). Here A, the side with the
queue for B, is the one killed with ``kill -9``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.test_federation import Pair, get_json, get_text, wait_link
from tests.support.cot_client import CotClient, chat, cot, sa
from tests.support.poll import wait_until
from tests.support.server import ServerProcess

# B does not repeat emergencies on its own during the test, so each copy its client gets came over
# the link; it dials 2 s after start, so its client is connected before the backlog arrives.
B_EXTRA = "federation_connect_delay_s = 2.0\nemergency_repeat_s = 3600.0"


def _link(pair: Pair) -> dict[str, object]:
    return dict(get_json(pair.a, "/api/links")["links"][0])


def _count(client: CotClient, uid: str, cot_type: str | None = None) -> int:
    return sum(1 for e in client.events if e.uid == uid and (cot_type is None or e.type == cot_type))


@pytest.mark.timeout(120)
async def test_sender_killed_with_a_written_queue_delivers_it_once_after_restart(
    tmp_path: Path, clients: list[object]
) -> None:
    pair = Pair(tmp_path, b_extra=B_EXTRA)
    pair.start_a()
    try:
        b = pair.start_b()
        wait_link(pair.a, "up")
        # Partition: B stops, A's clients keep working.
        b.stop()
        wait_link(pair.a, "down")
        # One client per uid: a connection may only report its own.
        a1, a2, a3 = [await CotClient.connect(pair.a.ports["cot"]) for _ in range(3)]
        texts = [f"queued-{i}" for i in range(5)]
        for text in texts:
            await a1.send(chat("uid-a1", "A1", to_uid=None, to_cs=None, text=text))
        await a1.send(cot("marker-1", "b-m-p-s-m", how="h-g-i-g-o",
                          detail='<contact callsign="M1"/><archive/>'))
        await a1.send(cot("uid-a1-9-1-1", "b-a-o-tbl", how="h-e",
                          detail='<link uid="uid-a1" type="a-f-G-U-C" relation="p-p"/>'
                                 '<contact callsign="A1-Alert"/><emergency type="911 Alert">A1</emergency>'))
        for lat in (2.0, 3.0, 4.0):
            await a1.send(sa("uid-a1", "A1", lat=lat))
            await a2.send(sa("uid-a2", "A2", lat=lat + 10))
        # A position and a chat whose stale passes before B is back: never sent.
        await a3.send(sa("uid-short", "SHORT", stale_s=2.0))
        await a1.send(cot("GeoChat.uid-a1.short-lived", "b-t-f", how="h-g-i-g-o", stale_s=2.0,
                          detail='<link uid="uid-a1" type="a-f-G-U-C" relation="p-p"/><remarks>short-lived</remarks>'))
        short_stale = time.time() + 2.0
        await wait_until(lambda: _link(pair)["queue_depth"] == len(texts) + 3 + 3, "everything queued for B", 10)
        await wait_until(lambda: _link(pair)["unwritten"] == 0, "A's queue for B written", 10)
        metrics = get_text(pair.a, "/metrics")
        assert 'rallypoint_federation_link_unwritten{link="bravo"} 0.0' in metrics
        for client in (a1, a2, a3):
            await client.close()
        assert pair.a.proc is not None
        pair.a.proc.kill()  # kill -9: no goodbye, no final write
        pair.a.proc.wait()
        pair.a = ServerProcess(pair.a_dir, *pair.a.extra)
        pair.start_a()
        await wait_until(lambda: time.time() > short_stale, "the short position stale", 10)
        b = pair.start_b()
        b2 = await CotClient.connect(b.ports["cot"])
        clients.append(b2)
        for text in texts:
            await b2.wait_for(lambda e, t=text: f">{t}<".encode() in e.detail.xml, timeout=20)
        await b2.wait_uid("marker-1", timeout=20)
        await b2.wait_uid("uid-a1-9-1-1", timeout=20)
        await b2.wait_for(lambda e: e.uid == "uid-a1" and e.point.lat == 4.0, timeout=20)
        await b2.wait_for(lambda e: e.uid == "uid-a2" and e.point.lat == 14.0, timeout=20)
        # Everything acknowledged, then one more message through the same lane as a barrier.
        await wait_until(lambda: _link(pair)["unacknowledged"] == 0, "A's queue acknowledged", 20)
        a4 = await CotClient.connect(pair.a.ports["cot"])
        clients.append(a4)
        await a4.send(chat("uid-a4", "A4", to_uid=None, to_cs=None, text="after-restart"))
        await b2.wait_for(lambda e: b">after-restart<" in e.detail.xml, timeout=20)
        assert [sum(1 for e in b2.events if f">{t}<".encode() in e.detail.xml) for t in texts] == [1] * len(texts)
        assert _count(b2, "marker-1") == 1
        assert _count(b2, "uid-a1-9-1-1", "b-a-o-tbl") == 1
        # Coalesced to the latest while queued, sent once after the restart, nothing that had expired.
        assert [e.point.lat for e in b2.events if e.uid == "uid-a1"] == [4.0]
        assert [e.point.lat for e in b2.events if e.uid == "uid-a2"] == [14.0]
        assert _count(b2, "uid-short") == 0
        assert _count(b2, "GeoChat.uid-a1.short-lived") == 0
    finally:
        pair.stop()


@pytest.mark.timeout(90)
async def test_remote_contacts_are_removed_when_the_link_stays_down_and_return_with_it(
    tmp_path: Path, clients: list[object]
) -> None:
    # write_config sets federation_contact_timeout_s = 3.0.
    pair = Pair(tmp_path)
    pair.start_a()
    try:
        b = pair.start_b()
        wait_link(pair.a, "up")
        a1 = await CotClient.connect(pair.a.ports["cot"])
        b1 = await CotClient.connect(b.ports["cot"])
        clients += [a1, b1]
        await b1.send(sa("uid-b1", "B1", lat=5.0))
        await a1.wait_uid("uid-b1", timeout=10)
        assert _link(pair)["remote_contacts"] == 1
        await wait_until(lambda: get_json(b, "/api/links")["links"][0]["unwritten"] == 0,
                         "B's latest report written", 10)
        assert b.proc is not None
        b.proc.kill()
        b.proc.wait()
        gone = await a1.wait_for(lambda e: e.type == "t-x-d-d" and e.detail.link_uid == "uid-b1", timeout=30)
        assert gone.uid == "uid-b1-fed-gone"
        assert _link(pair)["state"] == "down" and _link(pair)["remote_contacts"] == 0
        # A client joining A afterwards is not told about the contact.
        a2 = await CotClient.connect(pair.a.ports["cot"])
        clients.append(a2)
        await a2.barrier(a1)
        assert not a2.has(lambda e: e.uid == "uid-b1")
        # B comes back: its latest report of the contact, kept on disk, is replayed and accepted again.
        b = pair.start_b()
        back = await a2.wait_uid("uid-b1", timeout=20)
        assert back.point.lat == 5.0
        await wait_until(lambda: _link(pair)["remote_contacts"] == 1, "the contact known through the link again", 10)
    finally:
        pair.stop()
