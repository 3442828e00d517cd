"""Scenario files: what is accepted, and every refusal naming its line and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from rallypoint.exercise.model import (
    Box,
    Circle,
    Enters,
    InjectKind,
    Loiter,
    RandomWalk,
    Route,
    Static,
    TaskAcknowledged,
)
from rallypoint.exercise.scenario import MAX_UNITS, ScenarioInvalid, load_scenario, parse_scenario

DATA = Path(__file__).parent.parent / "data" / "exercises"
DOCS = Path(__file__).parent.parent.parent / "docs" / "examples"

HEAD = """[exercise]
id = "t"
duration = "10:00"
"""
UNIT_A = """
[[units]]
id = "a"
motion = { kind = "static", at = { lat = 39.1, lon = -120.0 } }
"""


def problems(text: str) -> list[tuple[int, str]]:
    with pytest.raises(ScenarioInvalid) as caught:
        parse_scenario(text, source="s.toml")
    return [(p.line, p.message) for p in caught.value.problems]


def line_of(text: str, fragment: str) -> int:
    """The 1-based line of the first line of ``text`` containing ``fragment``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if fragment in line:
            return number
    raise AssertionError(fragment)


def test_the_drill_loads_with_twenty_units_three_injects_and_a_degraded_link() -> None:
    scenario = load_scenario(DATA / "drill-20.toml")
    assert scenario.id == "drill-20" and scenario.duration_s == 240.0
    assert len(scenario.units) == 20
    assert [i.kind for i in scenario.injects] == [InjectKind.EMERGENCY, InjectKind.LINK, InjectKind.CHAT]
    link = scenario.injects[1].link
    assert link is not None and (link.delay_s, link.thin, link.duration_s) == (2.0, 2, 60.0)
    kinds = {type(u.motion) for u in scenario.units}
    assert kinds == {Route, Loiter, RandomWalk, Static}


def test_the_documented_example_loads() -> None:
    scenario = load_scenario(DOCS / "exercise.toml")
    assert scenario.units and scenario.injects
    assert any(isinstance(i.trigger, Enters) for i in scenario.injects)
    assert any(isinstance(i.trigger, TaskAcknowledged) for i in scenario.injects)


def test_exercise_id_override_replaces_the_files() -> None:
    assert parse_scenario(HEAD + UNIT_A, exercise_id="night-2").id == "night-2"
    with pytest.raises(ScenarioInvalid, match="exercise id 'no spaces' must be 1-64 letters"):
        parse_scenario(HEAD + UNIT_A, exercise_id="no spaces")


def test_unknown_unit_in_an_inject_names_its_line() -> None:
    text = HEAD + UNIT_A + """
[[injects]]
id = "x"
at = "01:00"
kind = "chat"
unit = "ghost"
text = "hello"
"""
    assert problems(text) == [(line_of(text, '"ghost"'), "inject 'x' names unit 'ghost', which is not in [[units]]")]


def test_unknown_unit_in_a_trigger_and_a_task() -> None:
    text = HEAD + UNIT_A + """
[[injects]]
id = "t1"
kind = "task"
text = "go"
to_unit = "nobody"
trigger = { kind = "enters", unit = "ghost", area = { lat = 39.1, lon = -120.0, radius_m = 50 } }
"""
    found = problems(text)
    assert (line_of(text, "trigger ="), "trigger names unit 'ghost', which is not in [[units]]") in found
    assert (line_of(text, "to_unit"), "task assigned to unit 'nobody', which is not in [[units]]") in found


@pytest.mark.parametrize(("at", "message"), [
    ('"-00:05"', "time travel: at -00:05 is before the exercise starts (00:00)"),
    ("-5", "time travel: at -00:05 is before the exercise starts (00:00)"),
    ('"10:01"', "time travel: at 10:01 is after the exercise ends (10:00)"),
])
def test_injects_outside_the_exercise_are_time_travel(at: str, message: str) -> None:
    text = HEAD + UNIT_A + f"""
[[injects]]
id = "e"
kind = "emergency"
unit = "a"
at = {at}
"""
    assert problems(text) == [(line_of(text, f"at = {at}"), message)]


def test_timed_waypoints_must_move_forward_in_time() -> None:
    text = HEAD + """
[[units]]
id = "r"
motion = { kind = "route", waypoints = [
  { lat = 39.1, lon = -120.0, at = "00:00" },
  { lat = 39.2, lon = -120.0, at = "02:00" },
  { lat = 39.3, lon = -120.0, at = "01:00" },
] }
"""
    message = "time travel: waypoint 3 at 01:00 is not after waypoint 2 at 02:00"
    assert problems(text) == [(line_of(text, '"01:00"'), message)]


def test_a_route_with_one_point_is_refused_at_its_waypoints() -> None:
    text = HEAD + """
[[units]]
id = "r"
[units.motion]
kind = "route"
waypoints = [{ lat = 39.1, lon = -120.0, speed_mps = 2 }]
"""
    assert problems(text) == [(line_of(text, "waypoints"), "a route needs at least two waypoints; this one has 1")]


def test_ten_million_units_are_refused_before_any_is_built() -> None:
    text = HEAD + """
[[units]]
id = "crowd"
count = 10_000_000
motion = { kind = "static", at = { lat = 39.1, lon = -120.0 } }
"""
    [(line, message)] = problems(text)
    assert line == line_of(text, "count")
    assert message.startswith(f"10000000 units: one runner drives at most {MAX_UNITS}")


def test_unknown_keys_everywhere_are_named_with_their_lines() -> None:
    text = """[exercise]
id = "t"
duration = "10:00"
speeed = 3

[[units]]
id = "a"
colour = "red"
motion = { kind = "static", at = { lat = 39.1, lon = -120.0, alt = 3 } }

[[injects]]
id = "c"
kind = "chat"
unit = "a"
text = "x"
at = "00:10"
urgency = "high"

[extra]
"""
    found = problems(text)
    lines = [line for line, _ in found]
    assert lines == [4, 8, 9, 17, 19]
    assert found[0][1].startswith("unknown key 'speeed' in exercise; expected one of: duration, id, name, seed")
    assert "'alt'" in found[2][1] and "'urgency'" in found[3][1] and "'extra'" in found[4][1]


@pytest.mark.parametrize(("line", "message"), [
    ('rate_s = "fast"', "rate_s must be a number (got 'fast')"),
    ("rate_s = true", "rate_s must be a number (got True)"),
    ("rate_s = 0", "rate_s must be within 0.1..3600 (got 0)"),
    ("callsign = 7", "callsign must be text (got 7)"),
    ('type = "<b/>"', "type '<b/>' is not a CoT type such as a-f-G-U-C"),
])
def test_bad_types_are_named(line: str, message: str) -> None:
    text = HEAD + UNIT_A.replace('id = "a"', f'id = "a"\n{line}')
    assert problems(text) == [(line_of(text, line), message)]


def test_duplicates_bad_times_and_missing_fields() -> None:
    text = HEAD + UNIT_A + UNIT_A + """
[[injects]]
id = "l"
kind = "link"
unit = "a"
at = "5 minutes"
"""
    found = problems(text)
    assert (line_of(text, '"5 minutes"'),
            "at must be a time such as \"12:00\" (mm:ss), \"1:05:00\" or seconds (got '5 minutes')") in found
    assert any("unit id 'a' is used twice (also line 5)" in m for _, m in found)
    assert any("a link inject needs delay_s, thin or cut" in m for _, m in found)


def test_not_toml_names_the_parser_line() -> None:
    [(line, message)] = problems(HEAD + "\n[[units]\n")
    assert line == 5 and message.startswith("not valid TOML")


def test_areas_motions_and_triggers_parse_to_values() -> None:
    text = HEAD + """
[[units]]
id = "w"
motion = { kind = "random_walk", speed_mps = 1.5, area = { south = 39.0, west = -120.1, north = 39.1, east = -120.0 } }

[[units]]
id = "o"
rate_s = 2
motion = { kind = "loiter", center = { lat = 39.0, lon = -120.0 }, radius_m = 100, speed_mps = 3 }

[[injects]]
id = "task"
kind = "task"
text = "Check the bridge"
to_callsign = "ALPHA"
trigger = { kind = "enters", unit = "w", area = { lat = 39.05, lon = -120.05, radius_m = 500 } }

[[injects]]
id = "after"
kind = "silent"
unit = "o"
duration = "01:00"
delay = 30
trigger = { kind = "task_acknowledged", inject = "task" }
"""
    scenario = parse_scenario(text)
    walk, loiter = (u.motion for u in scenario.units)
    assert isinstance(walk, RandomWalk) and isinstance(walk.area, Box)
    assert isinstance(loiter, Loiter) and loiter.radius_m == 100
    task, after = scenario.injects
    assert isinstance(task.trigger, Enters) and isinstance(task.trigger.area, Circle)
    assert task.assignee == {"callsign": "ALPHA"}
    assert after.trigger == TaskAcknowledged("task") and after.delay_s == 30 and after.duration_s == 60


def test_a_trigger_must_wait_for_a_task_inject() -> None:
    text = HEAD + UNIT_A + """
[[injects]]
id = "s"
kind = "silent"
unit = "a"
trigger = { kind = "task_acknowledged", inject = "s" }
"""
    assert problems(text) == [(line_of(text, "trigger ="), "inject 's' assigns no task (kind task)")]


def test_gpx_and_kml_tracks_become_routes(tmp_path: Path) -> None:
    (tmp_path / "walk.gpx").write_text(
        '<?xml version="1.0"?><gpx xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
        '<trkpt lat="39.10" lon="-120.00"><time>2026-01-01T10:00:00Z</time></trkpt>'
        '<trkpt lat="39.11" lon="-120.00"><time>2026-01-01T10:05:00Z</time></trkpt>'
        "</trkseg></trk></gpx>")
    (tmp_path / "line.kml").write_text(
        '<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><LineString><coordinates>'
        "-120.0,39.1,0 -120.0,39.2,0 -120.1,39.2,0</coordinates></LineString></Placemark></kml>")
    (tmp_path / "evil.gpx").write_text('<!DOCTYPE gpx [<!ENTITY x "y">]><gpx>&x;</gpx>')
    (tmp_path / "s.toml").write_text(HEAD + """
[[units]]
id = "g"
motion = { kind = "track", file = "walk.gpx" }

[[units]]
id = "k"
motion = { kind = "track", file = "line.kml", speed_mps = 2 }
""")
    scenario = load_scenario(tmp_path / "s.toml")
    gpx, kml = (u.motion for u in scenario.units)
    assert isinstance(gpx, Route) and [w.time_s for w in gpx.waypoints] == [0.0, 300.0]
    assert isinstance(kml, Route) and len(kml.waypoints) == 3 and kml.waypoints[0].speed_mps == 2
    (tmp_path / "bad.toml").write_text(HEAD + """
[[units]]
id = "e"
motion = { kind = "track", file = "evil.gpx", speed_mps = 1 }

[[units]]
id = "n"
motion = { kind = "track", file = "line.kml" }
""")
    with pytest.raises(ScenarioInvalid) as caught:
        load_scenario(tmp_path / "bad.toml")
    messages = [(p.line, p.message) for p in caught.value.problems]
    assert messages == [(7, "evil.gpx: refused (doctype)"),
                        (11, "line.kml has no times on every point: give the motion a speed_mps")]
    assert str(caught.value).startswith(f"{tmp_path / 'bad.toml'}:7: ")


@pytest.mark.parametrize(("value", "message"), [
    ("nan", "lat must be a number (got nan)"),
    ("inf", "lat must be a number (got inf)"),
    ("1e308", "lat must be within -90..90 (got 1e+308)"),
    ('"39.1"', "lat must be a number (got '39.1')"),
])
def test_hostile_numbers_are_refused(value: str, message: str) -> None:
    text = HEAD + UNIT_A.replace("lat = 39.1", f"lat = {value}")
    assert problems(text) == [(line_of(text, "motion ="), message)]


def test_hostile_files_are_refused_with_a_reason(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (8 * 1024 * 1024 + 1))
    with pytest.raises(ScenarioInvalid, match="the file is 8388609 bytes; the limit is 8388608"):
        load_scenario(big)
    with pytest.raises(ScenarioInvalid, match="cannot read the file"):
        load_scenario(tmp_path / "missing.toml")
    junk = tmp_path / "junk.toml"
    junk.write_bytes(b"\x00\xff\xfe[[[")
    with pytest.raises(ScenarioInvalid, match="not valid TOML"):
        load_scenario(junk)
    nested = HEAD + UNIT_A + "[[injects]]\n" + 'id = "n"\nkind = "chat"\nunit = "a"\ntext = "x"\ntrigger = ' + \
        "[" * 50 + "]" * 50 + "\n"
    assert problems(nested)[0][1].startswith("trigger must be")
    long_id = HEAD + UNIT_A.replace('id = "a"', f'id = "{"a" * 5000}"')
    assert "must be 1-64 letters" in problems(long_id)[0][1]
