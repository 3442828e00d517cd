"""Raw Mode-S/ADS-B frames as hex lines (``*8D...;`` as dump1090 ``--raw`` serves on port 30002,
``@``-prefixed with a 12-digit receiver timestamp, or plain hex), decoded with ``pyModeS``.

Only ADS-B extended squitters (DF17, DF18) carry what a track needs; every frame's CRC is checked.
Per ICAO address the decoder keeps (bounded) the callsign and emitter category (type codes 1-4),
ground velocity and vertical rate (type code 19), NACp (type codes 29 and 31) and the CPR frames:
an airborne position (type codes 9-18, 20-22) is first resolved from an even/odd pair received
within ``pair_window_s`` (global decode), then each later frame locally against the last position
while that is younger than ``local_window_s``. Surface positions (type codes 5-8) need a nearby
reference: the receiver's location, given as ``receiver``; without one they are ``unsupported``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyModeS
from pyModeS.position import airborne_position_pair, airborne_position_with_ref, surface_position_with_ref

from rallypoint.connectors.adsb_quality import nacp_ce_m
from rallypoint.connectors.base import Rejects
from rallypoint.connectors.decoding import (
    DEFAULT_MAX_LINE,
    FOOT_M,
    KNOT_MPS,
    BoundedMap,
    LineSplitter,
    finite,
    position_problem,
)
from rallypoint.model.track import Domain, Identity, IdentityKind, Observation

_HEX = frozenset(b"0123456789abcdefABCDEF")
_FPM_MPS = FOOT_M / 60.0
_SQUITTERS = frozenset({17, 18})
# Emitter category sets by identification type code (DO-260B): 4 -> A, 3 -> B, 2 -> C, 1 -> D.
_CATEGORY_SET = {4: "A", 3: "B", 2: "C", 1: "D"}
_LIBRARY_ERRORS = (pyModeS.DecodeError, ValueError, TypeError, KeyError, IndexError, ZeroDivisionError)


class _Aircraft:
    """Decoder-private state of one ICAO address (mutable; never leaves this module)."""

    __slots__ = ("callsign", "category", "even", "last", "nacp", "odd", "speed_kt", "track", "vrate_fpm")

    def __init__(self) -> None:
        self.callsign: str | None = None
        self.category: str | None = None
        self.speed_kt: float | None = None
        self.track: float | None = None
        self.vrate_fpm: float | None = None
        self.nacp: int | None = None
        # (time, cpr_lat, cpr_lon) of the latest even and odd airborne frames
        self.even: tuple[float, int, int] | None = None
        self.odd: tuple[float, int, int] | None = None
        # (time, lat, lon) of the latest resolved airborne position
        self.last: tuple[float, float, float] | None = None


class ModesDecoder:
    """A stream of raw hex frames in, aircraft observations out."""

    def __init__(
        self,
        source: str,
        *,
        receiver: tuple[float, float] | None = None,
        pair_window_s: float = 10.0,
        local_window_s: float = 30.0,
        max_aircraft: int = 10_000,
        max_line: int = DEFAULT_MAX_LINE,
    ) -> None:
        self.source = source
        self.rejects = Rejects()
        self._lines = LineSplitter(self.rejects, max_line)
        self._aircraft: BoundedMap[str, _Aircraft] = BoundedMap(max_aircraft)
        self._receiver = receiver
        self._pair_window = pair_window_s
        self._local_window = local_window_s

    def receive(self, data: bytes, received_at: datetime) -> list[Observation]:
        """Decode the frames ``data`` completes."""
        out: list[Observation] = []
        for line in self._lines.feed(data):
            obs = self.decode_line(line, received_at)
            if obs is not None:
                out.append(obs)
        return out

    def decode_line(self, line: bytes, received_at: datetime) -> Observation | None:
        """One frame; an observation when it resolves a position."""
        frame = _frame_hex(line)
        if frame is None:
            self.rejects.add("malformed")
            return None
        try:
            msg = pyModeS.decode(frame)
        except _LIBRARY_ERRORS:
            self.rejects.add("malformed")
            return None
        if msg.get("df") not in _SQUITTERS:
            self.rejects.add("unsupported")  # surveillance replies: no position, no velocity
            return None
        if msg.get("crc_valid") is not True:
            self.rejects.add("bad_checksum")
            return None
        icao = str(msg.get("icao", "")).lower()
        if len(icao) != 6:
            self.rejects.add("malformed")
            return None
        try:
            return self._squitter(icao, msg, received_at)
        except _LIBRARY_ERRORS:
            self.rejects.add("malformed")
            return None

    def _squitter(self, icao: str, msg: dict[str, Any], received_at: datetime) -> Observation | None:
        tc = msg.get("typecode")
        if not isinstance(tc, int):
            self.rejects.add("unsupported")
            return None
        state = self._aircraft.get(icao)
        if state is None:
            state = _Aircraft()
            self._aircraft.put(icao, state)
        now = received_at.timestamp()
        if 1 <= tc <= 4:
            callsign = str(msg.get("callsign") or "").strip("_ #")
            state.callsign = callsign or state.callsign
            category = msg.get("category")
            if isinstance(category, int) and category > 0:
                state.category = f"{_CATEGORY_SET[tc]}{category}"
            return None
        if tc == 19:
            if "groundspeed" in msg:  # subtypes 1-2; 3-4 give air speed and heading, not ground track
                state.speed_kt = finite(msg.get("groundspeed"))
                state.track = finite(msg.get("track"))
            state.vrate_fpm = finite(msg.get("vertical_rate"))
            return None
        if tc in (29, 31):
            nacp = msg.get("nac_p")
            state.nacp = nacp if isinstance(nacp, int) else state.nacp
            return None
        if 9 <= tc <= 18 or 20 <= tc <= 22:
            position = self._airborne(state, msg, now)
            if position is None:
                return None
            return self._observation(icao, state, position, finite(msg.get("altitude")), received_at)
        if 5 <= tc <= 8:
            return self._surface(icao, state, msg, received_at)
        self.rejects.add("unsupported")
        return None

    def _airborne(self, state: _Aircraft, msg: dict[str, Any], now: float) -> tuple[float, float] | None:
        fmt, cpr_lat, cpr_lon = msg.get("cpr_format"), msg.get("cpr_lat"), msg.get("cpr_lon")
        if fmt not in (0, 1) or not isinstance(cpr_lat, int) or not isinstance(cpr_lon, int):
            self.rejects.add("malformed")
            return None
        frame = (now, cpr_lat, cpr_lon)
        if fmt == 0:
            state.even = frame
        else:
            state.odd = frame
        last = state.last
        if last is not None and 0 <= now - last[0] <= self._local_window:
            lat, lon = airborne_position_with_ref(fmt, cpr_lat, cpr_lon, last[1], last[2])
        else:
            even, odd = state.even, state.odd
            if even is None or odd is None or abs(even[0] - odd[0]) > self._pair_window:
                return None  # waiting for the other half of a pair
            pair = airborne_position_pair(even[1], even[2], odd[1], odd[2], even_is_newer=fmt == 0)
            if pair is None:
                self.rejects.add("cpr_zone_mismatch")
                return None
            lat, lon = pair
        if lon > 180.0:
            lon -= 360.0
        state.last = (now, lat, lon)
        return lat, lon

    def _surface(self, icao: str, state: _Aircraft, msg: dict[str, Any], received_at: datetime) -> Observation | None:
        fmt, cpr_lat, cpr_lon = msg.get("cpr_format"), msg.get("cpr_lat"), msg.get("cpr_lon")
        if self._receiver is None:
            self.rejects.add("unsupported")
            return None
        if fmt not in (0, 1) or not isinstance(cpr_lat, int) or not isinstance(cpr_lon, int):
            self.rejects.add("malformed")
            return None
        lat, lon = surface_position_with_ref(fmt, cpr_lat, cpr_lon, *self._receiver)
        speed = finite(msg.get("groundspeed"))
        if speed is not None:
            state.speed_kt = speed
        track = finite(msg.get("track")) if msg.get("track_status") else None
        if track is not None:
            state.track = track
        return self._observation(icao, state, (lat, lon), None, received_at)

    def _observation(
        self,
        icao: str,
        state: _Aircraft,
        position: tuple[float, float],
        altitude_ft: float | None,
        received_at: datetime,
    ) -> Observation | None:
        lat, lon = position
        problem = position_problem(lat, lon)
        if problem is not None:
            self.rejects.add(problem)
            return None
        ce_m = nacp_ce_m(state.nacp)
        return Observation(
            source=self.source,
            received_at=received_at,
            source_time=None,
            lat=lat,
            lon=lon,
            domain=Domain.AIR,
            identity=Identity(kind=IdentityKind.ICAO, value=icao),
            name=state.callsign,
            alt_m=altitude_ft * FOOT_M if altitude_ft is not None else None,
            course_deg=state.track % 360.0 if state.track is not None else None,
            speed_mps=state.speed_kt * KNOT_MPS if state.speed_kt is not None else None,
            climb_mps=state.vrate_fpm * _FPM_MPS if state.vrate_fpm is not None else None,
            ce_m=ce_m,
            quality=f"nacp={state.nacp}" if ce_m is not None else None,
            category=state.category,
        )


def _frame_hex(line: bytes) -> str | None:
    """The hex digits of a frame line, or None when the line is not one."""
    if line.startswith(b"*") or line.startswith(b"@"):
        if not line.endswith(b";"):
            return None
        line = line[13:-1] if line.startswith(b"@") else line[1:-1]
    elif line.endswith(b";"):
        line = line[:-1]
    if len(line) not in (14, 28) or not _HEX.issuperset(line):
        return None
    return line.decode("ascii").upper()
