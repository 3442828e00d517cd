"""The designations panel in two real Chromium pages (a member and an approver) against a real server.

The member proposes a point picked on the map; the approver approves it in the other page; the approved
designation reaches a raw CoT client over TCP; the member never gets approve buttons and the server refuses
her request anyway; an approver's own proposal is refused with the server's two-person-rule wording; a
script payload in a title stays text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.server import ServerProcess
from tests.support.tak_socket import TakSocket
from tests.support.web_panels import (
    XSS_IMG,
    base_url,
    logged_in,
    open_panel,
    password_of,
    serve_with_accounts,
    shot,
)

# No groups: both read and write __ANON__, where the plain TCP client is.
ACCOUNTS = {"mia": ("member",), "abe": ("approver",)}


@pytest.fixture
def server(data_dir: Path) -> Iterator[ServerProcess]:
    yield from serve_with_accounts(data_dir, ACCOUNTS)


def _drawn_state(page: Page, designation_id: str) -> str | None:
    """The state of the designation as drawn in the map's ``designations`` source (None: not drawn)."""
    return page.evaluate(  # type: ignore[no-any-return]
        """(id) => rallypoint.view.map.querySourceFeatures('designations')
                     .find((f) => f.properties.id === id)?.properties.state ?? null""", designation_id)


def _propose_by_clicking(page: Page) -> str:
    open_panel(page, "designations")
    panel = page.locator("#panel-designations")
    panel.locator("summary", has_text="Propose a designation").click()
    panel.get_by_label("Name").fill("Sniper on the ridge")
    panel.get_by_label("Category").select_option("hazard")
    panel.get_by_label("Affiliation").select_option("hostile")
    panel.get_by_label("Priority").select_option("2")
    panel.get_by_label("Remarks").fill("seen at dawn")
    panel.get_by_role("button", name="Pick on map").click()
    page.wait_for_function("() => rallypoint.view.map.loaded()")
    page.locator("#map canvas").click(position={"x": 300, "y": 300})
    expect(panel.get_by_label("Latitude")).not_to_have_value("")
    # The click filled the point; a known one keeps the test's checks exact.
    panel.get_by_label("Latitude").fill("39.1")
    panel.get_by_label("Longitude").fill("-120.03")
    panel.get_by_role("button", name="Propose", exact=True).click()
    item = panel.locator("li.designation.state-proposed", has_text="Sniper on the ridge")
    expect(item).to_have_count(1)
    designation_id = item.locator("button").get_attribute("data-id")
    assert designation_id
    return designation_id


def test_a_member_proposes_an_approver_approves_and_tak_clients_get_it(server: ServerProcess,
                                                                       webgl_browser: Browser) -> None:
    with (TakSocket(server.ports["cot"]) as tak, logged_in(webgl_browser, server.ports, "mia") as mia,
          logged_in(webgl_browser, server.ports, "abe") as abe):
        assert mia.evaluate("async () => (await (await fetch('/api/web/session')).json()).role") == "member"
        designation_id = _propose_by_clicking(mia)
        mia.wait_for_function("(id) => rallypoint.view.map.querySourceFeatures('designations')"
                              ".some((f) => f.properties.id === id)", arg=designation_id)
        assert _drawn_state(mia, designation_id) == "proposed"
        # The proposal is marked unapproved for the TAK client; the member sees no decision to take.
        tak.wait_for(lambda e: e.uid == f"designation.{designation_id}.proposed")
        panel = mia.locator("#panel-designations")
        panel.locator(f"button[data-id='{designation_id}']").click()
        expect(panel.locator(".designation-trail")).to_contain_text("proposed by mia")
        expect(panel.get_by_role("button", name="Approve")).to_have_count(0)
        expect(panel.locator(".designation-rule")).to_contain_text("another account with the approver role")
        expect(panel.get_by_role("button", name="Withdraw")).to_have_count(1)
        # Asked directly from her page, the server refuses her anyway (the two-person rule's role check).
        status, detail = mia.evaluate("""async (id) => {
            const r = await fetch(`/api/designations/${id}/approve`, { method: 'POST',
                                  headers: { 'X-Requested-With': 'rallypoint-web' } });
            return [r.status, (await r.json()).detail]; }""", designation_id)
        assert status == 403 and "requires role approver" in detail

        # The approver, in the other page, approves it.
        open_panel(abe, "designations")
        theirs = abe.locator("#panel-designations")
        theirs.locator(f"button[data-id='{designation_id}']").click()
        theirs.get_by_role("button", name="Approve").click()
        expect(theirs.locator(f"li.designation.state-approved button[data-id='{designation_id}']")).to_have_count(1)
        expect(theirs.locator(".designation-trail")).to_contain_text("approved by abe")

        approved = tak.wait_for(lambda e: e.uid == f"designation.{designation_id}")
        assert approved.type == "a-h-G" and approved.detail.callsign == "Sniper on the ridge"
        assert b'state="approved"' in approved.detail.xml and b'approver="abe"' in approved.detail.xml
        # The proposer's page follows: approved in the list and drawn as approved.
        expect(panel.locator(f"li.designation.state-approved button[data-id='{designation_id}']")).to_have_count(1)
        mia.wait_for_function("""(id) => rallypoint.view.map.querySourceFeatures('designations')
                                   .some((f) => f.properties.id === id && f.properties.state === 'approved')""",
                              arg=designation_id)
        # A second proposal beside it: proposed (a hollow ring) and approved (a disc) are drawn apart.
        second = mia.evaluate("""async () => (await (await fetch('/api/designations', { method: 'POST',
            headers: { 'X-Requested-With': 'rallypoint-web', 'Content-Type': 'application/json' },
            body: JSON.stringify({ title: 'Ford, maybe', category: 'landing_site', affiliation: 'friend',
                                   point: { lat: 39.105, lon: -120.015 } }) })).json()).id""")
        abe.evaluate("() => rallypoint.view.map.jumpTo({ center: [-120.025, 39.1], zoom: 12 })")
        abe.wait_for_function("""(id) => rallypoint.view.map.querySourceFeatures('designations')
                                   .some((f) => f.properties.id === id && f.properties.state === 'proposed')""",
                              arg=second)
        shot(abe, "designations")


def test_an_approver_cannot_decide_their_own_and_titles_stay_text(server: ServerProcess,
                                                                  webgl_browser: Browser) -> None:
    with httpx.Client(base_url=base_url(server.ports), timeout=30) as http:
        token = http.post("/api/auth/token", auth=("abe", password_of("abe"))).json()["access_token"]
        own = http.post("/api/designations", headers={"Authorization": f"Bearer {token}"},
                        json={"title": XSS_IMG[:120], "category": "watch", "notes": XSS_IMG,
                              "point": {"lat": 39.2, "lon": -120.1}})
        assert own.status_code == 201, own.text
    designation_id = own.json()["id"]
    outside: list[str] = []
    with logged_in(webgl_browser, server.ports, "abe", outside=outside) as abe:
        assert abe.evaluate("async () => (await (await fetch('/api/web/session')).json()).role") == "approver"
        # Clicked on the map, the designation is chosen in the panel, which opens.
        abe.evaluate("() => rallypoint.view.map.jumpTo({ center: [-120.1, 39.2], zoom: 12 })")
        abe.wait_for_function("""(id) => rallypoint.view.map.loaded() && rallypoint.view.map
                                   .querySourceFeatures('designations').some((f) => f.properties.id === id)""",
                              arg=designation_id)
        at = abe.evaluate("() => rallypoint.view.map.project([-120.1, 39.2])")
        abe.locator("#map canvas").click(position={"x": at["x"], "y": at["y"]})
        panel = abe.locator("#panel-designations")
        expect(panel.locator("h3")).to_have_text(XSS_IMG[:120])
        expect(abe.locator("#panel-designations")).to_have_attribute("open", "")
        panel.get_by_role("button", name="Approve").click()
        expect(panel.get_by_role("alert").filter(has_text="two-person rule")).to_have_text(
            "two-person rule: the proposer cannot decide their own designation")
        # Rejecting needs a reason before anything is sent; then the server refuses it the same way.
        panel.get_by_role("button", name="Reject").click()
        expect(panel.get_by_role("alert").filter(has_text="why")).to_have_count(1)
        panel.get_by_label("Reason for rejecting").fill("mine")
        panel.get_by_role("button", name="Reject").click()
        expect(panel.get_by_role("alert").filter(has_text="two-person rule")).to_have_count(1)
        # A proposal the server refuses shows its reason and adds nothing.
        panel.locator("summary", has_text="Propose a designation").click()
        panel.get_by_role("button", name="Propose", exact=True).click()  # the browser asks for a name first
        panel.get_by_label("Name").fill("   ")
        panel.get_by_role("button", name="Propose", exact=True).click()
        expect(panel.get_by_role("alert").filter(has_text="point")).to_have_text(
            "pick the designation's point on the map, or type it")
        panel.get_by_label("Latitude").fill("39.3")
        panel.get_by_label("Longitude").fill("-120.2")
        panel.get_by_role("button", name="Propose", exact=True).click()
        expect(panel.get_by_role("alert").filter(has_text="blank")).to_have_text("title: must not be blank")
        assert abe.evaluate("async () => (await (await fetch('/api/designations')).json()).length") == 1

        assert abe.evaluate("() => window.__xss ?? null") is None
        assert panel.locator("img").count() == 0
        expect(panel.locator(f"li.designation.state-proposed button[data-id='{designation_id}']")).to_have_count(1)
    assert outside == []
