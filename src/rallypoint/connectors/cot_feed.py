"""CoT from another system: a TCP stream of XML events, or UDP/multicast datagrams (XML or the
``bf 01 bf`` mesh format), framed and parsed by ``protocol/`` with the same hardening as client
sessions (size and depth caps, no DTD, no entities).

Each atom event (``a-...``) with a position becomes one observation; ``category`` is the CoT type.
Identity: the event's uid (kind ``tak``), except for events whose ``how`` is ``m-r``: those are
radar-like tracks of another system, whose uids are that system's track numbers and say nothing
about which object it is, so they carry no identity and fusion associates them by position.
Anything else (chat, markers, control) is ``unsupported``; an event already stale on arrival is
``stale``; problems the protocol layer finds are counted under its own reasons (``garbage``,
``xml_malformed``, ``doctype``, ``entity``, ``event_too_large``...). Where a client session would
be closed (``garbage_flood``: more than one maximum-size event of junk), the feed's framing starts
over with the next bytes, losing what it held at that moment.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rallypoint.connectors.base import Rejects
from rallypoint.connectors.decoding import position_problem
from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import UNKNOWN_ERROR, CotEvent
from rallypoint.model.cot_type import is_atom
from rallypoint.model.track import Domain, Identity, IdentityKind, Observation
from rallypoint.protocol.connection import NEED_DATA, ConnectionClosed, CotConnection, EventReceived, EventRejected
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.wire import decode_datagram
from rallypoint.protocol.xml_codec import XmlDecoder

RADAR_HOW = "m-r"
# Bytes handed to the framer between drains: well below its buffer cap whatever one read brings.
_FEED_SLICE = 64 * 1024
_DOMAINS = {"A": Domain.AIR, "S": Domain.SEA, "U": Domain.SEA, "G": Domain.GROUND}


def observation_of(event: CotEvent, source: str, received_at: datetime) -> tuple[Observation | None, str | None]:
    """The observation an event makes, or None with the reason it makes none."""
    if not is_atom(event.type):
        return None, "unsupported"
    if event.stale <= received_at.timestamp() * 1000:
        return None, "stale"
    point = event.point
    problem = position_problem(point.lat, point.lon)
    if problem is not None:
        return None, problem
    parts = event.type.split("-")
    domain = _DOMAINS.get(parts[2], Domain.UNKNOWN) if len(parts) > 2 else Domain.UNKNOWN
    identity = None if event.how == RADAR_HOW else Identity(kind=IdentityKind.TAK, value=event.uid)
    detail = event.detail
    return (
        Observation(
            source=source,
            received_at=received_at,
            source_time=datetime.fromtimestamp(event.time / 1000, UTC),
            lat=point.lat,
            lon=point.lon,
            domain=domain,
            identity=identity,
            name=detail.callsign,
            alt_m=point.hae if point.hae != UNKNOWN_ERROR else None,
            course_deg=detail.course % 360.0 if detail.course is not None else None,
            speed_mps=detail.speed if detail.speed is not None and detail.speed >= 0 else None,
            ce_m=point.ce if 0 < point.ce < UNKNOWN_ERROR else None,
            quality=f"how={event.how}" if event.how else None,
            category=event.type,
        ),
        None,
    )


class CotStreamDecoder:
    """A TCP stream of CoT XML events in, observations out (XML only: no protocol upgrade is offered)."""

    def __init__(self, source: str, *, limits: Limits | None = None) -> None:
        self.source = source
        self.rejects = Rejects()
        self._limits = limits or Limits()
        self._conn = CotConnection(self._limits, offer_protobuf=False)

    def receive(self, data: bytes, received_at: datetime) -> list[Observation]:
        """Decode the events ``data`` completes; ``b""`` (end of stream) readies for a new connection."""
        out: list[Observation] = []
        if not data:
            self._conn = CotConnection(self._limits, offer_protobuf=False)
            return out
        for start in range(0, len(data), _FEED_SLICE):
            try:
                self._conn.receive_data(data[start : start + _FEED_SLICE])
            except RemoteProtocolError as exc:
                self._restart(exc.reason)
                continue
            self._drain(out, received_at)
        return out

    def _drain(self, out: list[Observation], received_at: datetime) -> None:
        while True:
            try:
                event = self._conn.next_event()
            except RemoteProtocolError as exc:
                # The stream lost sync for good (a flood of garbage): start over with the next bytes.
                self._restart(exc.reason)
                return
            if event is NEED_DATA or isinstance(event, ConnectionClosed):
                return
            if isinstance(event, EventRejected):
                self.rejects.add(event.reason)
            elif isinstance(event, EventReceived):
                obs, reason = observation_of(event.event, self.source, received_at)
                if obs is not None:
                    out.append(obs)
                elif reason is not None:
                    self.rejects.add(reason)
            else:  # pings and upgrade requests: a feed is read, not answered
                self.rejects.add("unsupported")

    def _restart(self, reason: str) -> None:
        self.rejects.add(reason)
        self._conn = CotConnection(self._limits, offer_protobuf=False)


class CotDatagramDecoder:
    """One UDP datagram per call (XML event or mesh protobuf) in, at most one observation out."""

    def __init__(self, source: str, *, limits: Limits | None = None) -> None:
        self.source = source
        self.rejects = Rejects()
        self._limits = limits or Limits()
        self._xml = XmlDecoder(self._limits)

    def receive(self, data: bytes, received_at: datetime) -> list[Observation]:
        """Decode one datagram."""
        if len(data) > self._limits.max_event_bytes:
            self.rejects.add("event_too_large")
            return []
        try:
            event = decode_datagram(data, self._limits, self._xml)
        except RemoteProtocolError as exc:
            self.rejects.add(exc.reason)
            return []
        obs, reason = observation_of(event, self.source, received_at)
        if obs is None:
            self.rejects.add(reason or "unsupported")
            return []
        return [obs]
