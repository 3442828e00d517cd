"""The airdrop planner panel in a real Chromium (software WebGL) against a real server.

The worked example of docs/airdrop.md is entered in the page; the CARP shown must be the documented
one, and the map's ``airdrop-plan`` source must hold the DZ outline, the CARP and the footprint
with the coordinates the API answered (the page's own request, read off the wire). A refused plan
shows the API's words; a plan is kept in a mission's operation plan through the page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.server import ServerProcess
from tests.support.web_panels import XSS_IMG, base_url, logged_in, open_panel, password_of, serve_with_accounts, shot

M_PER_DEG_LAT = 111_320


@pytest.fixture
def planner_server(data_dir: Path) -> Iterator[ServerProcess]:
    """carol: no groups (``__ANON__`` both ways)."""
    yield from serve_with_accounts(data_dir, {"carol": ("member",)})


@contextmanager
def _planner(browser: Browser, server: ServerProcess) -> Iterator[Page]:
    """carol's page with the airdrop panel open."""
    with logged_in(browser, server.ports, "carol") as page:
        open_panel(page, "airdrop")
        yield page


def _token(server: ServerProcess) -> dict[str, str]:
    answer = httpx.post(f"{base_url(server.ports)}/api/auth/token", auth=("carol", password_of("carol")), timeout=10)
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _plan(page: Page) -> tuple[int, Any]:
    """Press Plan drop; the status and JSON body of the API's answer to the page."""
    with page.expect_response(lambda r: r.url.endswith("/api/airdrop/plan")) as answer:
        page.click("#airdrop-run")
    return answer.value.status, answer.value.json()


def _source(page: Page) -> dict[str, Any]:
    page.wait_for_function("() => rallypoint.view.map.getSource('airdrop-plan') !== undefined")
    return page.evaluate("async () => await rallypoint.view.map.getSource('airdrop-plan').getData()")  # type: ignore[no-any-return]


def _of_kind(collection: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [f for f in collection["features"] if f["properties"]["kind"] == kind]


def _metres(a: list[float], lat: float, lon: float) -> float:
    """Local flat distance between [lon, lat] ``a`` and (lat, lon), good to well under 1 % over a few km."""
    east = (a[0] - lon) * M_PER_DEG_LAT * math.cos(math.radians(lat))
    return math.hypot(east, (a[1] - lat) * M_PER_DEG_LAT)


def test_an_airdrop_plan_draws_its_footprint(planner_server: ServerProcess, webgl_browser: Browser) -> None:
    with _planner(webgl_browser, planner_server) as page:
        page.fill("#airdrop-samples", "10000")  # the worked example's Monte Carlo
        status, plan = _plan(page)
        assert status == 200, plan
        # docs/airdrop.md: CARP 9.521086, 31.658090 for this input, whatever draws it.
        expect(page.locator("#airdrop-carp")).to_have_text("9.52109, 31.65809")
        expect(page.locator("#airdrop-carp-mgrs")).to_have_text(re.compile(r"^36P [A-Z]{2} \d{5} \d{5}$"))
        expect(page.locator("#airdrop-run-in-out")).to_have_text("250.0° true (chosen)")
        expect(page.locator("#airdrop-green")).to_have_text("-5.2 s to +5.2 s around the CARP (10.5 s)")
        expect(page.locator("#airdrop-fit")).to_contain_text("needs 613 \u00d7 475 m (container delivery): fits")
        expect(page.locator("#airdrop-footprint-out")).to_have_text(
            "CEP 54 m, R95 140 m, P(inside DZ) 1.00 (10000 samples, seed 7)")

        drawn = _source(page)
        [dz] = _of_kind(drawn, "dz")
        ring = dz["geometry"]["coordinates"][0]
        assert ring[:-1] == [[p["lon"], p["lat"]] for p in plan["dz_polygon"]] and ring[-1] == ring[0]
        [carp] = _of_kind(drawn, "carp")
        assert carp["geometry"]["coordinates"] == [plan["carp"]["lon"], plan["carp"]["lat"]]
        [footprint] = _of_kind(drawn, "footprint")
        ellipse = plan["dispersion"]["ellipse"]
        props = footprint["properties"]
        assert (props["center_lat"], props["center_lon"]) == (ellipse["center"]["lat"], ellipse["center"]["lon"])
        assert (props["semi_major_m"], props["semi_minor_m"]) == (ellipse["semi_major_m"], ellipse["semi_minor_m"])
        outline = footprint["geometry"]["coordinates"][0]
        reach = [_metres(p, ellipse["center"]["lat"], ellipse["center"]["lon"]) for p in outline]
        assert max(reach) == pytest.approx(ellipse["semi_major_m"], rel=0.01)
        assert min(reach) == pytest.approx(ellipse["semi_minor_m"], rel=0.01)
        impacts = _of_kind(drawn, "impact")
        assert [f["geometry"]["coordinates"] for f in impacts] == [[p["lon"], p["lat"]] for p in
                                                                  plan["dispersion"]["impacts"]]
        green = _of_kind(drawn, "green-light")[0]["geometry"]["coordinates"]
        assert green == [[plan["green_light"][e]["lon"], plan["green_light"][e]["lat"]] for e in ("start", "end")]
        # The layers are on the map and the footprint is drawn in the view.
        page.wait_for_function("""() => { const m = rallypoint.view.map;
            return !m.isMoving() && m.queryRenderedFeatures({ layers: ['airdrop-footprint'] }).length > 0
                   && m.queryRenderedFeatures({ layers: ['airdrop-dz'] }).length > 0; }""")
        page.locator("#airdrop-fit").scroll_into_view_if_needed()
        shot(page, "airdrop")


def test_a_dz_picked_on_the_map_is_planned_and_drawn_there(
    planner_server: ServerProcess, webgl_browser: Browser
) -> None:
    with _planner(webgl_browser, planner_server) as page:
        page.evaluate("() => rallypoint.view.map.jumpTo({ center: [31.66, 9.52], zoom: 12 })")
        page.wait_for_function("() => rallypoint.view.map.loaded() && !rallypoint.view.map.isMoving()")
        page.click("#airdrop-pick")
        expect(page.locator("#airdrop-pick")).to_have_attribute("aria-pressed", "true")
        box = page.locator("#map .maplibregl-canvas").bounding_box()
        assert box is not None
        clicked = page.evaluate("() => rallypoint.view.map.unproject([200, 300]).wrap()")
        page.mouse.click(box["x"] + 200, box["y"] + 300)
        expect(page.locator("#airdrop-pick")).to_have_attribute("aria-pressed", "false")
        # Within about a pixel (20 m at zoom 12) of the point under the mouse.
        lat, lon = float(page.input_value("#airdrop-lat")), float(page.input_value("#airdrop-lon"))
        assert _metres([lon, lat], clicked["lat"], clicked["lng"]) < 30
        with page.expect_request(lambda r: r.url.endswith("/api/airdrop/plan")) as sent:
            status, plan = _plan(page)
        assert status == 200, plan
        assert sent.value.post_data_json["drop_zone"]["pi"] == [lat, lon]
        # The DZ outline is drawn around the clicked point: its vertex centroid is the PI.
        [dz] = _of_kind(_source(page), "dz")
        ring = dz["geometry"]["coordinates"][0][:-1]
        centroid = [sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)]
        assert _metres(centroid, lat, lon) < 1.0


def test_a_refused_plan_shows_the_api_words(planner_server: ServerProcess, webgl_browser: Browser) -> None:
    with _planner(webgl_browser, planner_server) as page:
        page.fill("#airdrop-altitude", "-5")
        status, body = _plan(page)
        assert status == 400 and body["error"] == "invalid_plan"
        assert "altitude_agl_m" in body["detail"]
        expect(page.locator("#airdrop-error")).to_have_text(body["detail"])
        # Layers overlapping, as the server words it; nothing drawn from a refused plan.
        page.fill("#airdrop-altitude", "244")
        page.fill("#airdrop-wind-2-bottom_m", "50")
        status, body = _plan(page)
        assert status == 400
        expect(page.locator("#airdrop-error")).to_have_text(body["detail"])
        assert page.evaluate("() => rallypoint.view.map.getSource('airdrop-plan') === undefined")
        # A script payload in a field comes back in the server's words, shown as text.
        page.fill("#airdrop-wind-2-bottom_m", "100")
        page.fill("#airdrop-parachute", XSS_IMG)
        status, body = _plan(page)
        assert status == 400
        expect(page.locator("#airdrop-error")).to_have_text(body["detail"])
        assert page.locator("#airdrop-error img").count() == 0 and page.evaluate("() => window.__xss") is None
        # Inline ballistic constants and the model switches go as the API takes them.
        page.fill("#airdrop-parachute", "")
        page.click("#airdrop-form details.sub summary")
        page.fill("#airdrop-rod_sl_mps", "500")
        status, body = _plan(page)
        assert status == 400 and "rod_sl_mps" in body["detail"]
        for field, value in (("rod_sl_mps", "8.69"), ("vd_m", "112.8"), ("tfc_s", "5.6"), ("exit_time_s", "4.2"),
                             ("dq_s", "2.7")):
            page.fill(f"#airdrop-{field}", value)
        page.uncheck("#airdrop-density")
        page.fill("#airdrop-wind-limit", "25")
        with page.expect_request(lambda r: r.url.endswith("/api/airdrop/plan")) as sent:
            status, plan = _plan(page)
        assert status == 200, plan
        request = sent.value.post_data_json
        assert request["options"] == {"density_correction": False, "wind_limit_kt": 25}
        assert request["load"]["rod_sl_mps"] == 8.69 and "parachute" not in request["load"]
        # No density correction: the sea-level rate all the way down, so a longer fall than with it (20.3 s).
        assert plan["time_of_fall_s"] > 20.5
        # A DZ picked on the map with the keyboard-free path: the map centre button fills the PI.
        page.click("#airdrop-centre")
        lat = float(page.input_value("#airdrop-lat"))
        centre = page.evaluate("() => rallypoint.view.map.getCenter().wrap().lat")
        assert lat == pytest.approx(centre, abs=1e-6)


def test_a_plan_is_kept_in_a_mission(planner_server: ServerProcess, webgl_browser: Browser) -> None:
    base = base_url(planner_server.ports)
    headers = _token(planner_server)
    assert httpx.post(f"{base}/api/missions", json={"name": "Relief"}, headers=headers, timeout=10).status_code == 201
    with _planner(webgl_browser, planner_server) as page:
        status, plan = _plan(page)
        assert status == 200
        expect(page.locator("#airdrop-mission")).to_have_value("Relief")
        page.fill("#airdrop-save-name", "Water <b>drop</b>")
        page.click(".airdrop-save button[type=submit]")
        expect(page.locator("#airdrop-saved")).to_contain_text("plan version 1")
        kept = httpx.get(f"{base}/api/missions/Relief/plan", headers=headers, timeout=10).json()
        [airdrop] = kept["plan"]["airdrops"]
        assert airdrop["name"] == "Water <b>drop</b>"
        assert airdrop["result"]["carp"] == plan["carp"]  # the server computed the same plan again


def test_an_area_designation_is_the_drop_zone(planner_server: ServerProcess, webgl_browser: Browser) -> None:
    base = base_url(planner_server.ports)
    outline = [{"lat": 9.516, "lon": 31.650}, {"lat": 9.516, "lon": 31.660}, {"lat": 9.524, "lon": 31.660},
               {"lat": 9.524, "lon": 31.650}]
    proposed = httpx.post(f"{base}/api/designations", headers=_token(planner_server), timeout=10,
                          json={"title": "Field <i>north</i>", "category": "drop_zone", "polygon": outline})
    assert proposed.status_code == 201, proposed.text
    with _planner(webgl_browser, planner_server) as page:
        option = page.locator("#airdrop-area option", has_text="Field <i>north</i> (drop_zone, proposed)")
        expect(option).to_have_count(1)
        page.select_option("#airdrop-area", value=proposed.json()["id"])
        expect(page.locator("#airdrop-length")).to_be_disabled()
        expect(page.locator("#airdrop-lat")).to_have_value("9.520000")
        expect(page.locator("#airdrop-lon")).to_have_value("31.655000")
        with page.expect_request(lambda r: r.url.endswith("/api/airdrop/plan")) as sent:
            status, plan = _plan(page)
        assert status == 200, plan
        zone = sent.value.post_data_json["drop_zone"]
        assert zone["polygon"] == [[v["lat"], v["lon"]] for v in proposed.json()["polygon"]]
        assert "length_m" not in zone
        # The planner's outline is the designation's (to its arithmetic), and the map draws the planner's.
        corners = [[p["lat"], p["lon"]] for p in plan["dz_polygon"]][:4]
        assert corners == [pytest.approx([v["lat"], v["lon"]], abs=1e-9) for v in outline]
        [dz] = _of_kind(_source(page), "dz")
        # (the map keeps its polygons wound one way: compare the vertices, not their order)
        assert sorted(dz["geometry"]["coordinates"][0][:-1]) == sorted([p["lon"], p["lat"]] for p in plan["dz_polygon"])
