"""APRS from APRS-IS: TNC2 packet lines decoded with ``aprslib``, and the login line for the runner.

Positions in every form aprslib decodes (uncompressed, compressed, Mic-E, objects and items) become
observations identified by the sender's callsign-SSID (an object or item by its own name). Server
lines (``#``) are skipped without counting. Packets without a position (messages, status,
telemetry) are counted ``no_position``. Speed comes in km/h and altitude in metres. APRS states no
accuracy except position ambiguity (digits blanked by the sender), which sets ``ce_m``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aprslib

from rallypoint.connectors.base import Rejects
from rallypoint.connectors.decoding import DEFAULT_MAX_LINE, LineSplitter, finite, position_problem
from rallypoint.model.track import Domain, Identity, IdentityKind, Observation

# APRS-IS lines are at most 512 bytes; a little slack for servers that pass longer ones.
APRS_MAX_LINE = 1024
# 1-sigma error of a position whose last 1..4 digits were blanked (0.1', 1', 10', 1 degree of latitude).
_AMBIGUITY_CE_M = {1: 185.0, 2: 1852.0, 3: 18520.0, 4: 111120.0}
_AIR_SYMBOLS = frozenset({"/^", "/'", "/O", "/X", "\\^", "/g"})
_SEA_SYMBOLS = frozenset({"/s", "/Y", "/C", "\\s", "\\N"})
_LIBRARY_ERRORS = (aprslib.ParseError, aprslib.UnknownFormat, ValueError, TypeError, KeyError, IndexError)


class AprsDecoder:
    """A stream of APRS-IS lines in, station and object observations out."""

    def __init__(self, source: str, *, max_line: int = min(APRS_MAX_LINE, DEFAULT_MAX_LINE)) -> None:
        self.source = source
        self.rejects = Rejects()
        self._lines = LineSplitter(self.rejects, max_line)

    def receive(self, data: bytes, received_at: datetime) -> list[Observation]:
        """Decode the lines ``data`` completes."""
        out: list[Observation] = []
        for line in self._lines.feed(data):
            obs = self.decode_line(line, received_at)
            if obs is not None:
                out.append(obs)
        return out

    def decode_line(self, line: bytes, received_at: datetime) -> Observation | None:
        """One packet line; an observation when it carries a position."""
        if line.startswith(b"#"):
            return None  # server banner, keep-alive or login answer
        try:
            packet: dict[str, Any] = aprslib.parse(line)
        except aprslib.UnknownFormat:
            self.rejects.add("unsupported")
            return None
        except aprslib.ParseError as exc:
            # aprslib refuses out-of-range coordinates while parsing; they are positions, not syntax.
            self.rejects.add("impossible_position" if "out of range" in str(exc) else "malformed")
            return None
        except _LIBRARY_ERRORS:
            self.rejects.add("malformed")
            return None
        lat, lon = packet.get("latitude"), packet.get("longitude")
        if lat is None or lon is None:
            self.rejects.add("no_position")
            return None
        if not isinstance(lat, int | float) or not isinstance(lon, int | float):
            self.rejects.add("malformed")
            return None
        problem = position_problem(float(lat), float(lon))
        if problem is not None:
            self.rejects.add(problem)
            return None
        if packet.get("alive") is False:
            self.rejects.add("killed_object")  # an object or item its owner removed
            return None
        return self._observation(packet, float(lat), float(lon), received_at)

    def _observation(self, packet: dict[str, Any], lat: float, lon: float, received_at: datetime) -> Observation:
        named = packet.get("object_name") or packet.get("item_name")
        callsign = (str(named).strip() if named else str(packet.get("from", ""))).upper()
        symbol = f"{packet.get('symbol_table', '')}{packet.get('symbol', '')}"
        speed_kmh = finite(packet.get("speed"))
        course = finite(packet.get("course"))
        ambiguity = packet.get("posambiguity")
        ce_m = _AMBIGUITY_CE_M.get(ambiguity) if isinstance(ambiguity, int) else None
        raw_time = packet.get("raw_timestamp")
        return Observation(
            source=self.source,
            received_at=received_at,
            source_time=packet_time(raw_time, received_at) if isinstance(raw_time, str) else None,
            lat=lat,
            lon=lon,
            domain=Domain.AIR if symbol in _AIR_SYMBOLS else Domain.SEA if symbol in _SEA_SYMBOLS else Domain.GROUND,
            identity=Identity(kind=IdentityKind.APRS, value=callsign),
            name=callsign,
            alt_m=finite(packet.get("altitude")),
            # APRS course 0 means "not known"; north is written 360.
            course_deg=course % 360.0 if course is not None and course > 0 else None,
            speed_mps=speed_kmh / 3.6 if speed_kmh is not None and speed_kmh >= 0 else None,
            ce_m=ce_m,
            quality=f"ambiguity={ambiguity}" if ce_m is not None else None,
            category=symbol or None,
        )


def packet_time(raw: str, received_at: datetime) -> datetime | None:
    """A packet's own timestamp placed near the receive time.

    ``DDHHMMz`` (day, hour, minute UTC) and ``HHMMSSh`` (UTC time of day) are understood; the
    ``DDHHMM/`` form is the sender's local time and gives None. aprslib computes its own
    ``timestamp`` from the wall clock; this uses the receive time passed in instead.
    """
    if len(raw) != 7 or not raw[:6].isdigit():
        return None
    a, b, c = int(raw[0:2]), int(raw[2:4]), int(raw[4:6])
    now = received_at.astimezone(UTC)
    try:
        if raw[6] == "h":
            when = now.replace(hour=a, minute=b, second=c, microsecond=0)
            if when > now + timedelta(hours=12):
                when -= timedelta(days=1)
            return when
        if raw[6] == "z":
            when = now.replace(day=a, hour=b, minute=c, second=0, microsecond=0)
            if when > now + timedelta(days=1):  # a day of last month
                first = now.replace(day=1) - timedelta(days=1)
                when = first.replace(day=a, hour=b, minute=c, second=0, microsecond=0)
            return when
    except ValueError:
        return None
    return None


def passcode(callsign: str) -> int:
    """The APRS-IS passcode of ``callsign`` (its SSID ignored), as servers verify it."""
    return int(aprslib.passcode(callsign.split("-")[0].upper()))


def login_line(
    callsign: str, *, software: str, version: str, server_filter: str | None = None, code: int | None = None
) -> bytes:
    """The APRS-IS login line: ``user CALL pass CODE vers SOFTWARE VERSION [filter FILTER]``.

    ``code`` defaults to the callsign's passcode; -1 logs in receive-only. Spaces and line breaks
    are refused in every part (they would inject another command).
    """
    parts = (callsign, software, version, server_filter or "")
    if any(ch in part for part in parts for ch in "\r\n") or any(" " in p for p in parts[:3]):
        raise ValueError("APRS-IS login fields must not contain spaces or line breaks")
    pass_code = passcode(callsign) if code is None else code
    line = f"user {callsign.upper()} pass {pass_code} vers {software} {version}"
    if server_filter:
        line += f" filter {server_filter}"
    return (line + "\r\n").encode("ascii")


def login_verified(line: bytes) -> bool | None:
    """From a server's ``# logresp CALL verified|unverified, server NAME`` line: whether the login
    was verified; None for any other line."""
    text = line.decode("ascii", errors="replace").strip()
    if not text.startswith("# logresp "):
        return None
    words = text.split()
    return len(words) >= 4 and words[3].rstrip(",") == "verified"
