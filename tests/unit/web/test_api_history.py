"""``/api/history`` paging: the group filter runs in the store and a cursor reaches every readable row."""

from __future__ import annotations

import asyncio

from rallypoint.model.cot import Point
from rallypoint.protocol.xml_codec import make_event
from rallypoint.storage.base import stored_event_from_cot
from tests.unit.web.test_api_harness import NOW, Harness, harness_fixture  # noqa: F401


def _rows(h: Harness, prefix: str, group: str, count: int, start: int) -> None:
    rows = []
    for i in range(count):
        t = start + i // 2  # pairs share a time: the cursor must break ties
        event = make_event(uid=f"{prefix}-{i}", type="a-f-G", how="m-g", time=t, start=t, stale=t + 60_000,
                           point=Point(1.0, 2.0, 0.0))
        rows.append(stored_event_from_cot(event, received=t, groups={group}))
    asyncio.run(h.store.append(rows))


def test_a_small_group_gets_full_pages_and_every_row_once(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    # Many rows of another group around few of alice's: filtering after a 4x over-fetch found none.
    _rows(harness, "b", "B", 300, NOW)
    _rows(harness, "a", "A", 7, NOW + 100)
    _rows(harness, "c", "B", 300, NOW + 200)
    alice = harness.bearer("alice")
    for order, expected in (("asc", [f"a-{i}" for i in range(7)]), ("desc", [f"a-{i}" for i in range(7)][::-1])):
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, str | int] = {"limit": 3, "order": order}
            if cursor is not None:
                params["cursor"] = cursor
            page = harness.http.get("/api/history", headers=alice, params=params).json()
            pages += 1
            assert page["count"] == len(page["events"]) > 0, page
            seen.extend(e["uid"] for e in page["events"])
            if not page["truncated"]:
                assert page["next"] is None
                break
            assert page["count"] == 3
            cursor = page["next"]
        assert seen == expected, order
        assert pages == 3


def test_rows_appended_after_a_page_do_not_shift_the_next_one(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    _rows(harness, "a", "A", 4, NOW)
    alice = harness.bearer("alice")
    first = harness.http.get("/api/history?limit=2", headers=alice).json()
    assert [e["uid"] for e in first["events"]] == ["a-0", "a-1"]
    _rows(harness, "late", "A", 1, NOW + 50)
    rest = harness.http.get(f"/api/history?limit=10&cursor={first['next']}", headers=alice).json()
    assert [e["uid"] for e in rest["events"]] == ["a-2", "a-3", "late-0"]
    assert rest["truncated"] is False and rest["next"] is None


def test_a_cursor_not_handed_out_is_400(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    alice = harness.bearer("alice")
    for bad in ("x", "1.", ".1", "1.2.3", "1.99999999999999999999", "a.b"):
        answer = harness.http.get("/api/history", headers=alice, params={"cursor": bad})
        assert answer.status_code == 400, bad
        assert answer.json()["error"] == "bad_parameter"


def test_bbox_west_of_east_needs_antimeridian_and_then_crosses_it(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    rows = []
    for uid, lon in (("fiji", 178.5), ("samoa", -172.0), ("greenwich", 0.5)):
        event = make_event(uid=uid, type="a-f-G", how="m-g", time=NOW, start=NOW, stale=NOW + 60_000,
                           point=Point(-17.0, lon, 0.0))
        rows.append(stored_event_from_cot(event, received=NOW, groups={"A"}))
    asyncio.run(harness.store.append(rows))
    alice = harness.bearer("alice")

    refused = harness.http.get("/api/history?bbox=170,-20,-170,-10", headers=alice)
    assert refused.status_code == 400
    detail = refused.json()["detail"]
    assert "west (170) is greater than east (-170)" in detail and "antimeridian=true" in detail, detail

    crossing = harness.http.get("/api/history?bbox=170,-20,-170,-10&antimeridian=true", headers=alice)
    assert crossing.status_code == 200, crossing.text
    assert sorted(e["uid"] for e in crossing.json()["events"]) == ["fiji", "samoa"]

    for query, words in (
        ("bbox=-10,-20,10,-10&antimeridian=true", "needs a box that crosses"),
        ("antimeridian=true", "only qualifies a bbox"),
        ("bbox=0,95,1,96", "latitude must be within -90..90"),
        ("bbox=0,-20,1", "four numbers"),
        ("bbox=0,-20,1,-10&antimeridian=maybe", "antimeridian must be true or false"),
    ):
        answer = harness.http.get(f"/api/history?{query}", headers=alice)
        assert answer.status_code == 400 and words in answer.json()["detail"], (query, answer.text)
    # The map's area filter follows the same rule.
    assert harness.http.get("/api/tracks?bbox=170,-20,-170,-10", headers=alice).status_code == 400
    assert harness.http.get("/api/tracks?bbox=170,-20,-170,-10&antimeridian=true", headers=alice).status_code == 200
