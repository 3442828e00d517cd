"""``/api/replay``: addressed rows follow the history rule, and an export larger than its cap is a 413."""

from __future__ import annotations

import asyncio
import dataclasses

from starlette.applications import Starlette
from starlette.testclient import TestClient

from rallypoint.model.cot import Point
from rallypoint.protocol.xml_codec import make_event
from rallypoint.security.users import Role
from rallypoint.services.metrics import ServerMetrics
from rallypoint.storage.base import stored_event_from_cot
from rallypoint.web.api.common import routes_of
from rallypoint.web.api.replay import ReplayApi
from rallypoint.web.api.schemas import HistoryPage
from tests.unit.web.test_api_harness import NOW, Harness, harness_fixture  # noqa: F401

WINDOW = {"since": str(NOW), "until": str(NOW + 60_000)}


def _store(h: Harness) -> None:
    rows = []
    for i in range(6):
        t = NOW + i * 1000
        event = make_event(uid=f"a-{i}", type="a-f-G", how="m-g", time=t, start=t, stale=t + 60_000,
                           point=Point(1.0, 2.0 + i / 10, 0.0))
        rows.append(stored_event_from_cot(event, received=t, groups={"A"}, sender="alice"))
    chat = make_event(uid="chat-1", type="b-t-f", how="h-g-i-g-o", time=NOW + 500, start=NOW + 500,
                      stale=NOW + 60_000, point=Point(0.0, 0.0, 0.0))
    rows.append(stored_event_from_cot(chat, received=NOW + 500, groups=(), sender="alice"))
    asyncio.run(h.store.append(rows))


def _uids(h: Harness, headers: dict[str, str]) -> list[str]:
    answer = h.http.get("/api/replay", params=WINDOW, headers=headers)
    assert answer.status_code == 200, answer.text
    page = HistoryPage(**answer.json())
    return [e["uid"] for e in page.events]  # type: ignore[index]


def test_addressed_rows_reach_their_sender_and_admins_only(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    harness.add_user("amy", {"A"})
    harness.add_user("root", {"Ops"}, role=Role.ADMIN)
    _store(harness)
    assert _uids(harness, harness.bearer("alice")) == ["a-0", "chat-1", "a-1", "a-2", "a-3", "a-4", "a-5"]
    assert _uids(harness, harness.bearer("amy")) == ["a-0", "a-1", "a-2", "a-3", "a-4", "a-5"]
    assert "chat-1" in _uids(harness, harness.bearer("root"))


def test_an_export_past_its_cap_is_413_not_a_cut_file(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    _store(harness)
    # A second ReplayApi registers its counters again: it gets metrics of its own.
    api = ReplayApi(dataclasses.replace(harness.ctx, metrics=ServerMetrics()), harness.api.auth, max_export=5)
    http = TestClient(Starlette(routes=routes_of(api.endpoints())), base_url="http://127.0.0.1")
    alice = harness.bearer("alice")
    too_many = http.get("/api/replay/export", params={**WINDOW, "format": "csv"}, headers=alice)
    assert too_many.status_code == 413 and too_many.json()["error"] == "window_too_large"
    assert "more than 5 events" in too_many.json()["detail"]
    narrower = http.get("/api/replay/export", params={**WINDOW, "format": "csv", "until": str(NOW + 3000)},
                        headers=alice)
    assert narrower.status_code == 200 and narrower.text.count("\n") == 1 + 4  # header, 3 reports and the chat
    assert api.refused == 1 and api.exports == 1
