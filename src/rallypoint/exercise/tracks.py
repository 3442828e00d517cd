"""GPX and KML tracks as routes: the points of the first track or line, with their times when given.

Parsed with the project's hardened lxml settings (no DTD, no entities, no network, size capped):
a scenario may name a file someone else produced. GPX: ``trkpt`` (else ``rtept``) with ``lat``,
``lon`` and an optional ``<time>``. KML: the first ``gx:Track`` (``when`` + ``gx:coord``) or, failing
that, the first ``LineString``'s ``coordinates``. Times become seconds after the first point.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

from lxml import etree

from rallypoint.errors import RemoteProtocolError
from rallypoint.exercise.model import LatLon
from rallypoint.protocol.xmlsafe import new_parser, reject_markup_declarations, strip_declaration

MAX_TRACK_BYTES = 16 * 1024 * 1024
MAX_TRACK_POINTS = 100_000

TrackPoint = tuple[LatLon, float | None]


class TrackError(ValueError):
    """The file is not a usable GPX or KML track (the message says why)."""


def load_track(path: Path) -> list[TrackPoint]:
    """The points of the track in ``path`` (``.gpx``, ``.kml``), times relative to the first point."""
    try:
        size = path.stat().st_size
        if size > MAX_TRACK_BYTES:
            raise TrackError(f"{path.name} is {size} bytes; the limit is {MAX_TRACK_BYTES}")
        data = path.read_bytes()
    except OSError as exc:
        raise TrackError(f"cannot read {path}: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    if suffix not in (".gpx", ".kml"):
        raise TrackError(f"{path.name}: a track file must end in .gpx or .kml")
    root = _parse(data, path.name)
    points = _gpx(root) if suffix == ".gpx" else _kml(root)
    if len(points) > MAX_TRACK_POINTS:
        raise TrackError(f"{path.name} has {len(points)} points; the limit is {MAX_TRACK_POINTS}")
    return _relative(points, path.name)


def _parse(data: bytes, name: str) -> etree._Element:
    try:
        body = strip_declaration(data)
        reject_markup_declarations(body)
        return etree.fromstring(body, new_parser())
    except RemoteProtocolError as exc:
        raise TrackError(f"{name}: refused ({exc.reason})") from None
    except etree.XMLSyntaxError as exc:
        raise TrackError(f"{name}: not well-formed XML ({exc.msg})") from None


def _local(element: etree._Element) -> str:
    tag = element.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _children(root: etree._Element, name: str) -> list[etree._Element]:
    return [e for e in root.iter() if _local(e) == name]


def _time(text: str | None, name: str) -> float | None:
    if not text or not text.strip():
        return None
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise TrackError(f"{name}: bad time {text.strip()!r}") from None


def _point(lat: float, lon: float) -> LatLon:
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise TrackError(f"position {lat},{lon} is out of range")
    return LatLon(lat, lon)


def _gpx(root: etree._Element) -> list[tuple[LatLon, float | None]]:
    nodes = _children(root, "trkpt") or _children(root, "rtept")
    points = []
    for node in nodes:
        try:
            at = _point(float(node.get("lat", "")), float(node.get("lon", "")))
        except ValueError:
            raise TrackError(f"GPX point on line {node.sourceline} lacks a numeric lat/lon") from None
        when = next((c.text for c in node if _local(c) == "time"), None)
        points.append((at, _time(when, f"GPX line {node.sourceline}")))
    return points


def _kml(root: etree._Element) -> list[tuple[LatLon, float | None]]:
    for track in _children(root, "Track"):
        whens = [c.text for c in track if _local(c) == "when"]
        coords = [c.text or "" for c in track if _local(c) == "coord"]
        if coords:
            if whens and len(whens) != len(coords):
                raise TrackError(f"KML track on line {track.sourceline}: {len(whens)} times for {len(coords)} points")
            return [(_coord(text.split(), track.sourceline), _time(whens[i] if whens else None, "KML"))
                    for i, text in enumerate(coords)]
    for line in _children(root, "LineString"):
        text = next((c.text or "" for c in line if _local(c) == "coordinates"), "")
        return [(_coord(tuple_.split(","), line.sourceline), None) for tuple_ in text.split()]
    return []


def _coord(parts: list[str], line: int | None) -> LatLon:
    try:
        return _point(float(parts[1]), float(parts[0]))
    except (ValueError, IndexError):
        raise TrackError(f"KML coordinates on line {line} are not lon,lat[,alt]") from None


def _relative(points: list[tuple[LatLon, float | None]], name: str) -> list[TrackPoint]:
    times = [t for _, t in points]
    if not points or any(t is None for t in times):
        return [(at, None) for at, _ in points]
    first = times[0]
    assert first is not None
    return [(at, (t or 0.0) - first) for at, t in points]
