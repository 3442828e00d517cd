"""Bounding boxes typed by people: ``west,south,east,north`` checked once, with errors they can act on.

The CLI (``--bbox``, ``--antimeridian``) and the native API (``bbox=``, ``antimeridian=true``) both
parse through here, so the same box is accepted or refused the same way everywhere.
"""

from __future__ import annotations

import math

from rallypoint.storage.base import BBox


class BBoxError(ValueError):
    """A bounding box the user must correct; the message says what is wrong and how to fix it."""


def bbox_from_text(text: str, *, antimeridian: bool, crossing_hint: str) -> BBox:
    """``west,south,east,north`` degrees as a ``BBox``, or ``BBoxError`` in words a user can act on.

    West greater than east is almost always a typo (the box would run the long way round the
    globe), so it is accepted only when the caller says the box crosses the antimeridian
    (``antimeridian``; ``crossing_hint`` names how the user says so, e.g. ``--antimeridian``).
    """
    parts = text.split(",")
    try:
        values = [float(part) for part in parts]
    except ValueError:
        values = []
    if len(values) != 4:
        raise BBoxError(f"bbox must be four numbers west,south,east,north (minlon,minlat,maxlon,maxlat), got {text!r}")
    if not all(math.isfinite(v) for v in values):
        raise BBoxError("bbox coordinates must be finite numbers")
    west, south, east, north = values
    for name, value in (("west", west), ("east", east)):
        if not -180 <= value <= 180:
            raise BBoxError(f"bbox {name} longitude must be within -180..180, got {value:g}")
    for name, value in (("south", south), ("north", north)):
        if not -90 <= value <= 90:
            raise BBoxError(f"bbox {name} latitude must be within -90..90, got {value:g}")
    if south > north:
        raise BBoxError(f"bbox south ({south:g}) must not be greater than north ({north:g}); swap them")
    if west > east and not antimeridian:
        raise BBoxError(
            f"bbox west ({west:g}) is greater than east ({east:g}): that box would run the long way round "
            f"the globe across the 180th meridian. Swap them ({east:g},{south:g},{west:g},{north:g}), or add "
            f"{crossing_hint} if the box really crosses the antimeridian"
        )
    if antimeridian and west <= east:
        raise BBoxError(
            f"{crossing_hint} needs a box that crosses the 180th meridian, with west greater than east "
            f"(e.g. 170,-20,-170,-10); got west {west:g}, east {east:g}"
        )
    return (west, south, east, north)
