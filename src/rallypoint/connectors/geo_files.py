"""Map layers from GeoJSON and KML/KMZ documents (files or URLs), read whole on every change.

Point features become observations (identity kind ``feature``: the feature's id, else its ``id`` or
``name`` property / KML name, else its position in the document); lines and polygons become
:class:`Shape` values for the feed service to say as drawings or routes. Multi-geometries are split
into parts (``id#0``, ``id#1``...); polygon holes are not kept. KML is parsed by lxml with the
project's hardening (no DOCTYPE, no entities, size and depth caps) before fastkml reads the tree;
a KMZ is opened in memory and only its main ``.kml`` entry is read, never more than
``max_document`` bytes of it, so a zip bomb costs nothing.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec
from fastkml import Placemark, kml

from rallypoint.connectors.base import Rejects
from rallypoint.connectors.decoding import finite, position_problem
from rallypoint.errors import RemoteProtocolError
from rallypoint.model.track import Domain, Identity, IdentityKind, Observation
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xmlsafe import new_parser, parse_document, reject_markup_declarations, strip_declaration
from rallypoint.services.datapackages import PackageRejected, check_entry_name, looks_like_zip

DEFAULT_MAX_DOCUMENT = 32 * 1024 * 1024
_MAX_KML_DEPTH = 64
_MAX_KMZ_ENTRIES = 1000
_LIBRARY_ERRORS = (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError)


class Shape(msgspec.Struct, frozen=True):
    """A line or polygon of a layer; ``points`` are (lat, lon) pairs, a polygon's ring closed."""

    id: str
    kind: Literal["line", "polygon"]
    points: tuple[tuple[float, float], ...]
    name: str | None = None


class Layer(msgspec.Struct, frozen=True):
    """What one document holds: point observations and shapes."""

    observations: tuple[Observation, ...] = ()
    shapes: tuple[Shape, ...] = ()


class _Feature(msgspec.Struct, frozen=True):
    """A format-neutral feature: id, name, GeoJSON-style geometry type and [lon, lat, ...] coordinates."""

    id: str
    name: str | None
    geometry: str
    coordinates: Any


class _Collector:
    """Turns features into observations and shapes, counting what cannot be used."""

    def __init__(
        self, source: str, rejects: Rejects, received_at: datetime, max_features: int, max_points: int
    ) -> None:
        self.source = source
        self.rejects = rejects
        self.received_at = received_at
        self.max_features = max_features
        self.max_points = max_points
        self.observations: list[Observation] = []
        self.shapes: list[Shape] = []
        self.seen = 0

    def add(self, feature: _Feature) -> None:
        if self.seen >= self.max_features:
            self.rejects.add("too_many")
            return
        self.seen += 1
        match feature.geometry:
            case "Point":
                self._point(feature.id, feature.name, feature.coordinates)
            case "LineString":
                self._shape(feature.id, feature.name, "line", feature.coordinates)
            case "Polygon":
                rings = feature.coordinates
                if not isinstance(rings, list | tuple) or not rings:
                    self.rejects.add("malformed")
                    return
                self._shape(feature.id, feature.name, "polygon", rings[0])
            case "MultiPoint" | "MultiLineString" | "MultiPolygon":
                parts = feature.coordinates
                if not isinstance(parts, list | tuple):
                    self.rejects.add("malformed")
                    return
                single = feature.geometry.removeprefix("Multi")
                for n, part in enumerate(parts):
                    self.add(_Feature(id=f"{feature.id}#{n}", name=feature.name, geometry=single, coordinates=part))
            case _:
                self.rejects.add("unsupported")

    def _point(self, fid: str, name: str | None, coords: object) -> None:
        position = _lat_lon(coords)
        if position is None:
            self.rejects.add("malformed")
            return
        lat, lon = position
        problem = position_problem(lat, lon)
        if problem is not None:
            self.rejects.add(problem)
            return
        alt = finite(coords[2]) if isinstance(coords, list | tuple) and len(coords) > 2 else None
        self.observations.append(
            Observation(
                source=self.source,
                received_at=self.received_at,
                source_time=None,
                lat=lat,
                lon=lon,
                domain=Domain.GROUND,
                identity=Identity(kind=IdentityKind.FEATURE, value=fid),
                name=name,
                alt_m=alt,
            )
        )

    def _shape(self, fid: str, name: str | None, kind: Literal["line", "polygon"], coords: object) -> None:
        if not isinstance(coords, list | tuple) or len(coords) < 2:
            self.rejects.add("malformed")
            return
        if len(coords) > self.max_points:
            self.rejects.add("too_many_points")
            return
        points: list[tuple[float, float]] = []
        for vertex in coords:
            position = _lat_lon(vertex)
            if position is None:
                self.rejects.add("malformed")
                return
            if position_problem(*position) is not None:
                self.rejects.add("impossible_position")
                return
            points.append(position)
        self.shapes.append(Shape(id=fid, kind=kind, points=tuple(points), name=name))


class GeoJsonDecoder:
    """A GeoJSON document (FeatureCollection, Feature or bare geometry) in, a layer out."""

    def __init__(
        self,
        source: str,
        *,
        max_document: int = DEFAULT_MAX_DOCUMENT,
        max_features: int = 50_000,
        max_points: int = 100_000,
    ) -> None:
        self.source = source
        self.rejects = Rejects()
        self.shapes: tuple[Shape, ...] = ()
        self._max_document = max_document
        self._max_features = max_features
        self._max_points = max_points

    def decode(self, document: bytes, received_at: datetime) -> list[Observation]:
        """The point observations; the document's shapes are left in ``shapes``."""
        layer = self.decode_layer(document, received_at)
        self.shapes = layer.shapes
        return list(layer.observations)

    def decode_layer(self, document: bytes, received_at: datetime) -> Layer:
        """Observations and shapes of one document."""
        if len(document) > self._max_document:
            self.rejects.add("too_large")
            return Layer()
        try:
            root = msgspec.json.decode(document)
        except (msgspec.DecodeError, RecursionError):
            self.rejects.add("malformed")
            return Layer()
        out = _Collector(self.source, self.rejects, received_at, self._max_features, self._max_points)
        for feature in self._features(root):
            out.add(feature)
        return Layer(observations=tuple(out.observations), shapes=tuple(out.shapes))

    def _features(self, root: object) -> Iterator[_Feature]:
        if not isinstance(root, dict):
            self.rejects.add("malformed")
            return
        kind = root.get("type")
        if kind == "FeatureCollection":
            features = root.get("features")
            if not isinstance(features, list):
                self.rejects.add("malformed")
                return
            for n, item in enumerate(features):
                feature = self._feature(item, n)
                if feature is not None:
                    yield feature
        elif kind == "Feature":
            feature = self._feature(root, 0)
            if feature is not None:
                yield feature
        elif isinstance(kind, str) and "coordinates" in root:
            yield _Feature(id="0", name=None, geometry=kind, coordinates=root["coordinates"])
        else:
            self.rejects.add("malformed")

    def _feature(self, item: object, index: int) -> _Feature | None:
        if not isinstance(item, dict) or not isinstance(item.get("geometry"), dict | None):
            self.rejects.add("malformed")
            return None
        geometry = item.get("geometry")
        if geometry is None:
            self.rejects.add("no_geometry")
            return None
        props = item.get("properties")
        props = props if isinstance(props, dict) else {}
        name = next((props[k] for k in ("name", "title") if isinstance(props.get(k), str)), None)
        fid = _first_id(item.get("id"), props.get("id"), name, index)
        kind = geometry.get("type")
        if not isinstance(kind, str):
            self.rejects.add("malformed")
            return None
        return _Feature(id=fid, name=name, geometry=kind, coordinates=geometry.get("coordinates"))


class KmlDecoder:
    """A KML or KMZ document in, a layer out."""

    def __init__(
        self,
        source: str,
        *,
        max_document: int = DEFAULT_MAX_DOCUMENT,
        max_features: int = 50_000,
        max_points: int = 100_000,
    ) -> None:
        self.source = source
        self.rejects = Rejects()
        self.shapes: tuple[Shape, ...] = ()
        self._max_document = max_document
        self._max_features = max_features
        self._max_points = max_points
        self._parser = new_parser()

    def decode(self, document: bytes, received_at: datetime) -> list[Observation]:
        """The point observations; the document's shapes are left in ``shapes``."""
        layer = self.decode_layer(document, received_at)
        self.shapes = layer.shapes
        return list(layer.observations)

    def decode_layer(self, document: bytes, received_at: datetime) -> Layer:
        """Observations and shapes of one KML or KMZ document."""
        if len(document) > self._max_document:
            self.rejects.add("too_large")
            return Layer()
        if looks_like_zip(document[:4]):
            kml_bytes = self._kmz_entry(document)
            if kml_bytes is None:
                return Layer()
            document = kml_bytes
        try:
            body = strip_declaration(document)
            reject_markup_declarations(body)
            root = parse_document(
                body, Limits(max_event_bytes=self._max_document, max_depth=_MAX_KML_DEPTH), self._parser
            )
        except RemoteProtocolError as exc:
            self.rejects.add(exc.reason)
            return Layer()
        tag = root.tag if isinstance(root.tag, str) else ""
        if not tag.endswith("kml"):
            self.rejects.add("malformed")
            return Layer()
        ns = tag[:-3]
        try:
            parsed = kml.KML.class_from_element(ns=ns, name_spaces={"kml": ns}, element=root, strict=False)
        except _LIBRARY_ERRORS:
            self.rejects.add("malformed")
            return Layer()
        out = _Collector(self.source, self.rejects, received_at, self._max_features, self._max_points)
        counter = [0]
        for feature in self._placemarks(parsed, counter):
            out.add(feature)
        return Layer(observations=tuple(out.observations), shapes=tuple(out.shapes))

    def _kmz_entry(self, document: bytes) -> bytes | None:
        """The main KML of a KMZ: ``doc.kml`` or else the first ``.kml`` entry, read with a byte cap."""
        try:
            with zipfile.ZipFile(io.BytesIO(document)) as zf:
                infos = zf.infolist()
                if len(infos) > _MAX_KMZ_ENTRIES:
                    self.rejects.add("too_large")
                    return None
                kmls = [i for i in infos if i.filename.lower().endswith(".kml") and not i.is_dir()]
                main = next((i for i in kmls if i.filename.lower() == "doc.kml"), kmls[0] if kmls else None)
                if main is None:
                    self.rejects.add("malformed")
                    return None
                check_entry_name(main.filename)
                if main.flag_bits & 0x1:
                    self.rejects.add("unsupported")  # encrypted
                    return None
                if main.file_size > self._max_document:
                    self.rejects.add("too_large")
                    return None
                with zf.open(main) as member:
                    data = member.read(self._max_document + 1)
                if len(data) > self._max_document:
                    self.rejects.add("too_large")
                    return None
                return data
        except PackageRejected:
            self.rejects.add("malformed")
            return None
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError):
            self.rejects.add("malformed")
            return None

    def _placemarks(self, container: Any, counter: list[int]) -> Iterator[_Feature]:
        for item in getattr(container, "features", None) or ():
            if isinstance(item, Placemark):
                counter[0] += 1
                geometry = item.geometry
                name = item.name.strip() if isinstance(item.name, str) and item.name.strip() else None
                fid = _first_id(item.id or None, None, name, counter[0] - 1)
                if geometry is None:
                    self.rejects.add("no_geometry")
                    continue
                yield from _kml_geometry(fid, name, geometry)
            else:
                yield from self._placemarks(item, counter)


def _kml_geometry(fid: str, name: str | None, geometry: Any) -> Iterator[_Feature]:
    """pygeoif geometries (what fastkml gives) as format-neutral features; collections split."""
    kind = geometry.geom_type
    if kind == "Polygon":
        yield _Feature(id=fid, name=name, geometry=kind, coordinates=[list(geometry.exterior.coords)])
    elif kind in {"Point", "LineString", "LinearRing"}:
        coords = list(geometry.coords)
        if kind == "Point":
            yield _Feature(id=fid, name=name, geometry=kind, coordinates=list(coords[0]) if coords else None)
        else:
            yield _Feature(id=fid, name=name, geometry="LineString", coordinates=coords)
    elif hasattr(geometry, "geoms"):
        for n, part in enumerate(geometry.geoms):
            yield from _kml_geometry(f"{fid}#{n}", name, part)
    else:
        yield _Feature(id=fid, name=name, geometry=str(kind), coordinates=None)


def _first_id(*candidates: object) -> str:
    """The first usable id: a non-empty string or a number (the last candidate, an index, always is)."""
    for value in candidates:
        if isinstance(value, str) and value.strip():
            return value.strip()[:256]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    return "0"


def _lat_lon(coords: object) -> tuple[float, float] | None:
    """GeoJSON/KML ``[lon, lat, ...]`` as (lat, lon); None unless both are numbers."""
    if not isinstance(coords, Sequence) or isinstance(coords, str) or len(coords) < 2:
        return None
    lon, lat = coords[0], coords[1]
    if (
        isinstance(lon, bool)
        or isinstance(lat, bool)
        or not isinstance(lon, int | float)
        or not isinstance(lat, int | float)
    ):
        return None
    return float(lat), float(lon)
