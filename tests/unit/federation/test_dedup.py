"""The node-wide duplicate check for federated reports: what counts as seen, and what it forgets."""

from __future__ import annotations

from rallypoint.federation.dedup import RecentReports
from rallypoint.model.cot import CotEvent, Point
from rallypoint.protocol.xml_codec import make_event
from tests.unit.federation.test_link_budget import LIMITS

NOW = 1_000_000


def _event(uid: str, *, time: int = NOW, cot_type: str = "a-f-G-U-C", stale: int = NOW + 60_000) -> CotEvent:
    return make_event(uid=uid, type=cot_type, how="m-g", time=time, start=time, stale=stale,
                      point=Point(lat=1.0, lon=2.0), detail_xml=b"", limits=LIMITS)


def test_same_report_is_a_duplicate_an_older_position_too_a_newer_one_not() -> None:
    recent = RecentReports()
    recent.remember(_event("p"), coalesced=True, now_ms=NOW)
    assert recent.duplicate(_event("p"), coalesced=True)
    assert recent.duplicate(_event("p", time=NOW - 1), coalesced=True)
    assert not recent.duplicate(_event("p", time=NOW + 1), coalesced=True)
    # Priority traffic is matched exactly, never by age (a receipt may carry an earlier time).
    recent.remember(_event("c", cot_type="b-t-f"), coalesced=False, now_ms=NOW)
    assert recent.duplicate(_event("c", cot_type="b-t-f"), coalesced=False)
    assert not recent.duplicate(_event("c", cot_type="b-t-f-d", time=NOW - 1), coalesced=False)
    assert recent.duplicates == 3


def test_a_forgotten_uid_is_accepted_again_even_as_a_replay() -> None:
    recent = RecentReports()
    recent.remember(_event("p"), coalesced=True, now_ms=NOW)
    recent.forget("p")
    assert not recent.duplicate(_event("p"), coalesced=True)
    assert not recent.duplicate(_event("p", time=NOW - 1), coalesced=True)


def test_memory_is_bounded_by_capacity_and_stale() -> None:
    recent = RecentReports(capacity=10)
    for i in range(50):
        recent.remember(_event(f"u{i}"), coalesced=True, now_ms=NOW)
    assert len(recent) <= 20
    assert recent.duplicate(_event("u49"), coalesced=True)
    recent.remember(_event("late", stale=NOW + 120_000), coalesced=True, now_ms=NOW + 61_000)
    # Everything stale by then is gone; the newest stays.
    assert len(recent) == 2
    assert recent.duplicate(_event("late", stale=NOW + 120_000), coalesced=True)
