"""Export stored events to files other tools read. Pure functions: events in, bytes or dicts out.

* CoT XML: an XML declaration, then each ``<event>`` exactly as forwarded, each starting on a new
  line (one line per event unless the sender's own XML contained line breaks, which are kept).
  This is the shape of a CoT stream (what TAK clients and servers write on a socket and what CoT
  replay tools read), not a single XML document: there is no wrapping root element, so read it
  with a stream framer that splits on ``</event>``.
* GeoJSON (RFC 7946): a FeatureCollection of Points; times as ISO-8601 UTC strings; ``team`` (the
  sender's team colour) and ``groups`` (the access groups it was broadcast to, empty when addressed).
* KML 2.2: one Placemark per event with a TimeStamp, for Google Earth and similar viewers.
* CSV (RFC 4180, UTF-8, ``\n`` line ends): a header row (``CSV_COLUMNS``), then one row per event;
  ``groups`` joined with ``;`` (group names may hold commas), lat/lon with 6 decimals, ``hae``
  empty when unknown, a no-fix row with empty lat/lon.

An event without a position fix (0,0: a device without GPS, chat, control messages) is exported
without a location: GeoJSON ``geometry: null``, a KML Placemark without ``<Point>``, both with
``no_fix`` true, so no viewer draws it at 0,0 or stretches its view to include it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any

from lxml import etree

from rallypoint.clock import ms_to_datetime
from rallypoint.model.cot import UNKNOWN_ERROR
from rallypoint.model.fix import has_fix
from rallypoint.storage.base import StoredEvent

CSV_COLUMNS = ("time", "uid", "type", "how", "callsign", "team", "groups", "lat", "lon", "hae", "sender")
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'
KML_NS = "http://www.opengis.net/kml/2.2"

# A leading XML declaration (with optional BOM/whitespace) on a stored event, dropped on export so
# the stream carries a single declaration at its top.
_DECLARATION = re.compile(rb"^\s*(?:\xef\xbb\xbf)?\s*<\?xml[^>]*\?>\s*")


def iso_ms(ms: int) -> str:
    """``2024-05-01T12:00:00.000Z``: the CoT timestamp style."""
    return ms_to_datetime(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def to_cot_xml(events: Iterable[StoredEvent]) -> bytes:
    """A CoT stream: a declaration line, then each event's XML starting on its own line."""
    parts = [XML_DECLARATION]
    for ev in events:
        parts.append(_DECLARATION.sub(b"", ev.xml).strip())
    parts.append(b"")
    return b"\n".join(parts)


# Characters XML 1.0 cannot carry at all (events that arrived as protobuf may contain them).
_NOT_XML_CHAR = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _has_altitude(hae: float) -> bool:
    return hae != UNKNOWN_ERROR


def _text(value: str) -> str:
    return _NOT_XML_CHAR.sub("\ufffd", value)


def _coordinate(value: float, places: int) -> str:
    # Fixed notation: some KML readers do not accept exponents such as 1e-05.
    text = f"{value:.{places}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def to_geojson(events: Iterable[StoredEvent]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection with one Point feature per event."""
    features = []
    for ev in events:
        coordinates = [ev.lon, ev.lat, ev.hae] if _has_altitude(ev.hae) else [ev.lon, ev.lat]
        located = has_fix(ev.lat, ev.lon)
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": coordinates} if located else None,
                "properties": {
                    "uid": ev.uid,
                    "type": ev.type,
                    "how": ev.how,
                    "time": iso_ms(ev.time),
                    "start": iso_ms(ev.start),
                    "stale": iso_ms(ev.stale),
                    "callsign": ev.callsign,
                    "team": ev.team,
                    "groups": sorted(ev.groups),
                    "no_fix": not located,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def to_kml(events: Iterable[StoredEvent]) -> bytes:
    """A KML 2.2 document of Placemarks named by callsign (or uid when there is none)."""
    ns = f"{{{KML_NS}}}"
    kml = etree.Element(ns + "kml", nsmap={None: KML_NS})
    document = etree.SubElement(kml, ns + "Document")
    etree.SubElement(document, ns + "name").text = "Rallypoint events"
    for ev in events:
        placemark = etree.SubElement(document, ns + "Placemark")
        etree.SubElement(placemark, ns + "name").text = _text(ev.callsign or ev.uid)
        stamp = etree.SubElement(placemark, ns + "TimeStamp")
        etree.SubElement(stamp, ns + "when").text = iso_ms(ev.time)
        extended = etree.SubElement(placemark, ns + "ExtendedData")
        groups = ", ".join(sorted(ev.groups)) or None
        for key, value in (("uid", ev.uid), ("type", ev.type), ("how", ev.how), ("team", ev.team), ("groups", groups)):
            if value is None:
                continue
            data = etree.SubElement(extended, ns + "Data", name=key)
            etree.SubElement(data, ns + "value").text = _text(value)
        if not has_fix(ev.lat, ev.lon):
            data = etree.SubElement(extended, ns + "Data", name="no_fix")
            etree.SubElement(data, ns + "value").text = "true"
            continue
        point = etree.SubElement(placemark, ns + "Point")
        coordinates = f"{_coordinate(ev.lon, 8)},{_coordinate(ev.lat, 8)}"
        if _has_altitude(ev.hae):
            # HAE is written as is; KML's "absolute" is above sea level, which differs by the
            # local geoid height (tens of metres at most): good enough for a history view.
            etree.SubElement(point, ns + "altitudeMode").text = "absolute"
            coordinates += f",{_coordinate(ev.hae, 3)}"
        etree.SubElement(point, ns + "coordinates").text = coordinates
    return bytes(etree.tostring(kml, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def to_csv(events: Iterable[StoredEvent], *, senders: bool = True) -> bytes:
    """A CSV table with a header row and one row per event (columns ``CSV_COLUMNS``).

    ``senders=False`` leaves the ``sender`` column empty (an API reader is not shown who submitted what).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for ev in events:
        located = has_fix(ev.lat, ev.lon)
        writer.writerow(
            [
                iso_ms(ev.time), ev.uid, ev.type, ev.how, ev.callsign or "", ev.team or "", ";".join(sorted(ev.groups)),
                f"{ev.lat:.6f}" if located else "", f"{ev.lon:.6f}" if located else "",
                f"{ev.hae:g}" if _has_altitude(ev.hae) else "", (ev.sender or "") if senders else "",
            ]
        )  # fmt: skip
    return buffer.getvalue().encode("utf-8")
