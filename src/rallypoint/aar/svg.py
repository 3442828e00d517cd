"""The exercise map as inline SVG: the offline base layer clipped to the area, and each unit's track.

Equirectangular projection scaled by the cosine of the middle latitude: exercise areas span
kilometres to a few hundred kilometres, where this distorts less than the drawing's line width.
Land polygons are clipped to the map rectangle (Sutherland-Hodgman), lines are kept segment by
segment, so the file holds only what shows.
"""

# mypy: disallow-untyped-defs, disallow-any-generics, warn-return-any

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from html import escape
from pathlib import Path
from typing import Any

import msgspec

from rallypoint.aar.model import Track

Point = tuple[float, float]
Box = tuple[float, float, float, float]
BASEMAP = Path(__file__).resolve().parent.parent / "web" / "static" / "vendor" / "basemap.geojson"
WIDTH = 900
HEIGHT = 600
# Colour-blind-safe palette (Okabe-Ito), one per team in name order, repeating past eight teams.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
_MIN_SPAN_DEG = 0.01
NO_MAP = '<p class="muted">No positions in the window: no map.</p>'
# Points drawn over all tracks together (each keeps at least MIN_TRACK_POINTS): bounds the file and
# the time to write it whatever the number of units.
MAP_POINTS = 60_000
MIN_TRACK_POINTS = 16


def thinned(points: Sequence[Point], limit: int) -> Sequence[Point]:
    """At most ``limit`` points taken evenly, always keeping the first and the last."""
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def team_colours(teams: Iterable[str]) -> dict[str, str]:
    """A colour per team, stable for a given set of names."""
    return {team: PALETTE[i % len(PALETTE)] for i, team in enumerate(sorted(set(teams)))}


def padded(bbox: Box) -> Box:
    """The area with a margin of a tenth of its span (at least ``_MIN_SPAN_DEG``), widened to the map's shape.

    The shorter side grows (about the centre) until width:height is ``WIDTH:HEIGHT`` once projected,
    so a long thin exercise area still makes a map of the same size.
    """
    west, south, east, north = bbox
    pad_x = max((east - west) * 0.1, _MIN_SPAN_DEG)
    pad_y = max((north - south) * 0.1, _MIN_SPAN_DEG)
    west, south, east, north = west - pad_x, south - pad_y, east + pad_x, north + pad_y
    kx = math.cos(math.radians(max(-89.0, min(89.0, (south + north) / 2))))
    width, height = (east - west) * kx, north - south
    if width * HEIGHT < height * WIDTH:
        grow = (height * WIDTH / HEIGHT / kx - (east - west)) / 2
        west, east = west - grow, east + grow
    else:
        grow = (width * HEIGHT / WIDTH - height) / 2
        south, north = south - grow, north + grow
    return (max(-180.0, west), max(-90.0, south), min(180.0, east), min(90.0, north))


def clip_ring(ring: Sequence[Point], box: Box) -> list[Point]:
    """``ring`` clipped to ``box`` (Sutherland-Hodgman: one edge of the box at a time)."""
    out: list[Point] = list(ring)
    # (axis, limit, keep the side above the limit)
    for axis, limit, above in ((0, box[0], True), (0, box[2], False), (1, box[1], True), (1, box[3], False)):
        if not out:
            break
        source, out = out, []
        prev = source[-1]
        for cur in source:
            if _inside(cur, axis, limit, above):
                if not _inside(prev, axis, limit, above):
                    out.append(_cut(prev, cur, axis, limit))
                out.append(cur)
            elif _inside(prev, axis, limit, above):
                out.append(_cut(prev, cur, axis, limit))
            prev = cur
    return out


def _inside(p: Point, axis: int, limit: float, above: bool) -> bool:
    return p[axis] >= limit if above else p[axis] <= limit


def _cut(a: Point, b: Point, axis: int, limit: float) -> Point:
    """Where segment ``a``-``b`` crosses the line ``axis == limit``."""
    t = (limit - a[axis]) / (b[axis] - a[axis])
    if axis == 0:
        return (limit, a[1] + t * (b[1] - a[1]))
    return (a[0] + t * (b[0] - a[0]), limit)


def _basemap_parts(path: Path, box: Box) -> tuple[list[list[Point]], list[list[Point]]]:
    """Land rings and boundary lines of the base layer inside ``box``."""
    try:
        doc: dict[str, Any] = msgspec.json.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError):
        return [], []  # the map still shows the tracks
    land: list[list[Point]] = []
    lines: list[list[Point]] = []
    for feature in doc.get("features", ()):
        geometry = feature.get("geometry") or {}
        kind, coords = geometry.get("type"), geometry.get("coordinates") or []
        if kind == "MultiPolygon":
            for polygon in coords:
                for ring in polygon[:1]:  # outer rings: lakes are not drawn
                    clipped = clip_ring([(float(x), float(y)) for x, y, *_ in ring], box)
                    if len(clipped) >= 3:
                        land.append(clipped)
        elif kind in ("MultiLineString", "LineString"):
            for line in coords if kind == "MultiLineString" else [coords]:
                lines.extend(_inside_runs([(float(x), float(y)) for x, y, *_ in line], box))
    return land, lines


def _inside_runs(line: Sequence[Point], box: Box) -> Iterator[list[Point]]:
    """Runs of the line whose segments touch ``box`` (the SVG viewport clips the rest)."""
    west, south, east, north = box
    run: list[Point] = []
    for a, b in itertools.pairwise(line):
        touches = not (max(a[0], b[0]) < west or min(a[0], b[0]) > east
                       or max(a[1], b[1]) < south or min(a[1], b[1]) > north)
        if touches:
            if not run:
                run.append(a)
            run.append(b)
        elif run:
            yield run
            run = []
    if run:
        yield run


class Projection:
    """Degrees to SVG user units for one map."""

    def __init__(self, box: Box, width: int = WIDTH) -> None:
        west, south, east, north = box
        self.west, self.north = west, north
        self.kx = math.cos(math.radians((south + north) / 2))
        self.scale = width / max((east - west) * self.kx, 1e-9)
        self.width = width
        self.height = max(1, round((north - south) * self.scale))

    def path(self, points: Sequence[Point], *, close: bool = False) -> str:
        """An SVG path ``d`` attribute for the points."""
        parts = [f"{(lon - self.west) * self.kx * self.scale:.1f},{(self.north - lat) * self.scale:.1f}"
                 for lon, lat in points]
        return "M" + " L".join(parts) + (" Z" if close else "")


class MapFrame:
    """One map area with its base layer clipped once; draws the whole window or a moment of it."""

    def __init__(self, tracks: Sequence[Track], bbox: Box, *, basemap: Path = BASEMAP) -> None:
        self.box = padded(bbox)
        self.proj = Projection(self.box)
        land, lines = _basemap_parts(basemap, self.box)
        proj = self.proj
        self.background = "".join([
            f'<rect width="{proj.width}" height="{proj.height}" fill="#dbe9f4"/>',
            *(f'<path d="{proj.path(ring, close=True)}" fill="#f2efe6" stroke="#b9b39f" stroke-width="0.8"/>'
              for ring in land),
            *(f'<path d="{proj.path(line)}" fill="none" stroke="#8a8470" stroke-width="0.8" stroke-dasharray="4 3"/>'
              for line in lines),
        ])
        self.colours = team_colours(t.team for t in tracks)
        self.limit = max(MIN_TRACK_POINTS, MAP_POINTS // max(1, len(tracks)))

    def svg(self, tracks: Sequence[Track], *, title: str, mark: Point | None = None, mark_label: str = "") -> str:
        """An ``<svg>`` of ``tracks`` (a dot at each one's last point), ``mark`` as a red diamond; labels escaped."""
        proj = self.proj
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {proj.width} {proj.height}" role="img"'
               f' class="map"><title>{escape(title)}</title>', self.background]
        for track in tracks:
            if not track.points:
                continue
            colour = self.colours.get(track.team, PALETTE[0])
            dash = ' stroke-dasharray="6 3"' if track.simulated else ""
            label = escape(f"{track.callsign or track.uid} ({track.team})")
            if len(track.points) > 1:
                d = proj.path(thinned(track.points, self.limit))
                out.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"'
                           f' stroke-opacity="0.8"{dash}><title>{label}</title></path>')
            x, y = proj.path(track.points[-1:])[1:].split(",")
            out.append(f'<circle cx="{x}" cy="{y}" r="4" fill="{colour}"><title>{label}</title></circle>')
        if mark is not None:
            mx, my = (float(v) for v in proj.path([mark])[1:].split(","))
            diamond = f"M{mx:.1f},{my - 9:.1f} L{mx + 9:.1f},{my:.1f} L{mx:.1f},{my + 9:.1f} L{mx - 9:.1f},{my:.1f} Z"
            out.append(f'<path d="{diamond}" fill="#d00" stroke="#fff" stroke-width="1.5">'
                       f"<title>{escape(mark_label)}</title></path>")
        out.append("</svg>")
        return "".join(out)


def render_map(tracks: Sequence[Track], bbox: Box | None, *, title: str, basemap: Path = BASEMAP) -> str:
    """The map of the whole window as an ``<svg>`` element (or a note when nothing has a position)."""
    if bbox is None:
        return NO_MAP
    return MapFrame(tracks, bbox, basemap=basemap).svg(tracks, title=title)


def legend(teams: Iterable[str]) -> str:
    """HTML legend for the team colours (escaped)."""
    items = [f'<li><span class="swatch" style="background:{colour}"></span>{escape(team)}</li>'
             for team, colour in team_colours(teams).items()]
    return '<ul class="legend">' + "".join(items) + "</ul>"
