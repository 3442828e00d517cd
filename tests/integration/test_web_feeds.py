"""The feeds panel in a real Chromium against a real server reading a real SBS source over TCP.

The source is a dump1090-like listener on loopback; the server's feed connects to it. The panel shows
the feed connected with the observations the API counts, its rejects, pauses and resumes it for an
admin (the server's state follows), and shows a member the server's refusal instead of the list.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from rallypoint.fusion.emit import SbsEmitter
from rallypoint.model.track import Domain, Identity, IdentityKind, Observation
from tests.integration.test_feeds_merges import CALL, USER, aprs_packet, position_at, user_event
from tests.support.poll import wait_until_sync
from tests.support.server import ServerProcess
from tests.support.web_panels import add_accounts, base_url, logged_in, open_panel, password_of, shot

ACCOUNTS = {"root": ("admin", "Ops"), "alice": ("member", "A")}


@pytest.fixture
def sbs_listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(30)
        yield listener


@pytest.fixture
def feed_server(data_dir: Path, sbs_listener: socket.socket) -> Iterator[ServerProcess]:
    add_accounts(data_dir, ACCOUNTS)
    port = sbs_listener.getsockname()[1]
    with ServerProcess(data_dir, "--feed", f"sbs+tcp://127.0.0.1:{port}?name=roof-adsb") as proc:
        yield proc


def _aircraft(step: int) -> Observation:
    now = datetime.now(UTC)
    return Observation(source="truth", received_at=now, source_time=now, lat=51.40 + step * 0.001, lon=-0.45,
                       domain=Domain.AIR, identity=Identity(kind=IdentityKind.ICAO, value="4ca2d6"), name="BAW123",
                       alt_m=3000.0, speed_mps=120.0, course_deg=0.0)


def _as_admin(server: ServerProcess, path: str) -> object:
    """GET ``path`` as root (a fresh token each time: simple, and cheap next to a browser)."""
    base = base_url(server.ports)
    token = httpx.post(f"{base}/api/auth/token", auth=("root", password_of("root")), timeout=10).json()["access_token"]
    return httpx.get(f"{base}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()


def _feed(server: ServerProcess) -> dict[str, object]:
    [feed] = _as_admin(server, "/api/feeds")  # type: ignore[misc]
    return feed  # type: ignore[no-any-return]


def test_a_real_feed_shows_its_status(feed_server: ServerProcess, sbs_listener: socket.socket,
                                      webgl_browser: Browser) -> None:
    source, _ = sbs_listener.accept()  # the server's feed dials the receiver
    with source:
        emitter = SbsEmitter()
        for step in range(3):
            source.sendall(emitter.emit(_aircraft(step)))
        source.sendall(b"MSG,3,this is not an SBS line\r\n")
        counted = wait_until_sync(lambda: (f := _feed(feed_server))["statistics"]["observations"] >= 3  # type: ignore[index]
                                  and f["statistics"]["rejects"] and f, "observations and a reject counted")
        with logged_in(webgl_browser, feed_server.ports, "root") as page:
            open_panel(page, "feeds")
            row = page.locator("#feeds-list li[data-feed='roof-adsb']")
            expect(row.locator(".feed-name")).to_have_text("roof-adsb")
            expect(row.locator("[data-state]")).to_have_text("connected")
            stats = counted["statistics"]
            expect(row).to_contain_text(f"{stats['observations']} ({stats['bytes']} bytes")  # type: ignore[index]
            expect(row).to_contain_text("Rejects")
            expect(row).to_contain_text("malformed 1")
            expect(page.locator("#feeds-proposals")).to_contain_text("no open proposals")
            # More data: the periodic refresh shows the new count and a rate.
            for step in range(3, 6):
                source.sendall(emitter.emit(_aircraft(step)))
            wait_until_sync(lambda: _feed(feed_server)["statistics"]["observations"] >= 6,  # type: ignore[index]
                            "three more observations")
            expect(row).to_contain_text(" obs/s", timeout=20_000)
            expect(row).to_contain_text("data seen ")
            row.scroll_into_view_if_needed()
            shot(page, "feeds")
            # Pause and resume from the panel: the server's state follows.
            row.get_by_role("button", name="Pause roof-adsb").click()
            expect(row.locator("[data-state]")).to_have_text("paused")
            assert _feed(feed_server)["paused"] is True
            row.get_by_role("button", name="Resume roof-adsb").click()
            expect(row.locator("[data-state]")).to_have_text("connected")
            assert _feed(feed_server)["paused"] is False


def test_a_member_sees_the_refusal(feed_server: ServerProcess, webgl_browser: Browser) -> None:
    with logged_in(webgl_browser, feed_server.ports, "alice") as page:
        open_panel(page, "feeds")
        expect(page.locator("#feeds-list")).to_have_text("requires role admin")
        assert page.locator("#feeds-list button").count() == 0


def test_an_admin_accepts_a_merge_proposal(data_dir: Path, sbs_listener: socket.socket, webgl_browser: Browser) -> None:
    """A TAK user and an APRS tracker in one vehicle (as in test_feeds_merges): the panel lists the
    tracker's proposal, and Accept merges them on the server."""
    add_accounts(data_dir, ACCOUNTS)
    port = sbs_listener.getsockname()[1]
    feed = f"aprs+tcp://127.0.0.1:{port}?login=N0CALL&name=aprs"
    stop = threading.Event()
    with ServerProcess(data_dir, "--feed", feed) as server:
        aprs, _ = sbs_listener.accept()
        with aprs, socket.create_connection(("127.0.0.1", server.ports["cot"]), timeout=10) as tak:
            started = time.monotonic()

            def drive() -> None:
                while not stop.is_set():
                    lat, lon = position_at(started)
                    tak.sendall(user_event(lat, lon))
                    aprs.sendall(aprs_packet(lat, lon))
                    stop.wait(0.5)  # the simulated devices' report rate, not synchronisation

            driver = threading.Thread(target=drive, daemon=True)
            driver.start()
            try:
                with logged_in(webgl_browser, server.ports, "root") as page:
                    open_panel(page, "feeds")
                    pair = f"TAK-{USER} + APRS-{CALL}"
                    expect(page.locator("#feeds-proposals")).to_contain_text(pair, timeout=45_000)
                    page.locator("#feeds-proposals li", has_text=pair).get_by_role("button", name="accept").click()
                    expect(page.locator("#feeds-status")).to_contain_text(": accepted")
                    expect(page.locator("#feeds-proposals")).to_have_text("no open proposals")
            finally:
                stop.set()
                driver.join(timeout=10)
        assert _as_admin(server, "/api/feeds/proposals") == []
