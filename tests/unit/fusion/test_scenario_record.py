"""A recorded scenario reads back as the same truth and the same reports."""

from __future__ import annotations

import pytest

from rallypoint.fusion.scenario import SCENARIOS, build_scenario
from rallypoint.fusion.scenario_record import RecordError, read_recording, record_lines
from rallypoint.fusion.scenario_sources import DEFAULT_SOURCES, simulate


def test_round_trip() -> None:
    scenario = build_scenario(SCENARIOS["small"], 9, duration_s=20.0)
    reports = simulate(scenario)
    lines = list(record_lines(scenario, DEFAULT_SOURCES, reports, truth_step_s=2.0))
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
    recording = read_recording(lines)
    assert recording.scenario.name == "small" and recording.scenario.seed == 9
    assert [s.name for s in recording.scenario.sources] == [s.name for s in DEFAULT_SOURCES]
    assert recording.truth_times() == [float(t) for t in range(0, 21, 2)]
    assert recording.truth_points(10.0) == pytest.approx(scenario.truth_points(10.0), abs=1e-3)
    assert [r.observation for r in recording.reports] == [r.observation for r in reports]
    assert [r.truth_id for r in recording.reports] == [r.truth_id for r in reports]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "empty recording"),
        ([b'{"record": "truth", "t": 0, "id": "a", "lat": 0, "lon": 0, "alt_m": 0, "course_deg": 0, '
          b'"speed_mps": 0}'], "line 1: the first line must describe the scenario"),
        ([b"not json"], "line 1"),
        ([b'{"record": "weather"}'], "line 1"),
    ],
)
def test_bad_recordings_name_the_line(lines: list[bytes], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        read_recording(lines)


def test_other_versions_and_second_headers_are_refused() -> None:
    scenario = build_scenario(SCENARIOS["small"], 1, duration_s=2.0)
    header = next(record_lines(scenario, DEFAULT_SOURCES, []))
    with pytest.raises(RecordError, match="version 2"):
        read_recording([header.replace(b'"version":1', b'"version":2')])
    with pytest.raises(RecordError, match="line 2: a second scenario line"):
        read_recording([header, header])
