"""The tasks panel in a real Chromium against a real server and a raw TAK client over TCP.

A task created in the page for a contact of the picture reaches that client as ``t-x-rp-task``; the status
the client reports (``t-x-rp-task-s``, docs/tasks.md) shows in the page with its note kept as text; a move
made in the page reaches the client.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
from playwright.sync_api import Browser, expect

from rallypoint.model.cot import CotEvent
from tests.support.cot_client import cot, sa
from tests.support.server import ServerProcess
from tests.support.tak_socket import TakSocket
from tests.support.web_panels import XSS_IMG, logged_in, open_panel, serve_with_accounts, shot

ACCOUNTS = {"cora": ("member",)}  # no groups: __ANON__, where the plain TCP client is
ALPHA = "ANDROID-alpha"


@pytest.fixture
def server(data_dir: Path) -> Iterator[ServerProcess]:
    yield from serve_with_accounts(data_dir, ACCOUNTS)


def _task_attr(event: CotEvent, name: str) -> str | None:
    found = re.search(rf'<__rallypoint_task [^>]*\b{name}="([^"]*)"'.encode(), event.detail.xml)
    return found.group(1).decode() if found else None


def _is_task(task_id: str, state: str) -> Callable[[CotEvent], bool]:
    return lambda e: (e.type == "t-x-rp-task" and _task_attr(e, "id") == task_id
                      and _task_attr(e, "state") == state)


def test_a_task_made_in_the_page_reaches_the_assignee_and_its_status_comes_back(server: ServerProcess,
                                                                                webgl_browser: Browser) -> None:
    outside: list[str] = []
    with TakSocket(server.ports["cot"]) as tak, logged_in(webgl_browser, server.ports, "cora", outside=outside) as page:
        tak.send(sa(ALPHA, "ALPHA", lat=39.1, lon=-120.0))
        page.wait_for_function("(uid) => rallypoint.picture.units.has(uid)", arg=ALPHA)
        open_panel(page, "tasks")
        panel = page.locator("#panel-tasks")
        panel.locator("summary", has_text="New task").click()
        panel.get_by_label("Task", exact=True).fill("Sweep sector B")
        panel.get_by_label("Details").fill("from the north,\nquietly")
        panel.get_by_label("Priority").select_option("1")
        panel.get_by_label("Assignee (contact)").select_option(label="ALPHA")
        panel.get_by_role("button", name="Pick on map").click()
        page.wait_for_function("() => rallypoint.view.map.loaded()")
        page.locator("#map canvas").click(position={"x": 350, "y": 320})
        expect(panel.get_by_label("Latitude")).not_to_have_value("")
        panel.get_by_label("Latitude").fill("39.2")
        panel.get_by_label("Longitude").fill("-120.1")
        panel.get_by_label("Due (local time)").fill("2099-05-01T14:00")
        panel.get_by_role("button", name="Assign").click()
        item = panel.locator("li.task.state-assigned", has_text="Sweep sector B")
        expect(item).to_have_count(1)
        task_id = item.get_attribute("data-id")
        assert task_id

        # The assignee's client gets the task at its place, for it.
        sent = tak.wait_for(_is_task(task_id, "assigned"))
        assert sent.uid == f"rp-task-{task_id}" and _task_attr(sent, "creator") == "cora"
        assert (round(sent.point.lat, 5), round(sent.point.lon, 5)) == (39.2, -120.1)
        assert b'relation="t-a"' in sent.detail.xml and ALPHA.encode() in sent.detail.xml
        assert _task_attr(sent, "priority") == "1"
        assert b"<remarks>Sweep sector B\n\nfrom the north,\nquietly</remarks>" in sent.detail.xml

        # The client reports progress with the status CoT; the page follows, the note kept as text.
        status = (f'<__rallypoint_task_status id="{task_id}" state="in_progress" note={quoteattr(XSS_IMG)}/>'
                  '<marti><dest uid="rallypoint-tasks"/></marti>')
        tak.send(cot("status-1", "t-x-rp-task-s", detail=status, lat=0.0, lon=0.0, how="h-g-i-g-o"))
        expect(panel.locator(f"li.task.state-in_progress[data-id='{task_id}']")).to_have_count(1)
        panel.locator(f"li.task[data-id='{task_id}'] button").click()
        history = panel.locator(".task-history li")
        expect(history).to_have_count(2)
        expect(history.nth(1)).to_contain_text("in progress by ALPHA via cot")
        expect(history.nth(1)).to_contain_text(XSS_IMG)
        assert page.evaluate("() => window.__xss ?? null") is None
        assert panel.locator("img").count() == 0
        expect(panel.locator(".task-detail dd").nth(1)).to_have_text("from the north,\nquietly")
        expect(panel.locator(".task-detail dd").nth(2)).to_have_text("1")
        expect(panel.locator(".task-detail dd").nth(4)).to_have_text(f"ALPHA ({ALPHA})")
        # The task's place is drawn on the map, in its state.
        page.evaluate("() => rallypoint.view.map.jumpTo({ center: [-120.05, 39.15], zoom: 10 })")
        page.wait_for_function("""(id) => rallypoint.view.map.querySourceFeatures('tasks')
                                   .some((f) => f.properties.id === id && f.properties.state === 'in_progress')""",
                               arg=task_id)
        shot(page, "tasks")

        # A move made in the page reaches the client.
        panel.get_by_label("New status").select_option("done")
        panel.get_by_label("Note").fill("all clear")
        panel.get_by_role("button", name="Change status").click()
        expect(panel.locator(f"li.task.state-done[data-id='{task_id}']")).to_have_count(1)
        tak.wait_for(_is_task(task_id, "done"))
        expect(panel.get_by_role("button", name="Change status")).to_have_count(0)  # final: nothing more to do
    assert outside == []


def test_a_refused_task_shows_the_servers_reason(server: ServerProcess, webgl_browser: Browser) -> None:
    with logged_in(webgl_browser, server.ports, "cora") as page:
        open_panel(page, "tasks")
        panel = page.locator("#panel-tasks")
        panel.locator("summary", has_text="New task").click()
        panel.get_by_label("Task", exact=True).fill("No one to do it")
        # From the keyboard, the place is the map's centre.
        panel.get_by_role("button", name="Map centre").focus()
        page.keyboard.press("Enter")
        centre = page.evaluate("() => rallypoint.view.map.getCenter().wrap().lat.toFixed(6)")
        expect(panel.get_by_label("Latitude")).to_have_value(centre)
        panel.get_by_role("button", name="Assign").click()
        expect(panel.get_by_role("alert").filter(has_text="contact")).to_have_text("choose a contact or name a team")
        # A due time the server refuses (before 2000): its own words are shown, nothing is stored.
        panel.get_by_label("or team").fill("Cyan")
        panel.get_by_label("Due (local time)").fill("1990-01-01T00:00")
        panel.get_by_role("button", name="Assign").click()
        expect(panel.get_by_role("alert").filter(has_text="due")).to_contain_text("due_ms")
        assert page.evaluate("async () => (await (await fetch('/api/tasks')).json()).length") == 0
        # A team task in a mission: the form offers the caller's missions.
        made = page.evaluate("""async () => (await fetch('/api/missions', { method: 'POST',
            headers: { 'X-Requested-With': 'rallypoint-web', 'Content-Type': 'application/json' },
            body: JSON.stringify({ name: 'Op Dawn' }) })).status""")
        assert made == 201
        panel.locator("summary", has_text="New task").click()  # closed and opened: the choices are read again
        panel.locator("summary", has_text="New task").click()
        panel.get_by_label("Mission").select_option("Op Dawn")
        panel.get_by_label("Due (local time)").fill("")
        panel.get_by_role("button", name="Assign").click()
        item = panel.locator("li.task.state-assigned", has_text="No one to do it")
        expect(item).to_contain_text("team Cyan")
        item.get_by_role("button").click()
        expect(panel.locator(".task-detail")).to_contain_text("Op Dawn")
