"""Turning a request (TOML table or JSON body) into checked, ready-to-compute inputs, once, at the edge.

The struct bounds in ``model.airdrop`` refuse absurd and non-finite numbers; this module adds what a
schema cannot say: one DZ form, a simple polygon, ordered and non-overlapping wind layers, a known
parachute, a stabilised descent. Every refusal is a :class:`PlanError` with a message in plain words.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import msgspec
import numpy as np

from rallypoint import validation_errors
from rallypoint.errors import RallypointError
from rallypoint.model.airdrop import Parachute, PlanRequest
from rallypoint.services.airdrop.ballistics import FT
from rallypoint.services.airdrop.geometry import Array, area, rectangle, self_crossing, to_local

# Illustrative constants published with open CARP code (VD 370 ft, TFC 5.6 s, exit 4.2 s, DQ 2.7 s)
# and a commonly quoted cargo-canopy descent of 28.5 ft/s. Users add their own in [parachutes.NAME].
BUILTIN_PARACHUTES: Mapping[str, Parachute] = MappingProxyType({
    "cargo-example": Parachute(rod_sl_mps=28.5 * FT, vd_m=370 * FT, tfc_s=5.6, exit_time_s=4.2, dq_s=2.7),
})
MAX_DZ_RADIUS_M = 50_000.0
ISA_CEILING_M = 11_000.0  # top of the ISA troposphere the density model covers
MIN_ROD_MPS, MAX_ROD_MPS = 0.5, 100.0  # same bounds as the struct's rod_sl_mps


class PlanError(RallypointError):
    """The plan request is invalid; the message says what to fix."""


@dataclass(frozen=True)
class Prepared:
    """Validated inputs in the planner's terms (local frame about the PI, sorted layers)."""

    request: PlanRequest
    pi: tuple[float, float]
    polygon: Array  # (V, 2) east/north metres about the PI
    chute: Parachute
    bottoms: Array
    tops: Array
    from_deg: Array
    speed_kt: Array
    notes: tuple[str, ...]


def decode_json(body: bytes) -> PlanRequest:
    """A JSON body as a :class:`PlanRequest` (``PlanError`` when malformed or out of bounds)."""
    try:
        return validation_errors.decode_json(body, PlanRequest, subject="the plan")
    except validation_errors.InvalidJson as exc:
        raise PlanError(exc.detail if exc.malformed else f"invalid plan: {exc.detail}") from exc


def from_mapping(data: Mapping[str, Any]) -> PlanRequest:
    """A parsed TOML document as a :class:`PlanRequest`."""
    try:
        return msgspec.convert(data, PlanRequest)
    except msgspec.ValidationError as exc:
        message = validation_errors.describe(exc, PlanRequest, data, subject="the plan")
        raise PlanError(f"invalid plan: {message}") from exc


def _polygon(request: PlanRequest, pi: tuple[float, float]) -> Array:
    dz = request.drop_zone
    rect = (dz.length_m, dz.width_m, dz.axis_deg)
    if dz.polygon is not None:
        if any(v is not None for v in rect):
            raise PlanError("drop_zone: give either polygon or length_m/width_m/axis_deg, not both")
        points = list(dz.polygon)
        if len(points) > 3 and points[0] == points[-1]:
            points.pop()  # a closed ring repeats its first vertex
        lats = np.array([p[0] for p in points])
        lons = np.array([p[1] for p in points])
        east, north = to_local(pi, lats, lons)
        poly = np.stack([east, north], axis=1)
        if float(np.hypot(east, north).max()) > MAX_DZ_RADIUS_M:
            raise PlanError(f"drop_zone.polygon: vertices lie more than {MAX_DZ_RADIUS_M / 1000:.0f} km from the PI")
        if self_crossing(poly):
            raise PlanError("drop_zone.polygon: the outline crosses itself; list the vertices in order around the DZ")
        if area(poly) < 1.0:
            raise PlanError("drop_zone.polygon: the polygon has no area")
        return poly
    if any(v is None for v in rect):
        raise PlanError("drop_zone: give polygon, or all of length_m, width_m and axis_deg")
    length, width, axis = rect
    assert length is not None and width is not None and axis is not None
    return rectangle(length, width, axis % 360.0)


def _parachute(request: PlanRequest) -> Parachute:
    load = request.load
    base: Parachute | None = None
    if load.parachute is not None:
        table = {**BUILTIN_PARACHUTES, **request.parachutes}
        base = table.get(load.parachute)
        if base is None:
            known = ", ".join(sorted(table)) or "none"
            raise PlanError(f"load.parachute: unknown parachute {load.parachute!r} (known: {known})")
    rod = load.rod_sl_mps if load.rod_sl_mps is not None else (base.rod_sl_mps if base else None)
    if rod is None:
        raise PlanError("load: name a parachute or give rod_sl_mps (and vd_m, tfc_s, exit_time_s, dq_s)")

    def pick(inline: float | None, name: str) -> float:
        if inline is not None:
            return inline
        return float(getattr(base, name)) if base is not None else 0.0

    return Parachute(rod_sl_mps=rod, vd_m=pick(load.vd_m, "vd_m"), tfc_s=pick(load.tfc_s, "tfc_s"),
                     exit_time_s=pick(load.exit_time_s, "exit_time_s"), dq_s=pick(load.dq_s, "dq_s"),
                     rated_weight_kg=base.rated_weight_kg if base is not None else None)


def prepare(request: PlanRequest) -> Prepared:
    """Check what the schema cannot and put the inputs in the planner's terms."""
    dz = request.drop_zone
    pi = (dz.pi[0], dz.pi[1])
    polygon = _polygon(request, pi)
    chute = _parachute(request)
    notes: list[str] = []
    rod = chute.rod_sl_mps
    if (chute.rated_weight_kg is not None and request.load.weight_kg is not None
            and request.load.weight_kg != chute.rated_weight_kg):
        # Canopy drag balances weight: the descent rate grows with the square root of the load.
        rod = rod * math.sqrt(request.load.weight_kg / chute.rated_weight_kg)
        notes.append(f"rate of descent scaled from the rated {chute.rated_weight_kg:g} kg to "
                     f"{request.load.weight_kg:g} kg by the square root of the weight ratio")
        if not MIN_ROD_MPS <= rod <= MAX_ROD_MPS:
            raise PlanError("load.weight_kg: too far from the parachute's rated load")
    chute = Parachute(rod_sl_mps=rod, vd_m=chute.vd_m, tfc_s=chute.tfc_s, exit_time_s=chute.exit_time_s,
                      dq_s=chute.dq_s, rated_weight_kg=chute.rated_weight_kg)
    altitude = request.aircraft.altitude_agl_m
    if chute.vd_m >= altitude:
        raise PlanError(f"aircraft.altitude_agl_m: {altitude:g} m leaves no stabilised descent below the "
                        f"{chute.vd_m:g} m the canopy needs to deploy")
    if dz.elevation_m + altitude > ISA_CEILING_M:
        raise PlanError(f"drop altitude above sea level exceeds {ISA_CEILING_M:g} m, where the air model ends")
    layers = sorted(request.winds, key=lambda w: (w.bottom_m, w.top_m))
    for layer in layers:
        if layer.top_m <= layer.bottom_m:
            raise PlanError(f"winds: layer {layer.bottom_m:g}-{layer.top_m:g} m has its top not above its bottom")
    for below, above in itertools.pairwise(layers):
        if above.bottom_m < below.top_m:
            raise PlanError(f"winds: layers {below.bottom_m:g}-{below.top_m:g} m and "
                            f"{above.bottom_m:g}-{above.top_m:g} m overlap")
    if not layers:
        notes.append("no wind given: calm air assumed at every height")
        bottoms, tops = np.array([0.0]), np.array([altitude])
        from_deg, speed = np.array([0.0]), np.array([0.0])
    else:
        bottoms = np.array([w.bottom_m for w in layers])
        tops = np.array([w.top_m for w in layers])
        from_deg = np.array([w.from_deg % 360.0 for w in layers])
        speed = np.array([w.speed_kt for w in layers])
        covered = float(np.sum(np.clip(tops, 0, altitude) - np.clip(bottoms, 0, altitude)))
        if covered < altitude - 1e-6:
            notes.append("heights outside every wind layer take the wind of the nearest layer")
    return Prepared(request=request, pi=pi, polygon=polygon, chute=chute, bottoms=bottoms, tops=tops,
                    from_deg=from_deg, speed_kt=speed, notes=tuple(notes))
