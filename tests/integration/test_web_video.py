"""The Video panel in a real Chromium against a real server and a real HLS stream (ffmpeg's test pattern).

A feed registered through the Marti video API is listed (name as text, no credentials anywhere in the
page), drawn on the map at its position (a click there opens the panel at the feed), and plays in the
panel through the server's HLS relay under the page's strict policy: the <video> element reports the
stream's 320x240 and its time advances.
Skipped with the reason when ffmpeg (or its H.264 encoder) is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.integration.test_web_picture import PASSWORD, _log_in, _open, _shot
from tests.support.accounts import run_cli
from tests.support.hls import HEIGHT, WIDTH, hls_server, hls_stream
from tests.support.server import ServerProcess

CREDENTIALS = "viewer:stream-secret-9"
ALIAS = "<b>Gate</b> pattern"  # markup in a name must stay text


@pytest.fixture
def video_server(data_dir: Path) -> Iterator[ServerProcess]:
    """carol has no groups: she reads __ANON__, where the plain HTTP port's callers register feeds."""
    run_cli(data_dir, "user", "add", "carol", "--password-stdin", stdin=PASSWORD + "\n")
    with ServerProcess(data_dir) as proc:
        yield proc


def test_a_registered_hls_feed_is_listed_on_the_map_and_plays(
    video_server: ServerProcess, webgl_page: Page, tmp_path: Path,
) -> None:
    hls_stream(tmp_path / "hls")
    page = webgl_page
    policy_errors: list[str] = []
    page.on("console", lambda m: policy_errors.append(m.text) if _is_policy_error(m) else None)
    with hls_server(tmp_path / "hls", credentials=CREDENTIALS) as media:
        base = f"http://127.0.0.1:{video_server.ports['http']}"
        url = f"http://{CREDENTIALS}@{media.removeprefix('http://')}/index.m3u8"
        body = {"videoConnections": [{"uuid": "pattern", "alias": ALIAS, "feeds": [
            {"uuid": "pattern", "alias": ALIAS, "url": url, "latitude": "48.8566", "longitude": "2.3522"}]}]}
        assert httpx.post(f"{base}/Marti/api/video", json=body, timeout=30).status_code == 200
        _open(page, video_server)
        _log_in(page, "carol")
        page.click("#panel-video summary")
        item = page.locator('#video-list li[data-feed="pattern"]')
        expect(item.locator(".feed-name")).to_have_text(ALIAS)  # the name as text, not markup
        assert page.locator("#video-list b").count() == 0
        # On the map where it is: "Show" flies there and the feed's point is drawn.
        item.get_by_role("button", name=f"Show {ALIAS} on the map").click()
        page.wait_for_function(
            "() => rallypoint.view.map.querySourceFeatures('video-feeds').some((f) => f.properties.uid === 'pattern')")
        # A click on the dot opens the (closed) panel at the feed: its Play button takes the focus.
        page.wait_for_function("() => !rallypoint.view.map.isMoving()")
        page.click("#panel-video summary")
        expect(page.locator("#panel-video")).not_to_have_attribute("open", "")
        x, y = page.evaluate("() => { const p = rallypoint.view.map.project([2.3522, 48.8566]); return [p.x, p.y]; }")
        page.locator("#map canvas").click(position={"x": x, "y": y})
        play = item.get_by_role("button", name=f"Play {ALIAS}")
        expect(play).to_be_focused()
        # Play, by keyboard: Enter presses the focused button.
        page.keyboard.press("Enter")
        page.wait_for_function(
            """([w, h]) => { const v = document.getElementById('video-player');
                            return v.readyState >= 1 && v.videoWidth === w && v.videoHeight === h; }""",
            arg=[WIDTH, HEIGHT], timeout=60_000)
        page.wait_for_function("() => document.getElementById('video-player').currentTime > 0.5", timeout=60_000)
        engine = page.get_attribute("#video-player", "data-engine")
        assert engine in ("hls.js", "native")
        _shot(page, "video")
        secret = CREDENTIALS.split(":")[1]
        assert secret not in page.content()
        assert secret not in str(page.evaluate("() => performance.getEntriesByType('resource').map((e) => e.name)"))
        page.click("#video-stop")
        expect(page.locator("#video-player")).to_be_hidden()
    assert not policy_errors, policy_errors


def _is_policy_error(message: ConsoleMessage) -> bool:
    return message.type == "error" and "Content Security Policy" in message.text
