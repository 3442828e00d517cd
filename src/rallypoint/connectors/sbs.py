"""ADS-B as SBS-1/BaseStation text (the ``MSG`` lines of port 30003).

Each transmission type carries part of an aircraft's state: MSG,1 the callsign, MSG,2 a surface
position with speed and track, MSG,3 an airborne position, MSG,4 speed, track and vertical rate,
MSG,5-7 altitude. The decoder keeps the latest of each per ICAO address (at most ``max_aircraft``
aircraft, least recently heard dropped first) and emits an observation on every position, carrying
the rest. The date/time fields are the receiver's local time without a zone, so they are not used:
``source_time`` is None.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from rallypoint.connectors.base import Rejects
from rallypoint.connectors.decoding import (
    DEFAULT_MAX_LINE,
    FOOT_M,
    KNOT_MPS,
    BoundedMap,
    LineSplitter,
    number,
    position_problem,
)
from rallypoint.model.track import Domain, Identity, IdentityKind, Observation

_FIELDS = 22
_HEX = frozenset("0123456789abcdef")
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
        if len(icao) != 6 or not _HEX.issuperset(icao):
            # "~" addresses are non-ICAO (TIS-B, anonymous): no identity to key state on.
            self.rejects.add("unsupported" if icao.startswith("~") else "malformed")
            return None
        kind = fields[1]
        if kind not in {"1", "2", "3", "4", "5", "6", "7", "8"}:
            self.rejects.add("malformed")
            return None
        state = self._aircraft.get(icao) or AircraftState()
        state, bad = _merge(state, kind, fields)
        if bad:
            self.rejects.add("malformed")
            return None
        self._aircraft.put(icao, state)
        if kind not in {"2", "3"}:
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
        return Observation(
            source=self.source,
            received_at=received_at,
            source_time=None,
            lat=lat,
            lon=lon,
            domain=Domain.AIR,
            identity=Identity(kind=IdentityKind.ICAO, value=icao),
            name=state.callsign,
            alt_m=state.altitude_ft * FOOT_M if state.altitude_ft is not None else None,
            course_deg=state.track_deg,
            speed_mps=state.speed_kt * KNOT_MPS if state.speed_kt is not None else None,
            climb_mps=state.vrate_fpm * _FPM_MPS if state.vrate_fpm is not None else None,
            quality="ground" if state.on_ground else None,
        )


def _merge(state: AircraftState, kind: str, fields: list[str]) -> tuple[AircraftState, bool]:
    """``state`` with what this line adds; ``True`` second when a present field is not a number."""
    changes: dict[str, object] = {}
    for index, name, kinds in _NUMERIC:
        text = fields[index].strip()
        if not text or kind not in kinds:
            continue
        value = number(text)
        if value is None:
            return state, True
        changes[name] = value % 360.0 if name == "track_deg" else value
    if kind == "1":
        callsign = fields[10].strip()
        if callsign:
            changes["callsign"] = callsign
    ground = fields[21].strip()
    if ground:
        changes["on_ground"] = ground not in {"0", ""}  # BaseStation writes -1 for true
    return (msgspec.structs.replace(state, **changes) if changes else state), False


# (field index, state attribute, message kinds that carry it)
_NUMERIC = (
    (11, "altitude_ft", frozenset("3567")),  # MSG,2 (surface) has no pressure altitude
    (12, "speed_kt", frozenset("24")),
    (13, "track_deg", frozenset("24")),
    (16, "vrate_fpm", frozenset("4")),
)
