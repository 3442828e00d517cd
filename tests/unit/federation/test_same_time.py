"""Reports of one uid sharing a timestamp: none is taken for a copy of another, and the last one wins.

A client can send several positions within one millisecond (or one second, for whole-second
producers). Three real ``PeerLink`` triangles are wired back to back in-process (alpha's links to
bravo and charlie, charlie's links from alpha and to bravo, bravo's links from both), and each test
chooses the interleaving of the two paths into bravo.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rallypoint.clock import ManualClock
from rallypoint.config import FederationPeer
from rallypoint.federation.convert import from_federated, tie_of, with_tie
from rallypoint.federation.dedup import RecentReports
from rallypoint.federation.link import PeerLink
from rallypoint.federation.order import SameTimeOrder, report_id
from rallypoint.model.cot import Point
from rallypoint.protocol.fig import fig_pb2
from rallypoint.protocol.xml_codec import make_event
from rallypoint.routing.envelope import Envelope
from rallypoint.storage.sqlite.federation import SqliteFederationStore
from tests.unit.federation.test_link_budget import LIMITS, PEER, _envelope
from tests.unit.federation.test_replay import ALPHA, _drain

CHARLIE = FederationPeer(name="charlie", groups_out={"__ANON__": "__ANON__"}, groups_in={"__ANON__": "__ANON__"})
NOW = 1_700_000_000_000


def _pos(lat: float, *, time: int = NOW) -> Envelope:
    return _envelope(ManualClock(time), "p", "a-f-G-U-C", lat=lat)


@dataclass
class Triangle:
    """alpha -> bravo directly, and alpha -> charlie -> bravo; bravo records what it accepts."""

    ab: PeerLink
    ac: PeerLink
    ca: PeerLink
    cb: PeerLink
    ba: PeerLink
    bc: PeerLink
    bravo_recent: RecentReports
    bravo_got: list[float] = field(default_factory=list)
    charlie_got: list[float] = field(default_factory=list)

    def alpha_sends(self, lat: float) -> None:
        envelope = _pos(lat)
        self.ab.offer(envelope)
        self.ac.offer(envelope)

    async def direct(self) -> None:
        """alpha's link to bravo sends what it holds."""
        for msg in _drain(self.ab):
            await self.ba.receive(msg)

    async def to_charlie(self) -> None:
        """alpha's link to charlie sends what it holds (charlie queues what it accepts for bravo)."""
        for msg in _drain(self.ac):
            await self.ca.receive(msg)

    async def charlie_to_bravo(self) -> None:
        """charlie's link to bravo sends what it holds."""
        for msg in _drain(self.cb):
            await self.bc.receive(msg)

    async def via_charlie(self) -> None:
        await self.to_charlie()
        await self.charlie_to_bravo()


@pytest.fixture
async def triangle(tmp_path: Path) -> AsyncIterator[Triangle]:
    clock = ManualClock(NOW)
    stores: list[SqliteFederationStore] = []

    def link(peer: FederationPeer, node: str, accept: object, **kw: object) -> PeerLink:
        stores.append(SqliteFederationStore(tmp_path / f"{node}-{peer.name}.db"))
        return PeerLink(peer, node_id=node, store=stores[-1], seen={}, accept=accept,  # type: ignore[arg-type]
                        clock=clock, limits=LIMITS, max_hops=3, queue_max=100, **kw)  # type: ignore[arg-type]

    bravo_recent, charlie_recent, ties = RecentReports(), RecentReports(), SameTimeOrder()
    got_b: list[float] = []
    got_c: list[float] = []

    def bravo_accepts(env: Envelope) -> None:
        got_b.append(env.event.point.lat)

    cb = link(PEER, "charlie", lambda env: None, recent=charlie_recent)

    def charlie_accepts(env: Envelope) -> None:
        got_c.append(env.event.point.lat)
        cb.offer(env)  # charlie's dispatcher hands what it accepted to its link to bravo

    tri = Triangle(
        ab=link(PEER, "alpha", lambda env: None, ties=ties),
        ac=link(CHARLIE, "alpha", lambda env: None, ties=ties),
        ca=link(ALPHA, "charlie", charlie_accepts, recent=charlie_recent),
        cb=cb,
        ba=link(ALPHA, "bravo", bravo_accepts, recent=bravo_recent),
        bc=link(CHARLIE, "bravo", bravo_accepts, recent=bravo_recent),
        bravo_recent=bravo_recent, bravo_got=got_b, charlie_got=got_c,
    )
    for each in (tri.ab, tri.ac, tri.cb):
        await each.load()
        each.attach()
    yield tri
    for store in stores:
        await store.close()


async def test_two_positions_with_one_time_on_one_path_are_both_accepted_in_order(triangle: Triangle) -> None:
    # The defect: the second report was taken for a copy of the first (same uid, type and time).
    triangle.alpha_sends(4.0)
    await triangle.direct()
    triangle.alpha_sends(5.0)
    await triangle.direct()
    await triangle.via_charlie()
    assert triangle.bravo_got == [4.0, 5.0]
    assert triangle.charlie_got == [5.0]  # alpha's link to charlie kept only the latest
    assert triangle.bravo_recent.duplicates == 1  # charlie's copy of 5.0


async def test_an_earlier_report_of_the_same_time_arriving_the_long_way_after_the_latest_is_dropped(
    triangle: Triangle,
) -> None:
    for lat in (1.0, 2.0, 3.0):
        triangle.alpha_sends(lat)
    await triangle.to_charlie()  # charlie accepts 3.0 and queues it for bravo ...
    triangle.alpha_sends(4.0)
    triangle.alpha_sends(5.0)
    await triangle.direct()  # ... but bravo gets 5.0 directly first
    await triangle.charlie_to_bravo()  # then 3.0 through charlie
    await triangle.via_charlie()  # and 5.0
    assert triangle.charlie_got == [3.0, 5.0]
    # Same time as 5.0 and different content, but numbered before it where it entered federation.
    assert triangle.bravo_got == [5.0]
    assert triangle.bravo_recent.duplicates == 2


async def test_every_copy_of_a_report_carries_the_tie_its_origin_gave_it(triangle: Triangle) -> None:
    for lat in (1.0, 2.0, 3.0):
        triangle.alpha_sends(lat)
    direct = _drain(triangle.ab)
    to_charlie = _drain(triangle.ac)
    assert [tie_of(m.event.other.encode()) for m in (*direct, *to_charlie)] == [2, 2]
    for msg in to_charlie:
        await triangle.ca.receive(msg)
    forwarded: list[fig_pb2.FederatedEvent] = _drain(triangle.cb)
    # charlie forwards alpha's number; it does not number what entered federation elsewhere.
    assert [from_federated(m, LIMITS).tie for m in forwarded] == [2]


def test_the_origin_numbers_distinct_reports_of_one_time_and_repeats_a_number_for_the_same_report() -> None:
    ties = SameTimeOrder()
    first, second, third = (_pos(lat).event for lat in (1.0, 2.0, 3.0))
    assert [ties.tie(e) for e in (first, second, first, third, second)] == [0, 1, 0, 2, 1]
    later = _pos(9.0, time=NOW + 1).event
    assert ties.tie(later) == 0
    assert ties.tie(first) == 0  # older than the uid's newest time: its time orders it
    assert len(ties) == 1


def test_a_report_is_identified_by_what_its_client_set_not_by_the_marks_servers_add() -> None:
    plain = _pos(1.0).event
    detail = with_tie(plain.detail.xml + b'<_flow-tags_ alpha="x" bravo="y"/>', 3)
    tagged = make_event(uid=plain.uid, type=plain.type, how=plain.how, time=plain.time, start=plain.start,
                        stale=plain.stale, point=plain.point, detail_xml=detail, limits=LIMITS)
    assert report_id(tagged) == report_id(plain)
    moved = make_event(uid=plain.uid, type=plain.type, how=plain.how, time=plain.time, start=plain.start,
                       stale=plain.stale, point=Point(lat=1.5, lon=2.0), detail_xml=plain.detail.xml, limits=LIMITS)
    assert report_id(moved) != report_id(plain)
    # The tie mark: replaced when the origin sets it, absent for the first report of a time.
    assert tie_of(with_tie(detail, 0)) == 0 and b"_rptie_" not in with_tie(detail, 0)
    assert tie_of(with_tie(detail, 7)) == 7 and with_tie(detail, 7).count(b"_rptie_") == 1
