"""Minimum DZ size for a drop (C-130 criteria as summarised publicly from AFI 13-217).

Containers: 400 yd wide; length by containers in one row (1: 400, 2: 450, 3: 500, 4: 550, 5-8: 700 yd);
above 600 ft AGL, +40 yd to width and length per 100 ft. Platforms (heavy equipment): 600 x 1,000 yd,
+400 yd length per extra platform; above 1,100 ft, +30 yd to both per 100 ft. Each started 100 ft
counts (the larger zone is the safe side). Bundles have no published rule here: they are sized as
containers, which is the conservative reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rallypoint.services.airdrop.ballistics import FT

YD = 0.9144
_CONTAINER_LENGTH_YD = {1: 400, 2: 450, 3: 500, 4: 550}
MAX_CONTAINERS_IN_ROW = 8


@dataclass(frozen=True)
class Required:
    """Minimum length (along the run-in) and width in metres, and the rule applied."""

    length_m: float
    width_m: float
    rule: str
    covered: bool  # False when the load count lies outside the published table


def _steps_above(altitude_ft: float, base_ft: float) -> int:
    # A hair of tolerance so 800 ft given in metres (243.84) is not counted as 801 ft.
    return max(0, math.ceil((altitude_ft - base_ft) / 100.0 - 1e-6))


def required_size(kind: str, count: int, altitude_agl_m: float) -> Required:
    """The sizing rule for ``count`` loads of ``kind`` dropped from ``altitude_agl_m``."""
    altitude_ft = altitude_agl_m / FT
    if kind == "platform":
        extra = 30 * _steps_above(altitude_ft, 1100)
        length = 1000 + 400 * (count - 1) + extra
        width = 600 + extra
        return Required(length * YD, width * YD, "heavy equipment (platforms)", True)
    extra = 40 * _steps_above(altitude_ft, 600)
    covered = count <= MAX_CONTAINERS_IN_ROW
    length = _CONTAINER_LENGTH_YD.get(count, 700) + extra
    what = "container delivery" if kind == "container" else "container delivery rule applied to bundles"
    return Required(length * YD, (400 + extra) * YD, what, covered)
