"""Absurd and hostile requests are refused with a message naming the problem, quickly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rallypoint.services.airdrop import PlanError, decode_json, plan
from tests.unit.services.airdrop.support import PI, base, build

NAN = float("nan")
INF = float("inf")


def refused(data: dict[str, Any], **changes: Any) -> str:
    with pytest.raises(PlanError) as caught:
        plan(build(data, **changes))
    return str(caught.value)


@pytest.mark.parametrize(("changes", "words"), [
    ({"aircraft__altitude_agl_m": -300.0}, "aircraft.altitude_agl_m"),
    ({"aircraft__altitude_agl_m": NAN}, "aircraft.altitude_agl_m"),
    ({"aircraft__ground_speed_kt": INF}, "aircraft.ground_speed_kt"),
    ({"dispersion": {"samples": 10**9}}, "dispersion.samples"),
    ({"load__count": 0}, "load.count"),
    ({"drop_zone__elevation_m": -NAN}, "drop_zone.elevation_m"),
    ({"load__parachute": "no-such-chute"}, "unknown parachute"),
    ({"load__parachute": None}, "name a parachute or give rod_sl_mps"),
    ({"aircraft__altitude_agl_m": 100.0}, "no stabilised descent"),
    ({"drop_zone__polygon": [[9.5, 31.6], [9.51, 31.6], [9.51, 31.61]]}, "not both"),
    ({"drop_zone__axis_deg": None}, "all of length_m, width_m and axis_deg"),
    ({"aircraft__speed": 10}, "aircraft.speed is not a known field"),
])
def test_bad_numbers_and_shapes_are_refused(changes: dict[str, Any], words: str) -> None:
    assert words in refused(base(), **changes)


def test_nan_and_infinite_winds_are_refused() -> None:
    for bad in (NAN, INF, -INF):
        data = base()
        data["winds"][0]["speed_kt"] = bad
        assert "winds[0].speed_kt" in refused(data)
        data = base()
        data["winds"][1]["from_deg"] = bad
        assert "winds[1].from_deg" in refused(data)


def test_overlapping_or_upside_down_layers_are_refused() -> None:
    data = base()
    data["winds"][1]["bottom_m"] = 50.0
    assert "overlap" in refused(data)
    data = base()
    data["winds"][0]["top_m"] = 0.0
    assert "top not above its bottom" in refused(data)


def test_a_self_crossing_polygon_is_refused() -> None:
    lat, lon = PI
    d = 0.003
    bow_tie = [[lat - d, lon - d], [lat + d, lon + d], [lat - d, lon + d], [lat + d, lon - d]]
    message = refused(base(), drop_zone={"pi": list(PI), "polygon": bow_tie})
    assert "crosses itself" in message


def test_degenerate_and_distant_polygons_are_refused() -> None:
    lat, lon = PI
    line = [[lat, lon], [lat + 0.001, lon], [lat + 0.002, lon]]
    assert "no area" in refused(base(), drop_zone={"pi": list(PI), "polygon": line})
    huge = [[lat - 1, lon - 1], [lat - 1, lon + 1], [lat + 1, lon + 1], [lat + 1, lon - 1]]
    assert "km from the PI" in refused(base(), drop_zone={"pi": list(PI), "polygon": huge})


def test_a_hundred_thousand_vertices_are_refused_by_count() -> None:
    lat, lon = PI
    many = [[lat + i * 1e-7, lon] for i in range(100_000)]
    body = json.dumps({**base(), "drop_zone": {"pi": list(PI), "polygon": many}}).encode()
    with pytest.raises(PlanError) as caught:
        decode_json(body)
    assert str(caught.value) == "invalid plan: drop_zone.polygon must be at most 500 items"


def test_malformed_json_and_nan_tokens_are_refused() -> None:
    with pytest.raises(PlanError, match="not valid JSON"):
        decode_json(b'{"drop_zone": ')
    text = json.dumps(base()).replace('"speed_kt": 8.0', '"speed_kt": NaN')
    with pytest.raises(PlanError, match="not valid JSON"):
        decode_json(text.encode())


def test_too_many_layers_and_parachutes_are_refused() -> None:
    data = base()
    data["winds"] = [{"bottom_m": float(i), "top_m": float(i + 1), "from_deg": 0.0, "speed_kt": 1.0}
                     for i in range(51)]
    assert "winds" in refused(data)
    data = base()
    data["parachutes"] = {f"p{i}": {"rod_sl_mps": 8.0} for i in range(65)}
    assert "parachutes" in refused(data)
