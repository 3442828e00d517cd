"""ADS-B as SBS-1/BaseStation text (the ``MSG`` lines of port 30003).

Each transmission type carries part of an aircraft's state: MSG,1 the callsign, MSG,2 a surface
position with speed and track, MSG,3 an airborne position, MSG,4 speed, track and vertical rate,
MSG,5-7 altitude. The decoder keeps the latest of each per ICAO address (at most ``max_aircraft``
aircraft, least recently heard dropped first) and emits an observation on every position, carrying
the rest. The date/time fields are the receiver's local time without a zone, so they are not used:
``source_time`` is None.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

import msgspec

from rallypoint.connectors.base import Rejects
from rallypoint.connectors.decoding import (
    DEFAULT_MAX_LINE,
    FOOT_M,
    KNOT_MPS,
    BoundedMap,
    LineSplitter,
    position_problem,
)
from rallypoint.model.track import Domain, Identity, IdentityKind, Observation

_FIELDS = 22
_ICAO = re.compile("[0-9a-f]{6}")
_FPM_MPS = FOOT_M / 60.0


class AircraftState(msgspec.Struct, frozen=True):
    """What the MSG lines said so far about one aircraft (raw units of the format)."""

    callsign: str | None = None
    altitude_ft: float | None = None
    speed_kt: float | None = None
    track_deg: float | None = None
    vrate_fpm: float | None = None
    on_ground: bool = False


class SbsDecoder:
    """A stream of BaseStation lines in, aircraft observations out."""

    def __init__(self, source: str, *, max_aircraft: int = 10_000, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.source = source
        self.rejects = Rejects()
        self._lines = LineSplitter(self.rejects, max_line)
        self._aircraft: BoundedMap[str, AircraftState] = BoundedMap(max_aircraft)

    def aircraft(self, icao: str) -> AircraftState | None:
        """The state kept for ``icao`` (lower-case hex)."""
        return self._aircraft.get(icao)

    def receive(self, data: bytes, received_at: datetime) -> list[Observation]:
        """Decode the lines ``data`` completes."""
        out: list[Observation] = []
        for line in self._lines.feed(data):
            obs = self.decode_line(line, received_at)
            if obs is not None:
                out.append(obs)
        return out

    def decode_line(self, line: bytes, received_at: datetime) -> Observation | None:
        """One line; an observation when it is a position."""
        try:
            fields = line.decode("ascii").split(",")
        except UnicodeDecodeError:
            self.rejects.add("malformed")
            return None
        if fields[0] != "MSG":
            # SEL, ID, AIR, STA and CLK lines describe the receiver's own bookkeeping.
            self.rejects.add("unsupported" if fields[0] in {"SEL", "ID", "AIR", "STA", "CLK"} else "malformed")
            return None
        if len(fields) < _FIELDS:
            self.rejects.add("malformed")
            return None
        icao = fields[4].strip().lower()
        if _ICAO.fullmatch(icao) is None:
            # "~" addresses are non-ICAO (TIS-B, anonymous): no identity to key state on.
            self.rejects.add("unsupported" if icao.startswith("~") else "malformed")
            return None
        kind = fields[1]
        numeric = _NUMERIC_BY_KIND.get(kind)
        if numeric is None:
            self.rejects.add("malformed")
            return None
        known = self._aircraft.get(icao)
        state = known or AircraftState()
        merged = _merge(state, kind, fields, numeric)
        if merged is None:
            self.rejects.add("malformed")
            return None
        if merged is not state or known is None:
            # An unchanged state is already the most recently used entry (``get`` moved it).
            self._aircraft.put(icao, merged)
        if kind != "3" and kind != "2":
            return None
        try:
            lat, lon = float(fields[14]), float(fields[15])
        except ValueError:
            self.rejects.add("malformed")
            return None
        problem = position_problem(lat, lon)
        if problem is not None:
            self.rejects.add(problem)
            return None
        alt, speed, vrate = merged.altitude_ft, merged.speed_kt, merged.vrate_fpm
        return Observation(
            source=self.source,
            received_at=received_at,
            source_time=None,
            lat=lat,
            lon=lon,
            domain=Domain.AIR,
            identity=Identity(kind=IdentityKind.ICAO, value=icao),
            name=merged.callsign,
            alt_m=alt * FOOT_M if alt is not None else None,
            course_deg=merged.track_deg,
            speed_mps=speed * KNOT_MPS if speed is not None else None,
            climb_mps=vrate * _FPM_MPS if vrate is not None else None,
            quality="ground" if merged.on_ground else None,
        )


def _merge(
    state: AircraftState, kind: str, fields: list[str], numeric: tuple[tuple[int, str], ...]
) -> AircraftState | None:
    """``state`` with what this line adds (``state`` itself when it adds nothing new); None when a
    present field is not a finite number."""
    changes: dict[str, object] = {}
    for index, name in numeric:
        text = fields[index].strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            return None
        if not math.isfinite(value):
            return None
        if name == "track_deg":
            value %= 360.0
        if getattr(state, name) != value:
            changes[name] = value
    if kind == "1":
        callsign = fields[10].strip()
        if callsign and callsign != state.callsign:
            changes["callsign"] = callsign
    ground = fields[21].strip()
    if ground:
        on_ground = ground != "0"  # BaseStation writes -1 for true
        if on_ground != state.on_ground:
            changes["on_ground"] = on_ground
    return msgspec.structs.replace(state, **changes) if changes else state


# (field index, state attribute, message kinds that carry it)
_NUMERIC = (
    (11, "altitude_ft", frozenset("3567")),  # MSG,2 (surface) has no pressure altitude
    (12, "speed_kt", frozenset("24")),
    (13, "track_deg", frozenset("24")),
    (16, "vrate_fpm", frozenset("4")),
)
# The numeric fields each message kind carries; a kind not listed here is malformed.
_NUMERIC_BY_KIND = {kind: tuple((i, name) for i, name, kinds in _NUMERIC if kind in kinds) for kind in "12345678"}
