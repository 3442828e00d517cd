"""ADS-B quality indicators shared by the aircraft decoders: NACp to a 1-sigma horizontal error."""

from __future__ import annotations

import math

# DO-260B Navigation Accuracy Category for position: the 95 % horizontal accuracy bound (EPU) in
# metres for NACp 1..11 (0 means unknown).
_NACP_EPU_M = {
    1: 18520.0,  # < 10 NM
    2: 7408.0,  # < 4 NM
    3: 3704.0,  # < 2 NM
    4: 1852.0,  # < 1 NM
    5: 926.0,  # < 0.5 NM
    6: 555.6,  # < 0.3 NM
    7: 185.2,  # < 0.1 NM
    8: 92.6,  # < 0.05 NM
    9: 30.0,
    10: 10.0,
    11: 3.0,
}
# A circular 2-D normal error holds 95 % of its mass within 2.448 sigma (sqrt(-2 ln 0.05)).
EPU_95_TO_SIGMA = 1.0 / math.sqrt(-2.0 * math.log(0.05))


def nacp_ce_m(nacp: object) -> float | None:
    """The 1-sigma horizontal error (metres) a NACp value states, or None when it states none."""
    if isinstance(nacp, bool) or not isinstance(nacp, int):
        return None
    epu = _NACP_EPU_M.get(nacp)
    return epu * EPU_95_TO_SIGMA if epu is not None else None
