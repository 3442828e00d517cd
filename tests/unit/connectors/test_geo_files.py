"""GeoJSON and KML/KMZ layers: RFC 7946's example, Google's KML tutorial placemarks, hostile files."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime

import pytest

from rallypoint.connectors.geo_files import GeoJsonDecoder, KmlDecoder, Shape
from rallypoint.model.track import Domain, Identity, IdentityKind

NOW = datetime(2024, 5, 1, tzinfo=UTC)
# RFC 7946 section 1.5: a Point, a LineString and a Polygon.
RFC7946 = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [102.0, 0.5]},
            "properties": {"prop0": "value0"},
        },
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [[102.0, 0.0], [103.0, 1.0], [104.0, 0.0], [105.0, 1.0]]},
            "properties": {"prop0": "value0", "prop1": 0.0},
        },
        {
            "type": "Feature",
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[100.0, 0.0], [101.0, 0.0], [101.0, 1.0], [100.0, 1.0], [100.0, 0.0]]],
            },
            "properties": {"prop0": "value0", "prop1": {"this": "that"}},
        },
    ],
}
# Google's KML tutorial: "Simple placemark" and the "Absolute Extruded" path (abridged to three points).
KML = b"""<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2">
  <Document>
    <Placemark>
      <name>Simple placemark</name>
      <description>Attached to the ground. Intelligently places itself at the height of the underlying
        terrain.</description>
      <Point><coordinates>-122.0822035425683,37.42228990140251,0</coordinates></Point>
    </Placemark>
    <Folder>
      <Placemark id="path1">
        <name>Absolute Extruded</name>
        <LineString>
          <extrude>1</extrude><tessellate>1</tessellate><altitudeMode>absolute</altitudeMode>
          <coordinates> -112.2550785337791,36.07954952145647,2357
            -112.2549277039738,36.08117083492122,2357
            -112.2552505069063,36.08260761307279,2357</coordinates>
        </LineString>
      </Placemark>
      <Placemark><name>Empty</name></Placemark>
    </Folder>
  </Document>
</kml>"""


def test_rfc7946_example() -> None:
    dec = GeoJsonDecoder("layer")
    [point] = dec.decode(json.dumps(RFC7946).encode(), NOW)
    assert (point.lat, point.lon) == (0.5, 102.0)
    assert point.identity == Identity(kind=IdentityKind.FEATURE, value="0")
    assert point.domain is Domain.GROUND
    line, poly = dec.shapes
    assert line == Shape(id="1", kind="line", points=((0.0, 102.0), (1.0, 103.0), (0.0, 104.0), (1.0, 105.0)))
    assert poly.kind == "polygon" and poly.points[0] == poly.points[-1] == (0.0, 100.0) and len(poly.points) == 5
    assert dec.rejects.total == 0


def test_geojson_ids_names_and_multi_parts() -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": 7,
                "geometry": {"type": "Point", "coordinates": [10, 20, 30]},
                "properties": None,
            },
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [11, 21]},
                "properties": {"id": "cp-1", "name": "Checkpoint"},
            },
            {
                "type": "Feature",
                "geometry": {"type": "MultiPoint", "coordinates": [[1, 2], [3, 4]]},
                "properties": {"name": "Pair"},
            },
        ],
    }
    dec = GeoJsonDecoder("layer")
    a, b, c, d = dec.decode(json.dumps(doc).encode(), NOW)
    assert a.identity is not None and a.identity.value == "7" and a.alt_m == 30.0
    assert b.identity is not None and b.identity.value == "cp-1" and b.name == "Checkpoint"
    assert [x.identity.value for x in (c, d) if x.identity] == ["Pair#0", "Pair#1"]


@pytest.mark.parametrize(
    ("geometry", "reason"),
    [
        ({"type": "Point", "coordinates": ["a", "b"]}, "malformed"),
        ({"type": "Point", "coordinates": [200.0, 0.5]}, "impossible_position"),
        ({"type": "Point", "coordinates": [0, 0]}, "impossible_position"),
        ({"type": "LineString", "coordinates": [[1, 2]]}, "malformed"),
        ({"type": "LineString", "coordinates": [[1, 2], [1, 95]]}, "impossible_position"),
        ({"type": "GeometryCollection", "geometries": []}, "unsupported"),
        ({"type": 5}, "malformed"),
        ("nope", "malformed"),
        (None, "no_geometry"),
    ],
)
def test_bad_features_are_counted_and_the_rest_kept(geometry: object, reason: str) -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": geometry, "properties": {}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5.0, 6.0]}, "properties": {}},
        ],
    }
    dec = GeoJsonDecoder("layer")
    assert len(dec.decode(json.dumps(doc).encode(), NOW)) == 1
    assert dec.rejects.snapshot() == {reason: 1}


def test_nan_coordinates_and_deep_nesting() -> None:
    dec = GeoJsonDecoder("layer")
    assert dec.decode(b'{"type": "Point", "coordinates": [NaN, 1]}', NOW) == []
    assert dec.decode(b"[" * 100_000 + b"]" * 100_000, NOW) == []
    assert dec.decode(b"\xff\xfe", NOW) == []
    assert dec.rejects.snapshot() == {"malformed": 3}


def test_geojson_limits() -> None:
    dec = GeoJsonDecoder("layer", max_document=100, max_features=2, max_points=3)
    assert dec.decode(b" " * 101, NOW) == []
    dec = GeoJsonDecoder("layer", max_features=2, max_points=3)
    doc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[1, 1]] * 4}, "properties": {}},
            *[{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 1]}, "properties": {}}] * 3,
        ],
    }
    assert len(dec.decode(json.dumps(doc).encode(), NOW)) == 1
    assert dec.rejects.snapshot() == {"too_many_points": 1, "too_many": 2}


def test_kml_tutorial_placemarks() -> None:
    dec = KmlDecoder("layer")
    [point] = dec.decode(KML, NOW)
    assert (point.lat, point.lon) == (37.42228990140251, -122.0822035425683)
    assert point.name == "Simple placemark"
    assert point.identity == Identity(kind=IdentityKind.FEATURE, value="Simple placemark")
    [path] = dec.shapes
    assert path.id == "path1" and path.kind == "line" and path.name == "Absolute Extruded"
    assert path.points[0] == (36.07954952145647, -112.2550785337791)
    assert dec.rejects.snapshot() == {"no_geometry": 1}


def _kmz(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_kmz_reads_doc_kml() -> None:
    dec = KmlDecoder("layer")
    kmz = _kmz({"files/icon.png": b"\x89PNG", "doc.kml": KML})
    assert [o.name for o in dec.decode(kmz, NOW)] == ["Simple placemark"]


def test_kmz_zip_bomb_is_refused_cheaply() -> None:
    bomb = _kmz({"doc.kml": b"<kml>" + b"\0" * (20 * 1024 * 1024)})
    assert len(bomb) < 100_000
    dec = KmlDecoder("layer", max_document=1024 * 1024)
    assert dec.decode(bomb, NOW) == []
    assert dec.rejects.snapshot() == {"too_large": 1}


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"PK\x03\x04 not really a zip", "malformed"),
        (_kmz({"readme.txt": b"hi"}), "malformed"),
        (_kmz({"../evil.kml": KML}), "malformed"),
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            b'<kml xmlns="http://www.opengis.net/kml/2.2">&lol2;</kml>',
            "doctype",
        ),
        (b'<kml xmlns="http://www.opengis.net/kml/2.2"><Document>', "xml_malformed"),
        (b"<html><body>not kml</body></html>", "malformed"),
        (b"<kml>" + b"<Folder>" * 200 + b"</Folder>" * 200 + b"</kml>", "too_deep"),
    ],
)
def test_hostile_kml_is_counted(document: bytes, reason: str) -> None:
    dec = KmlDecoder("layer")
    assert dec.decode(document, NOW) == []
    assert dec.rejects.snapshot() == {reason: 1}
    assert len(dec.decode(KML, NOW)) == 1  # the decoder keeps working
