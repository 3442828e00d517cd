"""Plans exported as GeoJSON, KML and TAK data packages read back; hostile files are refused."""

from __future__ import annotations

import io
import json
import zipfile

import msgspec
import pytest
from fastkml import kml
from lxml import etree

from rallypoint.model.plan import Plan
from rallypoint.services.plans_geojson import from_geojson, to_geojson
from rallypoint.services.plans_kml import from_kml, to_kml
from rallypoint.services.plans_package import from_package, to_package
from rallypoint.services.plans_validate import PlanInvalid, decode_plan
from tests.unit.services.plans.sample import full_plan


def package(plan: Plan) -> bytes:
    return to_package(msgspec.json.encode(plan), plan, prefix="rp-plan.g1", name="Op plan", now_ms=1_700_000_000_000)


def test_geojson_round_trip_keeps_the_whole_plan() -> None:
    plan = full_plan()
    doc = to_geojson(plan, name="Op")
    kinds = [f["properties"]["plan_item"] for f in doc["features"]]
    assert kinds.count("areas") == 1 and kinds.count("phases") == 2
    area = next(f for f in doc["features"] if f["id"] == "sector-a")
    ring = area["geometry"]["coordinates"][0]
    assert area["geometry"]["type"] == "Polygon" and ring[0] == ring[-1] == [-120.0, 39.0]
    assert from_geojson(json.dumps(doc).encode()) == plan


def test_plain_geojson_from_another_tool_becomes_areas_routes_and_objectives() -> None:
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "Zone"},
         "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}},
        {"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}},
        {"type": "Feature", "properties": {"name": "Here"}, "geometry": {"type": "Point", "coordinates": [2, 3]}},
    ]}
    plan = from_geojson(json.dumps(doc).encode())
    assert plan.areas[0].name == "Zone" and plan.routes[0].id == "route-2"
    assert (plan.objectives[0].point.lat, plan.objectives[0].point.lon) == (3, 2)  # type: ignore[union-attr]


@pytest.mark.parametrize(("doc", "words"), [
    ({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
      "properties": {}}, "crosses itself"),
    ({"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[i * 1e-4, 0] for i in range(100_000)]},
      "properties": {}}, "50000 positions"),
    ({"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, "x"]}, "properties": {}}, "finite"),
    ({"type": "Feature", "geometry": None, "properties": {}}, "not a plan item"),
    ({"type": "Feature", "geometry": None, "properties": {"plan_item": "bombs"}}, "not one of"),
    ({"type": "Topology"}, "FeatureCollection"),
])
def test_bad_geojson_is_refused_with_the_reason(doc: object, words: str) -> None:
    with pytest.raises(PlanInvalid, match=words):
        from_geojson(json.dumps(doc).encode())


def test_deeply_nested_json_is_refused() -> None:
    with pytest.raises(PlanInvalid, match="nested too deeply"):
        from_geojson(b'{"type": "FeatureCollection", "features": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    with pytest.raises(PlanInvalid, match="nested too deeply"):
        decode_plan(b'{"areas": [], "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")


def test_kml_export_reads_in_fastkml_and_back_in_rallypoint() -> None:
    plan = full_plan()
    raw = to_kml(plan, name="Op")
    parsed = kml.KML.from_string(raw.split(b"?>", 1)[1].decode())
    names = [mark.name for mark in parsed.features[0].features]
    assert names == ["Find the hikers", "Sector A", "Ingress"]
    back = from_kml(raw)
    assert back.areas[0].vertices == plan.areas[0].vertices
    assert back.routes[0].waypoints[1].lat == plan.routes[0].waypoints[1].lat
    assert back.objectives[0].point == plan.objectives[0].point
    assert [i.id for i in (*back.areas, *back.routes, *back.objectives)] == ["sector-a", "ingress", "obj-1"]


@pytest.mark.parametrize(("raw", "words"), [
    (b'<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY x "y">]><kml/>', "KML document"),
    (b"<kml><Document><Placemark><Point><coordinates>nan,1</coordinates></Point></Placemark></Document></kml>",
     "finite"),
    (b"<kml><Placemark><Point><coordinates>1;2</coordinates></Point></Placemark></kml>", "lon,lat"),
    (b"<svg/>", "expected kml"),
    (b"<kml>" + b"<a>" * 100 + b"</a>" * 100 + b"</kml>", "KML document"),
])
def test_hostile_kml_is_refused(raw: bytes, words: str) -> None:
    with pytest.raises(PlanInvalid, match=words):
        from_kml(raw)


def test_data_package_holds_manifest_cot_overlays_and_the_plan() -> None:
    plan = full_plan()
    data = package(plan)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        manifest = etree.fromstring(zf.read("MANIFEST/manifest.xml"))
        cots = {n: etree.fromstring(zf.read(n)) for n in names if n.endswith(".cot")}
    assert manifest.get("version") == "2"
    entries = {c.get("zipEntry") for c in manifest.iter("Content")}
    assert entries == names - {"MANIFEST/manifest.xml"}
    by_type = sorted((e.get("type"), e.get("uid")) for e in cots.values())
    assert by_type == [("b-m-p-s-m", "rp-plan.g1.obj-1"), ("b-m-r", "rp-plan.g1.ingress"),
                       ("u-d-f", "rp-plan.g1.sector-a")]
    assert from_package(data) == plan


def test_a_package_without_plan_json_is_rebuilt_from_its_cot() -> None:
    plan = full_plan()
    source = io.BytesIO(package(plan))
    out = io.BytesIO()
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            if info.filename not in ("plan.json", "MANIFEST/manifest.xml"):
                zout.writestr(info.filename, zin.read(info.filename))
    back = from_package(out.getvalue())
    assert [a.id for a in back.areas] == ["sector-a"] and back.areas[0].name == "Sector A"
    assert back.areas[0].vertices == plan.areas[0].vertices
    assert [w.name for w in back.routes[0].waypoints] == ["Trailhead", "CP2", "Ridge"]
    assert back.objectives[0].point == plan.objectives[0].point
    assert back.phases == ()


def test_hostile_packages_are_refused() -> None:
    with pytest.raises(PlanInvalid, match="refused"):
        from_package(b"not a zip at all")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("../evil.cot", b"<event/>")
    with pytest.raises(PlanInvalid, match="parent reference"):
        from_package(out.getvalue())
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.cot", b"\0" * (80 * 1024 * 1024))
    with pytest.raises(PlanInvalid, match="refused"):
        from_package(bomb.getvalue())
    entity = io.BytesIO()
    with zipfile.ZipFile(entity, "w") as zf:
        zf.writestr("x/x.cot", b'<!DOCTYPE e [<!ENTITY a "b">]><event uid="x" type="u-d-f"/>')
    with pytest.raises(PlanInvalid, match="not a CoT event"):
        from_package(entity.getvalue())
