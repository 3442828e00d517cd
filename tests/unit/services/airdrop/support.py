"""Request builders shared by the airdrop tests."""

from __future__ import annotations

import copy
from typing import Any

from rallypoint.model.airdrop import PlanRequest
from rallypoint.services.airdrop import from_mapping

FT = 0.3048
KT = 0.514444
PI = (9.52, 31.655)


def base() -> dict[str, Any]:
    """A relief drop: 4 containers at 800 ft onto a 700 x 500 m DZ, two wind layers."""
    return {
        "drop_zone": {"pi": list(PI), "elevation_m": 420.0, "length_m": 700.0, "width_m": 500.0, "axis_deg": 250.0},
        "aircraft": {"altitude_agl_m": 800 * FT, "ground_speed_kt": 130.0},
        "load": {"parachute": "cargo-example", "weight_kg": 900.0, "count": 4, "exit_interval_s": 0.5},
        "winds": [
            {"bottom_m": 0.0, "top_m": 100.0, "from_deg": 240.0, "speed_kt": 8.0},
            {"bottom_m": 100.0, "top_m": 300.0, "from_deg": 255.0, "speed_kt": 12.0},
        ],
    }


def simple(*, altitude_m: float = 600 * FT, rod_mps: float = 28.5 * FT, wind_kt: float = 12.0,
           from_deg: float = 270.0, density: bool = False, **load: float) -> dict[str, Any]:
    """One uniform wind layer, inline parachute constants (zero unless given), run-in 090."""
    return {
        "drop_zone": {"pi": list(PI), "elevation_m": 0.0, "length_m": 5000.0, "width_m": 5000.0, "axis_deg": 90.0},
        "aircraft": {"altitude_agl_m": altitude_m, "ground_speed_kt": 130.0, "run_in_deg": 90.0},
        "load": {"rod_sl_mps": rod_mps, **load},
        "winds": [{"bottom_m": 0.0, "top_m": altitude_m, "from_deg": from_deg, "speed_kt": wind_kt}],
        "options": {"density_correction": density},
    }


def build(data: dict[str, Any], **changes: Any) -> PlanRequest:
    """``data`` with ``section.field`` changes (``None`` removes the field), as a request."""
    doc = copy.deepcopy(data)
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = doc
        for key in path:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return from_mapping(doc)
