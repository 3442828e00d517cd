"""NMEA 0183 GPS receivers: ``$GPRMC``/``$GNRMC`` and ``$GPGGA``/``$GNGGA`` sentences via ``pynmea2``.

The receiver is one object, named after the feed (identity kind ``gps``). Every sentence must carry
a valid checksum. GGA gives altitude and HDOP, RMC course and speed; each good sentence becomes an
observation carrying the latest of both. Horizontal accuracy is HDOP x UERE (user equivalent range
error, 1-sigma, default 5 m for a civil single-frequency receiver).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pynmea2

from rallypoint.connectors.base import Rejects
from rallypoint.connectors.decoding import (
    DEFAULT_MAX_LINE,
    KNOT_MPS,
    LineSplitter,
    finite,
    number,
    position_problem,
    time_of_day_near,
)
from rallypoint.model.track import Domain, Identity, IdentityKind, Observation

DEFAULT_UERE_M = 5.0
_POSITION_SENTENCES = frozenset({"RMC", "GGA"})
# What pynmea2 raises on malformed fields besides its own ParseError (a ValueError).
_LIBRARY_ERRORS = (ValueError, TypeError, AttributeError, IndexError, KeyError, OverflowError)


class NmeaDecoder:
    """A stream of NMEA sentences from one GPS receiver in, observations of that receiver out."""

    def __init__(self, source: str, *, uere_m: float = DEFAULT_UERE_M, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.source = source
        self.rejects = Rejects()
        self._lines = LineSplitter(self.rejects, max_line)
        self._identity = Identity(kind=IdentityKind.GPS, value=source)
        self._uere_m = uere_m
        self._hdop: float | None = None
        self._alt_m: float | None = None
        self._course: float | None = None
        self._speed: float | None = None

    def receive(self, data: bytes, received_at: datetime) -> list[Observation]:
        """Decode the sentences ``data`` completes."""
        out: list[Observation] = []
        for line in self._lines.feed(data):
            obs = self.decode_line(line, received_at)
            if obs is not None:
                out.append(obs)
        return out

    def decode_line(self, line: bytes, received_at: datetime) -> Observation | None:
        """One sentence; None when it carries no position (counted in ``rejects`` when it is bad)."""
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            self.rejects.add("malformed")
            return None
        if not text.startswith("$") or len(text) < 7:
            self.rejects.add("malformed")
            return None
        if text[3:6] not in _POSITION_SENTENCES:
            self.rejects.add("unsupported")
            return None
        try:
            msg = pynmea2.parse(text, check=True)
        except pynmea2.ChecksumError:
            self.rejects.add("bad_checksum")
            return None
        except _LIBRARY_ERRORS:
            self.rejects.add("malformed")
            return None
        try:
            if isinstance(msg, pynmea2.types.talker.RMC):
                return self._rmc(msg, received_at)
            if isinstance(msg, pynmea2.types.talker.GGA):
                return self._gga(msg, received_at)
        except _LIBRARY_ERRORS:
            self.rejects.add("malformed")
            return None
        self.rejects.add("unsupported")
        return None

    def _rmc(self, msg: pynmea2.types.talker.RMC, received_at: datetime) -> Observation | None:
        if msg.status != "A":  # "V": the receiver says the fix is void
            self.rejects.add("no_fix")
            return None
        speed_kn = _num(msg.spd_over_grnd)
        course = _num(msg.true_course)
        self._speed = speed_kn * KNOT_MPS if speed_kn is not None else None
        self._course = course % 360.0 if course is not None else None
        when = None
        if msg.datestamp is not None and msg.timestamp is not None:
            when = datetime.combine(msg.datestamp, msg.timestamp).replace(tzinfo=UTC)
        return self._observation(msg.latitude, msg.longitude, when, received_at)

    def _gga(self, msg: pynmea2.types.talker.GGA, received_at: datetime) -> Observation | None:
        if not msg.gps_qual:  # fix quality 0: no fix
            self.rejects.add("no_fix")
            return None
        self._hdop = _num(msg.horizontal_dil)
        self._alt_m = _num(msg.altitude)
        when = None
        if msg.timestamp is not None:
            t = msg.timestamp
            when = time_of_day_near(received_at.astimezone(UTC), t.hour, t.minute, t.second + t.microsecond / 1e6)
        return self._observation(msg.latitude, msg.longitude, when, received_at)

    def _observation(self, lat: float, lon: float, when: datetime | None, received_at: datetime) -> Observation | None:
        problem = position_problem(lat, lon)
        if problem is not None:
            self.rejects.add(problem)
            return None
        hdop = self._hdop
        return Observation(
            source=self.source,
            received_at=received_at,
            source_time=when,
            lat=lat,
            lon=lon,
            domain=Domain.GROUND,
            identity=self._identity,
            name=self.source,
            alt_m=self._alt_m,
            course_deg=self._course,
            speed_mps=self._speed,
            ce_m=hdop * self._uere_m if hdop is not None else None,
            quality=f"hdop={hdop:g}" if hdop is not None else None,
        )


def _num(value: object) -> float | None:
    """pynmea2 gives numbers as float or str depending on the field; either, or None."""
    if isinstance(value, str):
        return number(value)
    return finite(value)
