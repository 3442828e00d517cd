"""Cargo airdrop plan: what a planner is asked (``PlanRequest``) and what it answers (``AirdropPlan``).

The request mirrors the ``rallypoint airdrop plan`` TOML file and the ``POST /api/airdrop/plan``
body field for field. The numeric bounds here are the first line of validation (they also refuse
NaN and infinities); ``services.airdrop.validation`` adds the checks a schema cannot express.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

MAX_VERTICES = 500
MAX_LAYERS = 50
MAX_SAMPLES = 100_000
MAX_PARACHUTES = 64

Lat = Annotated[float, msgspec.Meta(ge=-90, le=90, description="WGS-84 latitude, degrees")]
Lon = Annotated[float, msgspec.Meta(ge=-180, le=180, description="WGS-84 longitude, degrees")]
LatLon = tuple[Lat, Lon]
Bearing = Annotated[float, msgspec.Meta(ge=0, le=360, description="Degrees clockwise from true north")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Height = Annotated[float, msgspec.Meta(ge=0, le=20_000, description="Metres above the drop zone")]
Seconds = Annotated[float, msgspec.Meta(ge=0, le=120)]
RodMps = Annotated[float, msgspec.Meta(ge=0.5, le=100, description="Sea-level rate of descent, m/s")]
LoadKind = Literal["container", "platform", "bundle"]


class DropZone(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The point of impact (PI) and the DZ: a polygon, or a rectangle centred on the PI."""

    pi: LatLon
    elevation_m: Annotated[float, msgspec.Meta(ge=-500, le=6000, description="DZ elevation above MSL")] = 0.0
    polygon: Annotated[list[LatLon], msgspec.Meta(min_length=3, max_length=MAX_VERTICES)] | None = None
    length_m: Annotated[float, msgspec.Meta(gt=0, le=20_000)] | None = None
    width_m: Annotated[float, msgspec.Meta(gt=0, le=20_000)] | None = None
    axis_deg: Bearing | None = None


class Aircraft(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Release altitude, ground speed and, optionally, a fixed run-in track."""

    altitude_agl_m: Annotated[float, msgspec.Meta(gt=0, le=10_000)]
    ground_speed_kt: Annotated[float, msgspec.Meta(gt=0, le=400)]
    run_in_deg: Bearing | None = None


class Parachute(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Ballistic constants of one parachute (per-parachute data, extendable by the user)."""

    rod_sl_mps: RodMps
    vd_m: Annotated[float, msgspec.Meta(ge=0, le=3000, description="Height lost while deploying")] = 0.0
    tfc_s: Seconds = 0.0
    exit_time_s: Seconds = 0.0
    dq_s: Seconds = 0.0
    rated_weight_kg: Annotated[float, msgspec.Meta(gt=0, le=50_000)] | None = None


class Load(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What is dropped: a named parachute and/or inline constants (inline values win)."""

    parachute: Name | None = None
    rod_sl_mps: RodMps | None = None
    vd_m: Annotated[float, msgspec.Meta(ge=0, le=3000)] | None = None
    tfc_s: Seconds | None = None
    exit_time_s: Seconds | None = None
    dq_s: Seconds | None = None
    weight_kg: Annotated[float, msgspec.Meta(gt=0, le=50_000)] | None = None
    count: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    kind: LoadKind = "container"
    exit_interval_s: Annotated[float, msgspec.Meta(ge=0, le=30)] = 1.0


class WindLayer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Wind between two heights above the DZ: the direction it blows FROM and its speed."""

    bottom_m: Height
    top_m: Height
    from_deg: Bearing
    speed_kt: Annotated[float, msgspec.Meta(ge=0, le=200)]


class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Model switches and limits."""

    density_correction: bool = True
    wind_limit_kt: Annotated[float, msgspec.Meta(gt=0, le=200)] = 20.0
    k_factor: Annotated[float, msgspec.Meta(gt=0, le=100)] | None = None


class Dispersion(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Monte-Carlo error model (1-sigma values); the same seed gives the same footprint."""

    samples: Annotated[int, msgspec.Meta(ge=10, le=MAX_SAMPLES)] = 2000
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] = 0
    wind_sigma_kt: Annotated[float, msgspec.Meta(ge=0, le=50)] = 3.0
    release_sigma_s: Annotated[float, msgspec.Meta(ge=0, le=30)] = 1.0
    rod_sigma_frac: Annotated[float, msgspec.Meta(ge=0, le=0.3)] = 0.05
    nav_sigma_m: Annotated[float, msgspec.Meta(ge=0, le=5000)] = 0.0


class PlanRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything a plan needs; ``winds`` empty means calm."""

    drop_zone: DropZone
    aircraft: Aircraft
    load: Load
    winds: Annotated[list[WindLayer], msgspec.Meta(max_length=MAX_LAYERS)] = msgspec.field(default_factory=list)
    options: Options = msgspec.field(default_factory=Options)
    dispersion: Dispersion | None = None
    parachutes: Annotated[dict[Name, Parachute], msgspec.Meta(max_length=MAX_PARACHUTES)] = msgspec.field(
        default_factory=dict)


class GeoPoint(msgspec.Struct, frozen=True):
    """A WGS-84 position."""

    lat: float
    lon: float


class Vector(msgspec.Struct, frozen=True):
    """A horizontal displacement in metres."""

    east: float
    north: float


class Wind(msgspec.Struct, frozen=True):
    """A wind as reported: direction it blows from, speed."""

    from_deg: float
    speed_kt: float


class CrossCheck(msgspec.Struct, frozen=True):
    """The quick D = K x A x V estimate (A hundreds of feet, V knots, D metres) beside the layered drift."""

    k: float
    k_source: str
    a_hundreds_ft: float
    v_kt: float
    d_m: float
    layered_drift_m: float


class GreenLight(msgspec.Struct, frozen=True):
    """The stretch of the run-in track where a release keeps the impact inside the DZ.

    ``opens_s``/``closes_s`` are seconds relative to passing the CARP (negative = before it).
    """

    start: GeoPoint
    end: GeoPoint
    opens_s: float
    closes_s: float
    duration_s: float


class Stick(msgspec.Struct, frozen=True):
    """Several loads released one after another: their spacing on the ground."""

    count: int
    exit_interval_s: float
    spacing_m: float
    length_m: float


class DzCheck(msgspec.Struct, frozen=True):
    """The DZ's size along and across the run-in against the sizing rule for this drop."""

    length_m: float
    width_m: float
    required_length_m: float
    required_width_m: float
    rule: str
    fits: bool


class Ellipse(msgspec.Struct, frozen=True):
    """95 % footprint ellipse: semi-axes in metres, major axis bearing in degrees."""

    center: GeoPoint
    semi_major_m: float
    semi_minor_m: float
    orientation_deg: float


class DispersionResult(msgspec.Struct, frozen=True):
    """Monte-Carlo footprint: CEP and R95 are radial misses from the PI; ``impacts`` a sample of points."""

    samples: int
    seed: int
    cep_m: float
    r95_m: float
    p_inside_dz: float
    ellipse: Ellipse
    impacts: list[GeoPoint]


class AirdropPlan(msgspec.Struct, frozen=True):
    """An advisory cargo drop plan: every figure rests on the listed assumptions."""

    advisory: str
    pi: GeoPoint
    carp: GeoPoint
    run_in_deg: float
    run_in_source: Literal["given", "chosen"]
    time_of_fall_s: float
    stabilization_altitude_m: float
    forward_travel_m: float
    drift_m: Vector
    drift_distance_m: float
    ballistic_wind: Wind
    rod_sl_mps: float
    cross_check: CrossCheck
    green_light: GreenLight | None
    stick: Stick
    dz: DzCheck
    dz_polygon: list[GeoPoint]
    dispersion: DispersionResult | None
    warnings: list[str]
    assumptions: list[str]
