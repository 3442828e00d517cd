"""A plan as a GeoJSON FeatureCollection (RFC 7946), and back (pure).

Every item is one Feature; ``properties.plan_item`` names its kind (``areas``, ``routes``, ...) and the
other properties are its fields. Map items carry a geometry (an area a Polygon whose ring is
closed, a route a LineString, an objective with a point a Point, an airdrop the Point of its
release point); phases, assignments and resources have ``"geometry": null``. Coordinates are
``[longitude, latitude]``, as GeoJSON orders them.

Importing accepts this layout and plain GeoJSON from other tools: a Feature without ``plan_item``
becomes an area (Polygon), a route (LineString) or an objective (Point), named from
``properties.name``, with an id from ``properties.id`` or its position in the file. The result is
checked like any plan.
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec

from rallypoint.model.plan import (
    MAX_ITEMS_PER_KIND,
    MAX_TOTAL_POINTS,
    AirdropItem,
    Area,
    ItemKind,
    Objective,
    Plan,
    Route,
    items_of,
)
from rallypoint.services.plans_validate import PlanInvalid, convert_plan

MEDIA_TYPE = "application/geo+json"
ITEM_PROPERTY = "plan_item"
_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_MAX_FEATURES = MAX_ITEMS_PER_KIND * len(ItemKind)


def _ring(area: Area) -> list[list[float]]:
    ring = [[v.lon, v.lat] for v in area.vertices]
    if ring[0] != ring[-1]:
        ring.append(ring[0])
    return ring


def to_geojson(plan: Plan, *, name: str = "") -> dict[str, Any]:
    """``plan`` as a FeatureCollection (``name`` is the collection's name member)."""
    features: list[dict[str, Any]] = []
    for kind, item in items_of(plan):
        props: dict[str, Any] = {ITEM_PROPERTY: kind.value, **msgspec.to_builtins(item)}
        geometry: dict[str, Any] | None = None
        match item:
            case Area():
                props.pop("vertices")
                geometry = {"type": "Polygon", "coordinates": [_ring(item)]}
            case Route():
                props["waypoint_names"] = [w.name for w in item.waypoints]
                props.pop("waypoints")
                geometry = {"type": "LineString", "coordinates": [[w.lon, w.lat] for w in item.waypoints]}
            case Objective(point=point) if point is not None:
                props.pop("point")
                geometry = {"type": "Point", "coordinates": [point.lon, point.lat]}
            case AirdropItem(result=result) if result is not None:
                geometry = {"type": "Point", "coordinates": [result.carp.lon, result.carp.lat]}
        features.append({"type": "Feature", "id": item.id, "geometry": geometry, "properties": props})
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if name:
        collection["name"] = name
    return collection


def from_geojson(raw: bytes) -> Plan:
    """A plan from a GeoJSON document (``PlanInvalid`` with the reason when it cannot be one)."""
    try:
        doc = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise PlanInvalid(f"not JSON: {exc}") from exc
    except RecursionError as exc:
        raise PlanInvalid("the document is nested too deeply") from exc
    if not isinstance(doc, dict) or doc.get("type") not in ("FeatureCollection", "Feature"):
        raise PlanInvalid("expected a GeoJSON FeatureCollection or Feature")
    features = doc.get("features") if doc["type"] == "FeatureCollection" else [doc]
    if not isinstance(features, list):
        raise PlanInvalid("features must be a list")
    if len(features) > _MAX_FEATURES:
        raise PlanInvalid(f"{len(features)} features, at most {_MAX_FEATURES}")
    fields: dict[str, list[Any]] = {kind.value: [] for kind in ItemKind}
    budget = [MAX_TOTAL_POINTS]
    for n, feature in enumerate(features):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise PlanInvalid(f"feature {n}: not a GeoJSON Feature")
        kind, item = _item(n, feature, budget)
        fields[kind].append(item)
    return convert_plan(fields)


def _item(n: int, feature: dict[str, Any], budget: list[int]) -> tuple[str, dict[str, Any]]:
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise PlanInvalid(f"feature {n}: properties must be an object")
    props = dict(props)
    geometry = feature.get("geometry")
    gtype = geometry.get("type") if isinstance(geometry, dict) else None
    kind = props.pop(ITEM_PROPERTY, None)
    if kind is None:
        kind = {"Polygon": "areas", "LineString": "routes", "Point": "objectives"}.get(str(gtype))
        if kind is None:
            raise PlanInvalid(f"feature {n}: a {gtype or 'feature without geometry'} is not a plan item "
                              "(give properties.plan_item, or a Polygon, LineString or Point)")
    if kind not in {k.value for k in ItemKind}:
        raise PlanInvalid(f"feature {n}: plan_item {str(kind)[:40]!r} is not one of "
                          + ", ".join(k.value for k in ItemKind))
    fid = props.get("id", feature.get("id"))
    props["id"] = _ID_CHARS.sub("-", str(fid))[:64].strip("-._") if fid is not None else f"{kind[:-1]}-{n + 1}"
    if kind != ItemKind.ASSIGNMENT.value:
        props.setdefault("name", props["id"])
    coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
    match kind, gtype:
        case "areas", "Polygon":
            rings = _list(n, coords)
            if len(rings) != 1:
                raise PlanInvalid(f"feature {n}: a plan area is one ring without holes")
            ring = _positions(n, rings[0], budget)
            if len(ring) > 1 and ring[0] == ring[-1]:
                ring.pop()  # GeoJSON repeats the first position to close a ring; plans close it implicitly
            props["vertices"] = [{"lat": lat, "lon": lon} for lon, lat in ring]
        case "routes", "LineString":
            names = props.pop("waypoint_names", None)
            points = _positions(n, coords, budget)
            names = names if isinstance(names, list) and len(names) == len(points) else [""] * len(points)
            props["waypoints"] = [{"lat": lat, "lon": lon, "name": str(name)}
                                  for (lon, lat), name in zip(points, names, strict=True)]
        case "objectives", "Point":
            ((lon, lat),) = _positions(n, [coords], budget)
            props["point"] = {"lat": lat, "lon": lon}
        case ("areas" | "routes"), _:
            raise PlanInvalid(f"feature {n}: {kind} need a {'Polygon' if kind == 'areas' else 'LineString'}")
    return kind, props


def _list(n: int, value: object) -> list[Any]:
    if not isinstance(value, list):
        raise PlanInvalid(f"feature {n}: coordinates must be a list")
    return value


def _positions(n: int, value: object, budget: list[int]) -> list[tuple[float, float]]:
    """``[[lon, lat], ...]`` as pairs, counted against the plan's point budget before they are read."""
    items = _list(n, value)
    budget[0] -= len(items)
    if budget[0] < 0:
        raise PlanInvalid(f"more than {MAX_TOTAL_POINTS} positions in all; split the plan")
    out: list[tuple[float, float]] = []
    for p in items:
        if (not isinstance(p, list) or len(p) < 2
                or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in p[:2])
                or not all(math.isfinite(c) for c in p[:2])):
            raise PlanInvalid(f"feature {n}: a position is [longitude, latitude] in finite numbers")
        out.append((float(p[0]), float(p[1])))
    return out
