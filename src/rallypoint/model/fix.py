"""Whether a reported position is a real fix.

A TAK device that has no GPS fix reports ``lat="0" lon="0"``, usually with ``ce="9999999"``. The rule
is the position alone, exactly 0,0: nothing real stands at 0°N 0°E (open sea in the Gulf of Guinea),
while ``ce="9999999"`` by itself only means "accuracy unknown" and also marks good positions (markers
placed by hand, devices that do not estimate their error). Such events are still routed unchanged
(receivers need the sender's contact and endpoint), but no map, export or area query places them at 0,0.
"""

from __future__ import annotations


def has_fix(lat: float, lon: float) -> bool:
    """False for a no-fix report (exactly 0,0); True for any other position."""
    return lat != 0.0 or lon != 0.0
