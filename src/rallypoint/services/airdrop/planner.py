"""Assemble an advisory cargo drop plan: CARP, run-in, green-light window, stick, DZ check, footprint.

Pure: no I/O, no clock. ``plan(request)`` validates (``PlanError`` on bad input) and computes;
``plan_prepared`` skips validation for callers that already hold :class:`Prepared` inputs.
"""

from __future__ import annotations

import numpy as np

from rallypoint.model.airdrop import (
    AirdropPlan,
    CrossCheck,
    DispersionResult,
    DzCheck,
    Ellipse,
    GeoPoint,
    GreenLight,
    PlanRequest,
    Stick,
    Vector,
    Wind,
)
from rallypoint.services.airdrop.ballistics import FT, KT, Fall, fall, implied_k, layer_of, wind_vectors
from rallypoint.services.airdrop.dispersion import Footprint, impacts, summarize
from rallypoint.services.airdrop.geometry import Array, bearing_of, chords, extents, from_local, inside, unit
from rallypoint.services.airdrop.sizing import MAX_CONTAINERS_IN_ROW, required_size
from rallypoint.services.airdrop.validation import Prepared, prepare

ADVISORY = ("Advisory only: the aircrew and the controller on the drop zone decide. "
            "Cargo drops only (bundles, containers, platforms); not for personnel.")
IMPACTS_SHOWN = 200
P_INSIDE_WARN = 0.95


def plan(request: PlanRequest) -> AirdropPlan:
    """Validate ``request`` and compute its plan (raises ``PlanError`` with a plain message)."""
    return plan_prepared(prepare(request))


def long_axis(polygon: Array) -> float:
    """Bearing in [0, 180) along which the DZ is longest: across it, the outline is narrowest."""
    bearings = np.arange(0.0, 180.0, 0.5)
    widths = [extents(polygon, float(b))[1] for b in bearings]
    return float(bearings[int(np.argmin(widths))])


def choose_run_in(polygon: Array, drift: Array) -> float:
    """Run in along the DZ's long axis, in the direction closer to into the wind (the drift's opposite)."""
    axis = long_axis(polygon)
    if float(np.hypot(*drift)) <= 1.0:
        return axis
    into_wind = bearing_of(-drift[0], -drift[1])
    off_wind = abs((axis - into_wind + 180.0) % 360.0 - 180.0)
    return axis if off_wind <= 90.0 else (axis + 180.0) % 360.0


def _point(origin: tuple[float, float], east: float, north: float) -> GeoPoint:
    lats, lons = from_local(origin, np.array([east]), np.array([north]))
    return GeoPoint(lat=float(lats[0]), lon=float(lons[0]))


def _dispersion(prep: Prepared, footprint: Footprint) -> DispersionResult:
    model = prep.request.dispersion
    assert model is not None
    shown = footprint.offsets[:IMPACTS_SHOWN]
    lats, lons = from_local(prep.pi, shown[:, 0], shown[:, 1])
    ellipse = Ellipse(center=_point(prep.pi, float(footprint.mean[0]), float(footprint.mean[1])),
                      semi_major_m=footprint.semi_major_m, semi_minor_m=footprint.semi_minor_m,
                      orientation_deg=footprint.orientation_deg)
    return DispersionResult(samples=model.samples, seed=model.seed, cep_m=footprint.cep_m, r95_m=footprint.r95_m,
                            p_inside_dz=footprint.p_inside, ellipse=ellipse,
                            impacts=[GeoPoint(lat=float(a), lon=float(o)) for a, o in zip(lats, lons, strict=True)])


def _assumptions(prep: Prepared, chosen: bool, rule: str) -> list[str]:
    req = prep.request
    items = [
        "ISA standard atmosphere; descent rate scaled by sqrt(rho0/rho) with height above sea level"
        if req.options.density_correction else "air-density correction off: the sea-level descent rate at every height",
        "each wind layer blows steadily over its whole depth and for the whole fall; heights are above the DZ",
        "the load drifts with the wind from exit to impact; the deployment seconds (TFC) take the winds "
        "of the deployment band",
        "forward travel = (exit time + DQ) x ground speed, along the run-in track",
        "altitude and ground speed held steady on the run-in",
        "positions are geodesic offsets on WGS-84 from the PI",
        "the DZ has a controller, an obstacle-free approach and a clear area beyond it (late releases happen)",
        f"DZ sizing: C-130 criteria as publicly summarised ({rule}); "
        "each started 100 ft above the base altitude adds the increment",
        f"several loads leave {req.load.exit_interval_s:g} s apart; the CARP is the middle of the stick",
    ]
    if req.drop_zone.polygon is None:
        items.append("the DZ is a rectangle centred on the PI")
    if chosen:
        items.append("run-in chosen: along the long axis of the DZ, in the direction closer to into the wind")
    if req.options.k_factor is None:
        items.append("cross-check K derived from the descent rate: K = 15.68 / ROD[m/s]")
    if req.dispersion is not None:
        d = req.dispersion
        items.append(f"dispersion: wind error {d.wind_sigma_kt:g} kt per layer and axis, release timing "
                     f"{d.release_sigma_s:g} s, descent rate {d.rod_sigma_frac * 100:g} %, navigation "
                     f"{d.nav_sigma_m:g} m (1 sigma, normal, independent)")
    return items + list(prep.notes)


def plan_prepared(prep: Prepared) -> AirdropPlan:
    """The plan for already validated inputs."""
    req = prep.request
    chute = prep.chute
    altitude = req.aircraft.altitude_agl_m
    the_fall: Fall = fall(altitude_agl_m=altitude, elevation_m=req.drop_zone.elevation_m,
                          rod_sl_mps=chute.rod_sl_mps, vd_m=chute.vd_m, tfc_s=chute.tfc_s, bottoms=prep.bottoms,
                          tops=prep.tops, density_correction=req.options.density_correction)
    winds = wind_vectors(prep.from_deg, prep.speed_kt)
    drift = the_fall.drift(winds)
    chosen = req.aircraft.run_in_deg is None
    run_in = choose_run_in(prep.polygon, drift) if chosen else float(req.aircraft.run_in_deg or 0.0) % 360.0
    track = unit(run_in)
    speed = req.aircraft.ground_speed_kt * KT
    forward = (chute.exit_time_s + chute.dq_s) * speed
    carp = -forward * track - drift
    warnings: list[str] = []

    pi_inside = bool(inside(prep.polygon, np.zeros(1), np.zeros(1))[0])
    if not pi_inside:
        warnings.append("the PI lies outside the DZ outline: no release keeps the impact inside it")
    back, ahead = chords(prep.polygon, np.array([run_in]))
    green: GreenLight | None = None
    if float(ahead[0] - back[0]) > 0:
        start, end = carp + back[0] * track, carp + ahead[0] * track
        green = GreenLight(start=_point(prep.pi, *map(float, start)), end=_point(prep.pi, *map(float, end)),
                           opens_s=float(back[0]) / speed, closes_s=float(ahead[0]) / speed,
                           duration_s=float(ahead[0] - back[0]) / speed)
    load = req.load
    spacing = load.exit_interval_s * speed
    stick = Stick(count=load.count, exit_interval_s=load.exit_interval_s, spacing_m=spacing,
                  length_m=spacing * (load.count - 1))
    if green is not None and stick.length_m > float(ahead[0] - back[0]):
        warnings.append(f"the stick of {load.count} loads ({stick.length_m:.0f} m) is longer than the DZ "
                        f"along the run-in ({float(ahead[0] - back[0]):.0f} m)")

    need = required_size(load.kind, load.count, altitude)
    along, across = extents(prep.polygon, run_in)
    fits = along >= need.length_m - 0.5 and across >= need.width_m - 0.5
    if not fits:
        warnings.append(f"DZ too small for this drop: {need.length_m:.0f} x {need.width_m:.0f} m needed "
                        f"({need.rule}), {along:.0f} x {across:.0f} m available along x across the run-in")
    if not need.covered:
        warnings.append(f"the sizing table covers up to {MAX_CONTAINERS_IN_ROW} containers in one row; "
                        "the size shown is a lower bound")
    surface = int(layer_of(np.zeros(1), prep.bottoms, prep.tops)[0])
    strongest = float(prep.speed_kt.max())
    if float(prep.speed_kt[surface]) > req.options.wind_limit_kt:
        warnings.append(f"surface wind {float(prep.speed_kt[surface]):.0f} kt exceeds the limit of "
                        f"{req.options.wind_limit_kt:g} kt")
    elif strongest > req.options.wind_limit_kt:
        warnings.append(f"wind aloft reaches {strongest:.0f} kt, above the limit of {req.options.wind_limit_kt:g} kt")

    dispersion: DispersionResult | None = None
    if req.dispersion is not None:
        offsets = impacts(the_fall, winds, track, speed, req.dispersion)
        footprint = summarize(offsets, prep.polygon)
        dispersion = _dispersion(prep, footprint)
        if footprint.p_inside < P_INSIDE_WARN:
            warnings.append(f"about {100 * (1 - footprint.p_inside):.0f} % of loads may land outside the DZ: "
                            "the impact area beyond it must be clear")

    tof = the_fall.time_of_fall_s
    drift_distance = float(np.hypot(*drift))
    ballistic_speed_kt = drift_distance / tof / KT if tof > 0 else 0.0
    k = req.options.k_factor if req.options.k_factor is not None else implied_k(chute.rod_sl_mps)
    a_hundreds = altitude / FT / 100.0
    cross = CrossCheck(k=k, k_source="given" if req.options.k_factor is not None else "derived from ROD",
                       a_hundreds_ft=a_hundreds, v_kt=ballistic_speed_kt, d_m=k * a_hundreds * ballistic_speed_kt,
                       layered_drift_m=drift_distance)
    lats, lons = from_local(prep.pi, prep.polygon[:, 0], prep.polygon[:, 1])
    return AirdropPlan(
        advisory=ADVISORY,
        pi=GeoPoint(lat=prep.pi[0], lon=prep.pi[1]),
        carp=_point(prep.pi, float(carp[0]), float(carp[1])),
        run_in_deg=run_in,
        run_in_source="chosen" if chosen else "given",
        time_of_fall_s=tof,
        stabilization_altitude_m=the_fall.stabilization_altitude_m,
        forward_travel_m=forward,
        drift_m=Vector(east=float(drift[0]), north=float(drift[1])),
        drift_distance_m=drift_distance,
        ballistic_wind=Wind(from_deg=bearing_of(-drift[0], -drift[1]) if drift_distance > 0 else 0.0,
                            speed_kt=ballistic_speed_kt),
        rod_sl_mps=chute.rod_sl_mps,
        cross_check=cross,
        green_light=green,
        stick=stick,
        dz=DzCheck(length_m=along, width_m=across, required_length_m=need.length_m,
                   required_width_m=need.width_m, rule=need.rule, fits=fits),
        dz_polygon=[GeoPoint(lat=float(a), lon=float(o)) for a, o in zip(lats, lons, strict=True)],
        dispersion=dispersion,
        warnings=warnings,
        assumptions=_assumptions(prep, chosen, need.rule),
    )
