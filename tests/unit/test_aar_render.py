"""The HTML report and its SVG map: self-contained, no script, every client-sent string escaped."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from rallypoint.aar.compute import ReportBuilder
from rallypoint.aar.html import render_html
from rallypoint.aar.svg import BASEMAP, Projection, clip_ring, padded, render_map, thinned
from tests.support.aar_history import T0, build, row

PAYLOAD = '<script>alert(1)</script><img src=x onerror=alert(2)>"'


def hostile_report_html() -> str:
    builder = ReportBuilder(since_ms=T0, until_ms=T0 + 60_000, exercise="drill")
    for i in range(3):
        builder.add_row(row(f"u{PAYLOAD}", t=i * 1000, lat=51.5 + i * 0.01, lon=-0.1, team=PAYLOAD, callsign=PAYLOAD,
                            exercise="drill", unit=PAYLOAD))
    builder.add_row(row("alert", t=500, type="b-a-o-tbl", exercise="drill", inject=PAYLOAD, kind=PAYLOAD))
    builder.add_audit(T0 + 10, PAYLOAD, "exercise.start", PAYLOAD)
    return render_html(builder.finish(), generated_ms=T0)


class Elements(HTMLParser):
    """Every start tag and its attribute names, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, set[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name for name, _ in attrs}))


def test_no_script_no_external_request_and_payloads_escaped() -> None:
    html = hostile_report_html()
    parser = Elements()
    parser.feed(html)
    names = {tag for tag, _ in parser.tags}
    assert "script" not in names and "img" not in names
    # No element loads anything or runs a handler.
    assert all(not ({"src", "href", "onerror", "onload"} & attrs) for _, attrs in parser.tags)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # No url() in the style sheet, no @import.
    assert "url(" not in html and "@import" not in html
    # The only URL is the SVG namespace name, which is never fetched.
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}


def test_report_page_shows_every_section() -> None:
    html = render_html(build(), generated_ms=T0)
    for heading in ("Map", "Injects and first responses", "Timeline", "Message delivery per link", "Per team"):
        assert f"<h2>{heading}</h2>" in html
    assert "emergency acknowledged" in html and "<svg" in html


def test_map_draws_land_clipped_to_the_area_and_each_track() -> None:
    report = build()
    svg = render_map(report.tracks, (-0.2, 51.4, 0.1, 51.6), title="London")
    # The base layer has land there; the clipped map stays small (not the whole world's coastline).
    assert 'fill="#f2efe6"' in svg and len(svg) < 200_000
    assert svg.count("<circle") == len([t for t in report.tracks if t.points])
    assert render_map((), None, title="x").startswith("<p")


def test_missing_basemap_still_draws_tracks(tmp_path: Path) -> None:
    svg = render_map(build().tracks, build().bbox, title="x", basemap=tmp_path / "none.geojson")
    assert "<circle" in svg and 'fill="#f2efe6"' not in svg
    assert BASEMAP.exists()


def test_ring_clipping() -> None:
    square = [(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)]
    clipped = clip_ring(square, (0.0, 0.0, 2.0, 2.0))
    assert sorted(clipped) == [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)]
    assert clip_ring(square, (5.0, 5.0, 6.0, 6.0)) == []


def test_thinning_keeps_ends_and_bounds_the_count() -> None:
    points = [(float(i), 0.0) for i in range(1000)]
    kept = thinned(points, 16)
    assert len(kept) == 16 and kept[0] == points[0] and kept[-1] == points[-1]
    assert thinned(points[:5], 16) == points[:5]


def test_a_long_thin_area_makes_a_map_of_the_usual_shape() -> None:
    for box in ((-120.0, 39.0, -119.999, 39.5), (-120.0, 39.0, -119.0, 39.0001), (10.0, 50.0, 10.0, 50.0)):
        proj = Projection(padded(box))
        assert (proj.width, proj.height) == (900, 600)
        west, south, east, north = padded(box)
        assert west < box[0] and east > box[2] and south < box[1] and north > box[3]


def test_a_snapshot_at_each_inject_shows_tracks_up_to_then() -> None:
    report = build()
    html = render_html(report, generated_ms=T0)
    assert "<h2>Map at each inject</h2>" in html
    assert html.count("<figure>") == len(report.injects) == 4
    # The emergency had a position: one red diamond; the API markers and the chat had none.
    assert html.count('fill="#d00"') == 1
    (a1,) = [t for t in report.tracks if t.uid == "sim-a1"]
    assert len(a1.until(T0 + 3000).points) == 4 and a1.until(T0 - 1).points == ()
    assert a1.until(T0 + 10**6) == a1
