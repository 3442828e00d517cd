"""ADS-B as a dump1090/readsb ``aircraft.json`` document (an HTTP poll answer).

One observation per aircraft that has a position: ``hex`` (ICAO address; ``~`` addresses are not
ICAO and are skipped as ``unsupported``), ``flight`` (callsign), ``lat``/``lon``, ``alt_geom`` (WGS-84
height, preferred) or ``alt_baro`` (``"ground"`` on the ground), ``gs`` (knots), ``track``,
``geom_rate``/``baro_rate`` (ft/min), ``nac_p`` (accuracy, DO-260B NACp), ``category`` (emitter
category ``A1``..``D7``), and ``seen_pos``: the position's age, so ``source_time = now - seen_pos``
with the document's own ``now`` (the receiver's clock) or the receive time when it has none.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from rallypoint.connectors.adsb_quality import nacp_ce_m
from rallypoint.connectors.base import Rejects
from rallypoint.connectors.decoding import FOOT_M, KNOT_MPS, finite, position_problem
from rallypoint.model.track import Domain, Identity, IdentityKind, Observation

DEFAULT_MAX_DOCUMENT = 16 * 1024 * 1024
_HEX = frozenset("0123456789abcdef")
_FPM_MPS = FOOT_M / 60.0


class AdsbJsonDecoder:
    """One ``aircraft.json`` document in, aircraft observations out."""

    def __init__(self, source: str, *, max_document: int = DEFAULT_MAX_DOCUMENT, max_aircraft: int = 20_000) -> None:
        self.source = source
        self.rejects = Rejects()
        self._max_document = max_document
        self._max_aircraft = max_aircraft

    def decode(self, document: bytes, received_at: datetime) -> list[Observation]:
        """Every aircraft with a usable position; bad entries are counted and skipped."""
        if len(document) > self._max_document:
            self.rejects.add("too_large")
            return []
        try:
            root = msgspec.json.decode(document)
        except (msgspec.DecodeError, RecursionError):  # deep nesting ends in RecursionError
            self.rejects.add("malformed")
            return []
        if not isinstance(root, dict) or not isinstance(root.get("aircraft"), list):
            self.rejects.add("malformed")
            return []
        now_s = finite(root.get("now"))
        reference = datetime.fromtimestamp(now_s, UTC) if now_s is not None and now_s > 0 else received_at
        aircraft: list[Any] = root["aircraft"]
        if len(aircraft) > self._max_aircraft:
            self.rejects.add("too_many", len(aircraft) - self._max_aircraft)
            aircraft = aircraft[: self._max_aircraft]
        out: list[Observation] = []
        for entry in aircraft:
            obs = self._aircraft(entry, reference, received_at)
            if obs is not None:
                out.append(obs)
        return out

    def _aircraft(self, entry: object, reference: datetime, received_at: datetime) -> Observation | None:
        if not isinstance(entry, dict):
            self.rejects.add("malformed")
            return None
        icao = entry.get("hex")
        if not isinstance(icao, str):
            self.rejects.add("malformed")
            return None
        icao = icao.strip().lower()
        if icao.startswith("~"):
            self.rejects.add("unsupported")
            return None
        if len(icao) != 6 or not _HEX.issuperset(icao):
            self.rejects.add("malformed")
            return None
        if "lat" not in entry and "lon" not in entry:
            return None  # heard, but no position yet: nothing to place
        lat, lon = entry.get("lat"), entry.get("lon")
        if not _is_number(lat) or not _is_number(lon):
            self.rejects.add("malformed")
            return None
        assert isinstance(lat, int | float) and isinstance(lon, int | float)
        problem = position_problem(float(lat), float(lon))
        if problem is not None:
            self.rejects.add(problem)
            return None
        seen_pos = finite(entry.get("seen_pos"))
        source_time = reference - timedelta(seconds=seen_pos) if seen_pos is not None and seen_pos >= 0 else None
        flight = entry.get("flight")
        name = flight.strip() or None if isinstance(flight, str) else None
        category = entry.get("category")
        speed_kt = finite(entry.get("gs", entry.get("speed")))
        track = finite(entry.get("track"))
        rate = finite(entry.get("geom_rate", entry.get("baro_rate", entry.get("vert_rate"))))
        nacp = entry.get("nac_p")
        ce_m = nacp_ce_m(nacp)
        return Observation(
            source=self.source,
            received_at=received_at,
            source_time=source_time,
            lat=float(lat),
            lon=float(lon),
            domain=Domain.AIR,
            identity=Identity(kind=IdentityKind.ICAO, value=icao),
            name=name,
            alt_m=_altitude_m(entry),
            course_deg=track % 360.0 if track is not None else None,
            speed_mps=speed_kt * KNOT_MPS if speed_kt is not None and speed_kt >= 0 else None,
            climb_mps=rate * _FPM_MPS if rate is not None else None,
            ce_m=ce_m,
            quality=f"nacp={nacp}" if ce_m is not None else None,
            category=category if isinstance(category, str) and 0 < len(category) <= 4 else None,
        )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _altitude_m(entry: dict[str, Any]) -> float | None:
    """Geometric height when given (it is what CoT's ``hae`` means), else pressure altitude."""
    for key in ("alt_geom", "alt_baro", "altitude"):
        feet = finite(entry.get(key))
        if feet is not None:
            return feet * FOOT_M
    return None
