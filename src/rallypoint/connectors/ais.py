"""AIS: NMEA ``!AIVDM``/``!AIVDO`` sentences via ``pyais``.

Position reports (types 1, 2, 3, 18, 19, 27, and 9 for search-and-rescue aircraft) become
observations of the MMSI; static and voyage data (type 5, type 24 parts A and B, and the static
half of type 19) is remembered per MMSI (bounded) and merged into the name and ship type of later
observations. Sentences of several
fragments are assembled in a bounded buffer: a group that does not complete within
``fragment_window`` sentences, is displaced by a newer one, or arrives out of order is dropped and
counted ``incomplete_fragment``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
from pyais import NMEAMessage
from pyais.exceptions import AISBaseException
from pyais.messages import (
    MessageType1,
    MessageType2,
    MessageType3,
    MessageType5,
    MessageType9,
    MessageType18,
    MessageType19,
    MessageType24PartA,
    MessageType24PartB,
    MessageType27,
)

from rallypoint.connectors.base import Rejects
from rallypoint.connectors.decoding import (
    DEFAULT_MAX_LINE,
    KNOT_MPS,
    BoundedMap,
    LineSplitter,
    finite,
    position_problem,
)
from rallypoint.model.track import Domain, Identity, IdentityKind, Observation

# Horizontal accuracy (1-sigma, metres) from the position accuracy flag: "high" is the standard's
# better than 10 m (DGNSS); "low" is a plain GNSS fix, taken as 100 m to stay on the safe side.
CE_HIGH_ACCURACY_M = 10.0
CE_LOW_ACCURACY_M = 100.0
# Type 27 (long-range) positions are rounded to 1/10 minute: about 185 m.
CE_LONG_RANGE_M = 185.0
_SPEED_UNAVAILABLE = 102.3  # knots, types 1-3, 18, 19
_COURSE_UNAVAILABLE = 360.0
_LR_SPEED_UNAVAILABLE = 63  # knots, type 27
_LR_COURSE_UNAVAILABLE = 511
_SAR_SPEED_UNAVAILABLE = 1023  # knots, type 9
_SAR_ALTITUDE_UNAVAILABLE = 4095  # metres, type 9
_CLOCK_SLACK_S = 5
_LIBRARY_ERRORS = (AISBaseException, ValueError, TypeError, IndexError, KeyError, OverflowError)

_Position = MessageType1 | MessageType2 | MessageType3 | MessageType18 | MessageType19


class VesselStatic(msgspec.Struct, frozen=True):
    """What static and voyage messages said about one MMSI."""

    name: str | None = None
    ship_type: int | None = None
    callsign: str | None = None


class _Pending:
    """The fragments received so far of one multi-sentence message."""

    __slots__ = ("count", "parts", "started")

    def __init__(self, count: int, started: int) -> None:
        self.count = count
        self.parts: list[NMEAMessage] = []
        self.started = started


class AisDecoder:
    """A stream of AIVDM/AIVDO sentences in, vessel observations out."""

    def __init__(
        self,
        source: str,
        *,
        max_vessels: int = 50_000,
        max_pending: int = 64,
        fragment_window: int = 50,
        max_line: int = DEFAULT_MAX_LINE,
    ) -> None:
        self.source = source
        self.rejects = Rejects()
        self._lines = LineSplitter(self.rejects, max_line)
        self._static: BoundedMap[int, VesselStatic] = BoundedMap(max_vessels)
        self._pending: dict[tuple[str, str, str], _Pending] = {}
        self._max_pending = max_pending
        self._window = fragment_window
        self._count = 0

    def vessel(self, mmsi: int) -> VesselStatic | None:
        """The static data remembered for ``mmsi``."""
        return self._static.get(mmsi)

    def receive(self, data: bytes, received_at: datetime) -> list[Observation]:
        """Decode the sentences ``data`` completes."""
        out: list[Observation] = []
        for line in self._lines.feed(data):
            obs = self.decode_line(line, received_at)
            if obs is not None:
                out.append(obs)
        return out

    def decode_line(self, line: bytes, received_at: datetime) -> Observation | None:
        """One sentence; an observation when it completes a position report."""
        self._count += 1
        if line.startswith(b"\\"):  # NMEA 4.10 tag block (receiver time, station): not used
            end = line.find(b"\\", 1)
            line = line[end + 1 :] if end > 0 else b""
        if not line.startswith(b"!"):
            self.rejects.add("malformed")
            return None
        try:
            sentence = NMEAMessage(line)
        except _LIBRARY_ERRORS:
            self.rejects.add("malformed")
            return None
        if not sentence.is_valid:
            self.rejects.add("bad_checksum")
            return None
        whole = self._assemble(sentence)
        if whole is None:
            return None
        try:
            payload = whole.decode()
        except _LIBRARY_ERRORS:
            self.rejects.add("malformed")
            return None
        try:
            return self._payload(payload, received_at)
        except _LIBRARY_ERRORS:
            self.rejects.add("malformed")
            return None

    def _assemble(self, sentence: NMEAMessage) -> NMEAMessage | None:
        count, number = sentence.frag_cnt, sentence.frag_num
        if count == 1:
            return sentence
        if not 1 <= number <= count <= 9:
            self.rejects.add("malformed")
            return None
        self._expire()
        key = (str(sentence.talker), str(sentence.channel), str(sentence.seq_id))
        pending = self._pending.get(key)
        if number == 1:
            if pending is not None:
                self.rejects.add("incomplete_fragment")
            if pending is None and len(self._pending) >= self._max_pending:
                oldest = min(self._pending, key=lambda k: self._pending[k].started)
                del self._pending[oldest]
                self.rejects.add("incomplete_fragment")
            pending = self._pending[key] = _Pending(count, self._count)
        elif pending is None or pending.count != count or len(pending.parts) != number - 1:
            # A later part without its beginning (or out of order): neither can be used.
            if pending is not None:
                del self._pending[key]
            self.rejects.add("incomplete_fragment")
            return None
        pending.parts.append(sentence)
        if len(pending.parts) < count:
            return None
        del self._pending[key]
        try:
            return NMEAMessage.assemble_from_iterable(pending.parts)
        except _LIBRARY_ERRORS:
            self.rejects.add("malformed")
            return None

    def _expire(self) -> None:
        """Drop groups that did not complete within the window of sentences."""
        horizon = self._count - self._window
        stale = [k for k, p in self._pending.items() if p.started < horizon]
        for key in stale:
            del self._pending[key]
        if stale:
            self.rejects.add("incomplete_fragment", len(stale))

    def _payload(self, msg: object, received_at: datetime) -> Observation | None:
        match msg:
            case MessageType19():
                self._remember(msg.mmsi, name=msg.shipname, ship_type=int(msg.ship_type))
                return self._position(msg, received_at)
            case MessageType1() | MessageType2() | MessageType3() | MessageType18():
                return self._position(msg, received_at)
            case MessageType27():
                return self._long_range(msg, received_at)
            case MessageType9():
                return self._sar_aircraft(msg, received_at)
            case MessageType5():
                self._remember(msg.mmsi, name=msg.shipname, ship_type=int(msg.ship_type), callsign=msg.callsign)
                return None
            case MessageType24PartA():
                self._remember(msg.mmsi, name=msg.shipname)
                return None
            case MessageType24PartB():
                self._remember(msg.mmsi, ship_type=int(msg.ship_type), callsign=msg.callsign)
                return None
            case _:
                self.rejects.add("unsupported")
                return None

    def _remember(
        self, mmsi: int, *, name: str | None = None, ship_type: int | None = None, callsign: str | None = None
    ) -> None:
        old = self._static.get(mmsi) or VesselStatic()
        self._static.put(
            mmsi,
            VesselStatic(
                name=_text(name) or old.name,
                ship_type=ship_type if ship_type else old.ship_type,
                callsign=_text(callsign) or old.callsign,
            ),
        )

    def _position(self, msg: _Position, received_at: datetime) -> Observation | None:
        speed = finite(msg.speed)
        course = finite(msg.course)
        return self._observation(
            mmsi=int(msg.mmsi),
            lat=float(msg.lat),
            lon=float(msg.lon),
            speed_kn=None if speed is None or speed >= _SPEED_UNAVAILABLE else speed,
            course=None if course is None or course >= _COURSE_UNAVAILABLE else course,
            ce_m=CE_HIGH_ACCURACY_M if msg.accuracy else CE_LOW_ACCURACY_M,
            quality="accuracy=high" if msg.accuracy else "accuracy=low",
            source_time=_utc_second(received_at, int(msg.second)),
            received_at=received_at,
        )

    def _long_range(self, msg: MessageType27, received_at: datetime) -> Observation | None:
        speed, course = int(msg.speed), int(msg.course)
        return self._observation(
            mmsi=int(msg.mmsi),
            lat=float(msg.lat),
            lon=float(msg.lon),
            speed_kn=None if speed >= _LR_SPEED_UNAVAILABLE else float(speed),
            course=None if course >= _LR_COURSE_UNAVAILABLE or course >= 360 else float(course),
            ce_m=CE_LONG_RANGE_M,
            quality="long_range",
            source_time=None,
            received_at=received_at,
        )

    def _sar_aircraft(self, msg: MessageType9, received_at: datetime) -> Observation | None:
        speed, course, alt = finite(msg.speed), finite(msg.course), int(msg.alt)
        return self._observation(
            mmsi=int(msg.mmsi),
            lat=float(msg.lat),
            lon=float(msg.lon),
            speed_kn=None if speed is None or speed >= _SAR_SPEED_UNAVAILABLE else speed,
            course=None if course is None or course >= _COURSE_UNAVAILABLE else course,
            ce_m=CE_HIGH_ACCURACY_M if msg.accuracy else CE_LOW_ACCURACY_M,
            quality="accuracy=high" if msg.accuracy else "accuracy=low",
            source_time=_utc_second(received_at, int(msg.second)),
            received_at=received_at,
            domain=Domain.AIR,
            alt_m=float(alt) if 0 <= alt < _SAR_ALTITUDE_UNAVAILABLE else None,
        )

    def _observation(
        self,
        *,
        mmsi: int,
        lat: float,
        lon: float,
        speed_kn: float | None,
        course: float | None,
        ce_m: float,
        quality: str,
        source_time: datetime | None,
        received_at: datetime,
        domain: Domain = Domain.SEA,
        alt_m: float | None = None,
    ) -> Observation | None:
        # 91/181 is AIS for "not available"; the check also refuses NaN, out of range and 0,0.
        problem = position_problem(lat, lon)
        if problem is not None:
            self.rejects.add(problem)
            return None
        static = self._static.get(mmsi)
        return Observation(
            source=self.source,
            received_at=received_at,
            source_time=source_time,
            lat=lat,
            lon=lon,
            domain=domain,
            identity=Identity(kind=IdentityKind.MMSI, value=f"{mmsi:09d}"),
            name=static.name if static else None,
            alt_m=alt_m,
            course_deg=course,
            speed_mps=speed_kn * KNOT_MPS if speed_kn is not None else None,
            ce_m=ce_m,
            quality=quality,
            category=str(static.ship_type) if static and static.ship_type else None,
        )


def _text(value: str | None) -> str | None:
    """AIS six-bit text without its '@' padding and trailing blanks; None when nothing is left."""
    if not value:
        return None
    cleaned = value.replace("@", " ").strip()
    return cleaned or None


def _utc_second(received_at: datetime, second: int) -> datetime | None:
    """The report's UTC second (0-59) placed in the minute just before the receive time; None when 60-63.

    A report cannot be younger than its reception: a second more than a few seconds ahead of the
    receive time (allowing for receiver clock error) belongs to the previous minute.
    """
    if not 0 <= second <= 59:
        return None
    candidate = received_at.replace(second=second, microsecond=0)
    delta = (candidate - received_at).total_seconds()
    if delta > _CLOCK_SLACK_S:
        candidate -= timedelta(minutes=1)
    elif delta < _CLOCK_SLACK_S - 60:
        candidate += timedelta(minutes=1)
    return candidate
