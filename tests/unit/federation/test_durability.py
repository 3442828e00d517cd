"""What a link keeps on disk: latest positions across a restart of the sender, and close() writes all.

Alpha's link to bravo and bravo's link to alpha are wired back to back (``test_replay.py``). A crash
of alpha is its persister cancelled and its link dropped without ``close()``: only what reached
``federation.db`` survives, as after ``kill -9``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from rallypoint.clock import ManualClock
from rallypoint.federation.convert import from_federated
from rallypoint.federation.dedup import RecentReports
from rallypoint.federation.link import PeerLink
from rallypoint.federation.positions import PositionJournal
from rallypoint.model.cot import Point
from rallypoint.protocol.xml_codec import make_event
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.storage.sqlite.federation import SqliteFederationStore
from tests.unit.federation.test_link_budget import LIMITS, PEER, _envelope
from tests.unit.federation.test_replay import ALPHA, Side, _delete, _deliver, _drain, _side, _stop


def _report(clock: ManualClock, uid: str, *, lat: float, age_ms: int = 0, stale_ms: int = 600_000) -> Envelope:
    """A position of ``uid`` reported ``age_ms`` ago, stale ``stale_ms`` from now."""
    now = clock.now_ms()
    event = make_event(uid=uid, type="a-f-G-U-C", how="m-g", time=now - age_ms, start=now - age_ms,
                       stale=now + stale_ms, point=Point(lat=lat, lon=2.0),
                       detail_xml=f'<contact callsign="{uid}"/>'.encode(), limits=LIMITS)
    return Envelope(event, Origin(session_id="client-1"), now)


async def _written(link: PeerLink) -> None:
    """Wait (with a deadline) until nothing accepted by ``link`` is missing from disk."""
    for _ in range(1000):
        if link.unwritten == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{link.unwritten} changes not written within 10 s")


async def _crash(side: Side) -> None:
    """Stop ``side`` the way ``kill -9`` does: no final write."""
    side.persister.cancel()
    await asyncio.gather(side.persister, return_exceptions=True)
    await side.store.close()


async def test_latest_positions_survive_a_sender_restart_and_arrive_once(tmp_path: Path) -> None:
    clock = ManualClock()
    alpha = await _side(tmp_path / "alpha", clock, node="alpha", peer=PEER, seen={})
    bravo = await _side(tmp_path / "bravo", clock, node="bravo", peer=ALPHA, seen={})
    try:
        # Before the partition bravo has p-old's only report.
        alpha.link.offer(_envelope(clock, "p-old", "a-f-G-U-C", lat=1.0))
        alpha.link.attach()
        await _deliver(_drain(alpha.link), bravo.link)
        assert bravo.accepted == ["p-old"]
        # Partitioned: several reports per uid, one uid deleted, one that expires while alpha is down.
        for lat in (2.0, 3.0, 4.0):
            alpha.link.offer(_envelope(clock, "p-1", "a-f-G-U-C", lat=lat))
            alpha.link.offer(_envelope(clock, "p-2", "a-f-G-U-C", lat=lat))
        alpha.link.offer(_envelope(clock, "p-gone", "a-f-G-U-C"))
        alpha.link.offer(_delete(clock, "p-gone"))
        alpha.link.offer(_report(clock, "p-short", lat=5.0, stale_ms=5_000))
        assert alpha.link.unwritten > 0
        await _written(alpha.link)
    finally:
        await _crash(alpha)
    clock.advance(10.0)
    alpha = await _side(tmp_path / "alpha", clock, node="alpha", peer=PEER, seen={})
    try:
        alpha.link.attach()
        sent = _drain(alpha.link)
        await _deliver(sent, bravo.link)
        await _deliver(_drain(bravo.link), alpha.link)
        # Latest of each uid once (p-old is a replay bravo already has), nothing deleted or expired.
        assert bravo.accepted == ["p-old", "del-p-gone", "p-1", "p-2"]
        events = [from_federated(m, LIMITS).event for m in sent]
        latest = {e.uid: e.point.lat for e in events if e.uid.startswith("p-")}
        assert latest == {"p-old": 1.0, "p-1": 4.0, "p-2": 4.0}
        # Another reconnect replays the same reports: bravo drops them all.
        alpha.link.attach()
        await _deliver(_drain(alpha.link), bravo.link)
        assert bravo.accepted == ["p-old", "del-p-gone", "p-1", "p-2"]
    finally:
        await _stop(alpha)
        await _stop(bravo)


async def test_close_writes_every_accepted_message_and_position(tmp_path: Path) -> None:
    clock = ManualClock()
    alpha = await _side(tmp_path / "alpha", clock, node="alpha", peer=PEER, seen={})
    for i in range(50):
        alpha.link.offer(_envelope(clock, f"chat-{i}", "b-t-f", text=f"chat-{i}"))
        alpha.link.offer(_envelope(clock, "p-1", "a-f-G-U-C", lat=i / 10))
    alpha.link.offer(_envelope(clock, "alert", "b-a-o-tbl"))
    # No waiting for the persister: close() right after accepting must still lose nothing.
    await _stop(alpha)
    store = SqliteFederationStore(tmp_path / "alpha" / "federation.db")
    try:
        assert len((await store.backlog("bravo", "unused")).rows) == 50
        assert len((await store.backlog("bravo#urgent", "unused")).rows) == 1
        positions = await store.positions("bravo", clock.now_ms())
        assert [uid for uid, *_ in positions] == ["p-1"]
    finally:
        await store.close()


async def test_a_report_reaching_the_node_by_two_links_is_accepted_once(tmp_path: Path) -> None:
    clock = ManualClock()
    recent = RecentReports()
    accepted: list[str] = []
    store = SqliteFederationStore(tmp_path / "federation.db")
    links = [
        PeerLink(peer, node_id="charlie", store=store, seen={}, accept=lambda e: accepted.append(e.event.uid),
                 clock=clock, limits=LIMITS, max_hops=3, queue_max=100, recent=recent)
        for peer in (ALPHA, PEER)
    ]
    alpha = await _side(tmp_path / "alpha", clock, node="alpha", peer=PEER, seen={})
    bravo = await _side(tmp_path / "bravo", clock, node="bravo", peer=ALPHA, seen={})
    try:
        alpha.link.offer(_envelope(clock, "chat-1", "b-t-f"))
        alpha.link.offer(_envelope(clock, "p-1", "a-f-G-U-C", lat=2.0))
        bravo.link.offer(_envelope(clock, "chat-1", "b-t-f"))
        bravo.link.offer(_report(clock, "p-1", lat=1.0, age_ms=1000))
        for side in (alpha, bravo):
            for _ in range(1000):
                if side.link.unwritten == 0 and side.link.unacked:
                    break
                await asyncio.sleep(0.01)
            side.link.attach()
        # The same chat from two servers (differently marked by each), then an older report of p-1.
        await _deliver(_drain(alpha.link), links[0])
        await _deliver(_drain(bravo.link), links[1])
        assert accepted == ["chat-1", "p-1"]
        assert recent.duplicates == 2
    finally:
        await _stop(alpha)
        await _stop(bravo)
        await store.close()


async def test_messages_offered_before_the_queue_is_loaded_follow_the_restored_backlog(tmp_path: Path) -> None:
    clock = ManualClock()
    alpha = await _side(tmp_path / "alpha", clock, node="alpha", peer=PEER, seen={})
    alpha.link.offer(_envelope(clock, "chat-old", "b-t-f"))
    await _crash_after_written(alpha)
    # Restarted: the router offers a chat and a position before load() has run.
    store = SqliteFederationStore(tmp_path / "alpha" / "federation.db")
    link = PeerLink(PEER, node_id="alpha", store=store, seen={}, accept=lambda e: None, clock=clock,
                    limits=LIMITS, max_hops=3, queue_max=100)
    link.offer(_envelope(clock, "chat-early", "b-t-f"))
    link.offer(_report(clock, "p-early", lat=1.0))
    assert link.unwritten == 2
    await link.load()
    side = Side(link, store, asyncio.create_task(link.run_persister()))
    try:
        await _written(link)
        link.attach()
        sent = [from_federated(m, LIMITS) for m in _drain(link)]
        assert [m.event.uid for m in sent] == ["chat-old", "chat-early", "p-early"]
        assert [m.seq for m in sent[:2]] == [1, 2]  # numbered after the restored backlog, not over it
    finally:
        await _stop(side)


async def _crash_after_written(side: Side) -> None:
    await _written(side.link)
    await _crash(side)


async def test_expired_positions_leave_the_table_while_running(tmp_path: Path) -> None:
    clock = ManualClock()
    alpha = await _side(tmp_path / "alpha", clock, node="alpha", peer=PEER, seen={})
    try:
        for i in range(20):
            alpha.link.offer(_report(clock, f"track-{i}", lat=1.0, stale_ms=5_000))
        await _written(alpha.link)
        assert _rows(tmp_path) == 20
        clock.advance(PositionJournal.PRUNE_EVERY_S + 1)
        alpha.link.offer(_report(clock, "p-live", lat=1.0))
        await _written(alpha.link)
        assert _rows(tmp_path) == 1
    finally:
        await _stop(alpha)


def _rows(tmp_path: Path) -> int:
    with contextlib.closing(sqlite3.connect(tmp_path / "alpha" / "federation.db")) as db:
        return int(db.execute("SELECT count(*) FROM positions").fetchone()[0])
