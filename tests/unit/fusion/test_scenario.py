"""The scenario generator: seeded, plausible trajectories and sources with the promised imperfections."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest

from rallypoint.fusion.scenario import SCENARIOS, build_scenario
from rallypoint.fusion.scenario_sources import DEFAULT_SOURCES, SourceKind, simulate
from rallypoint.model.track import Domain, IdentityKind

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def test_same_seed_same_scenario_other_seed_other_scenario() -> None:
    spec = SCENARIOS["small"]
    one, again, other = build_scenario(spec, 5, START), build_scenario(spec, 5, START), build_scenario(spec, 6, START)
    assert np.array_equal(one.truth_points(30.0), again.truth_points(30.0))
    assert not np.allclose(one.truth_points(30.0), other.truth_points(30.0))
    assert simulate(one) == simulate(again)


def test_every_kind_of_target_with_its_identity() -> None:
    scenario = build_scenario(SCENARIOS["mixed"], 1, START)
    kinds = Counter(t.domain for t in scenario.targets)
    assert kinds == {Domain.AIR: 8, Domain.SEA: 8, Domain.GROUND: 4}
    by_domain = {t.domain: t.identity.kind for t in scenario.targets}
    assert by_domain == {Domain.AIR: IdentityKind.ICAO, Domain.SEA: IdentityKind.MMSI, Domain.GROUND: IdentityKind.GPS}
    assert len({t.identity for t in scenario.targets}) == len(scenario.targets)
    for target in scenario.targets:
        if target.identity.kind is IdentityKind.ICAO:
            assert len(target.identity.value) == 6 and int(target.identity.value, 16)
        if target.identity.kind is IdentityKind.MMSI:
            assert len(target.identity.value) == 9


@pytest.mark.parametrize(("domain", "low", "high"), [(Domain.AIR, 90.0, 260.0), (Domain.SEA, 0.5, 12.0),
                                                      (Domain.GROUND, 0.0, 16.0)])
def test_speeds_plausible_per_domain(domain: Domain, low: float, high: float) -> None:
    scenario = build_scenario(SCENARIOS["mixed"], 2, START)
    for target in (t for t in scenario.targets if t.domain is domain):
        speed = np.hypot(target.v_east, target.v_north)
        assert low <= speed.min() and speed.max() <= high, target.target_id
        # Positions follow from the velocities (no jumps): step length matches speed times step.
        steps = np.hypot(np.diff(target.east), np.diff(target.north))
        assert steps.max() <= high * 0.5 + 1e-6


def test_aircraft_turn_and_climb_ground_units_stop() -> None:
    scenario = build_scenario(SCENARIOS["mixed"], 3, START)
    air = [t for t in scenario.targets if t.domain is Domain.AIR]
    headings = [np.unwrap(np.arctan2(t.v_east, t.v_north)) for t in air]
    assert max(float(np.ptp(h)) for h in headings) > math.radians(60)
    assert any(np.ptp(t.alt) > 100.0 for t in air)
    ground = [t for t in scenario.targets if t.domain is Domain.GROUND]
    assert any(np.hypot(t.v_east, t.v_north).min() == 0.0 for t in ground)


def test_truth_at_gives_geodetic_and_local_positions_that_agree() -> None:
    scenario = build_scenario(SCENARIOS["small"], 4, START)
    for state in scenario.truth_at(12.25):
        back = scenario.frame.to_local(state.lat, state.lon)[0]
        assert back == pytest.approx([state.east, state.north], abs=1e-3)
        assert 0.0 <= state.course_deg < 360.0


def test_sources_drop_delay_reorder_duplicate_and_add_clutter() -> None:
    scenario = build_scenario(SCENARIOS["mixed"], 1, START)
    reports = simulate(scenario)
    kinds = Counter(r.source_kind for r in reports)
    assert set(kinds) == set(SourceKind)
    # Delivery order, with measurements overtaking each other within a source.
    assert all(a.deliver_s <= b.deliver_s for a, b in itertools.pairwise(reports))
    per_source: dict[str, list[float]] = {}
    for r in reports:
        per_source.setdefault(r.observation.source, []).append(r.measured_s)
        assert r.deliver_s >= r.measured_s
        assert r.observation.received_at >= (r.observation.source_time or START)
    assert any(any(b < a for a, b in itertools.pairwise(ts)) for ts in per_source.values())
    # Drops: fewer ADS-B reports than 1 Hz x aircraft x duration.
    air = sum(1 for t in scenario.targets if t.domain is Domain.AIR)
    assert kinds[SourceKind.ADSB] < air * 300 * 0.95
    # Duplicates: the same AIS measurement delivered twice.
    ais = Counter((r.truth_id, r.measured_s) for r in reports if r.source_kind is SourceKind.AIS)
    assert max(ais.values()) == 2
    # Clutter and identity: radar reports carry no identity; some are false alarms.
    radar = [r for r in reports if r.source_kind is SourceKind.RADAR]
    assert all(r.observation.identity is None and r.observation.name is None for r in radar)
    assert any(r.truth_id is None for r in radar)
    assert all(r.truth_id is not None for r in reports if r.source_kind is not SourceKind.RADAR)


def test_noise_matches_the_source_sigma() -> None:
    scenario = build_scenario(SCENARIOS["mixed"], 8, START)
    targets = {t.target_id: t for t in scenario.targets}
    for source in DEFAULT_SOURCES:
        errors = []
        for r in simulate(scenario, (source,)):
            if r.truth_id is None:
                continue
            truth = targets[r.truth_id].state_at(r.measured_s, scenario.frame)
            got = scenario.frame.to_local(r.observation.lat, r.observation.lon)[0]
            errors.append(got - [truth.east, truth.north])
        sigma = float(np.std(np.array(errors)))
        assert sigma == pytest.approx(source.sigma_m, rel=0.15), source.name
        assert all(r.observation.ce_m == source.sigma_m for r in simulate(scenario, (source,)))


def test_a_naive_start_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        build_scenario(SCENARIOS["small"], 1, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="positive"):
        build_scenario(SCENARIOS["small"], 1, START, duration_s=0)
