"""The emergency banner in a real Chromium against a real server and a raw TCP TAK client.

A TAK client's 911 alert raises the red banner (who, where, kind) for the users who read its group and
for no one else; the alarm beeps until the user acknowledges; the acknowledgement is recorded, audited
and shown to other viewers; only an approver is offered Cancel, and cancelling clears every banner and
reaches the TAK client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.accounts import run_cli
from tests.support.cot_client import cot, sa
from tests.support.poll import wait_until_sync
from tests.support.server import ServerProcess
from tests.support.tak_socket import TakSocket
from tests.support.web_panels import add_accounts, logged_in, shot

# carol and dave read __ANON__ (plain TCP clients' group); dave approves. alice reads group A only.
ACCOUNTS = {"carol": ("member",), "dave": ("approver",), "alice": ("member", "A")}
ALERT_UID = "tak-echo-9-1-1"
# What the banner says of it: kind, callsign, lat/lon and MGRS (the digits from pyproj's UTM zone 10).
WHAT = "911 Alert: ECHO-Alert at 39.10000, -120.50000 (10S GJ 16188 30849)"


@pytest.fixture
def alert_server(data_dir: Path) -> Iterator[ServerProcess]:
    add_accounts(data_dir, ACCOUNTS)
    with ServerProcess(data_dir) as proc:
        yield proc


def _alert(uid: str = ALERT_UID) -> bytes:
    """ATAK's 911 Alert: ``<selfUid>-9-1-1``, linked to the device, ``<callsign>-Alert``."""
    detail = ('<link uid="tak-echo" type="a-f-G-U-C" relation="p-p"/><contact callsign="ECHO-Alert"/>'
              '<emergency type="911 Alert">ECHO</emergency>')
    return cot(uid, "b-a-o-tbl", detail=detail, how="h-e", lat=39.1, lon=-120.5, stale_s=20)


def _audited(data_dir: Path, action: str) -> list[dict[str, Any]]:
    """Audit entries of ``action``, as ``rallypoint audit list --json`` shows them (the server is running)."""
    entries = json.loads(run_cli(data_dir, "audit", "list", "--json").stdout)
    return [e for e in entries if e["action"] == action]


def _beeps(page: Page) -> int:
    return int(page.locator("#emergency-banner").get_attribute("data-beeps") or 0)


def test_an_alert_raises_the_banner_is_acknowledged_and_cancelled(
    alert_server: ServerProcess, webgl_browser: Browser, data_dir: Path
) -> None:
    ports = alert_server.ports
    with (
        TakSocket(ports["cot"]) as tak,
        logged_in(webgl_browser, ports, "carol") as carol,
        logged_in(webgl_browser, ports, "dave") as dave,
        logged_in(webgl_browser, ports, "alice") as alice,
    ):
        tak.send(sa("tak-echo", "ECHO", lat=39.1, lon=-120.5))
        carol.wait_for_function("() => rallypoint.picture.units.has('tak-echo')")
        tak.send(_alert())
        banner = carol.locator("#emergency-banner")
        expect(banner).to_be_visible()
        expect(banner.locator("#emergency-text")).to_have_text(WHAT)
        expect(banner.locator("#emergency-acks")).to_have_text("not acknowledged")
        expect(banner).to_have_attribute("data-sounding", "true")
        carol.wait_for_function("() => Number(document.getElementById('emergency-banner').dataset.beeps) >= 2")
        expect(banner.get_by_role("button", name="Cancel alert")).to_be_hidden()  # carol is a member
        expect(dave.locator("#emergency-banner").get_by_role("button", name="Cancel alert")).to_be_visible()
        # The panel lists it too.
        expect(carol.locator("#panel-emergencies .emergency-item .emergency-what")).to_have_text(
            [WHAT])

        banner.get_by_role("button", name="Zoom to ECHO-Alert").click()
        expect(carol.locator("#sel-callsign")).to_have_text("ECHO")

        # carol acknowledges: her alarm stops; dave sees who did, and his alarm goes on.
        banner.get_by_role("button", name="Acknowledge").click()
        expect(banner).to_have_attribute("data-sounding", "false")
        expect(banner.get_by_role("button", name="Acknowledged")).to_be_disabled()
        expect(dave.locator("#emergency-acks")).to_have_text("acknowledged by carol")
        expect(dave.locator("#emergency-banner")).to_have_attribute("data-sounding", "true")
        silenced = _beeps(carol)
        dave.wait_for_function("(n) => Number(document.getElementById('emergency-banner').dataset.beeps) >= n",
                               arg=_beeps(dave) + 2)
        assert _beeps(carol) == silenced  # no beep after her acknowledgement
        acks = wait_until_sync(lambda: _audited(data_dir, "emergency.ack"), "the acknowledgement audited")
        assert [(e["actor"], e["target"]) for e in acks] == [("carol", ALERT_UID)]
        shot(dave, "emergency")

        # alice reads group A only: the alert never reached her page.
        expect(alice.locator("#emergency-banner")).to_be_hidden()
        assert alice.locator("#panel-emergencies .emergency-item").count() == 0

        # dave (an approver) cancels: every banner clears and the TAK client is told.
        dave.locator("#emergency-banner").get_by_role("button", name="Cancel alert").click()
        expect(dave.locator("#emergency-banner")).to_be_hidden()
        expect(banner).to_be_hidden()
        expect(dave.locator("#emergency-banner")).to_have_attribute("data-sounding", "false")
        tak.wait_for(lambda e: e.uid == ALERT_UID and e.type == "b-a-o-can")


def test_acknowledging_needs_an_active_alert_the_caller_reads(
    alert_server: ServerProcess, webgl_browser: Browser
) -> None:
    ports = alert_server.ports
    with TakSocket(ports["cot"]) as tak, logged_in(webgl_browser, ports, "alice") as alice:
        tak.send(_alert())
        with logged_in(webgl_browser, ports, "carol") as carol:
            expect(carol.locator("#emergency-banner")).to_be_visible()
            # alice (group A) cannot acknowledge it, nor an alert that does not exist: the same 404.
            for uid in (ALERT_UID, "no-such-alert"):
                status = alice.evaluate("""async (uid) => (await fetch(`/api/emergencies/${uid}/ack`,
                    { method: "POST", headers: { "X-Requested-With": "rallypoint-web" } })).status""", uid)
                assert status == 404, uid
            expect(carol.locator("#emergency-acks")).to_have_text("not acknowledged")
