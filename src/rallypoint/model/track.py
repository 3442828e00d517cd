"""What a source says it saw (``Observation``) and what fusion believes (``TrackReport``).

Connectors turn source bytes into observations; the fusion tracker turns observations into track
reports; the feed service turns track reports into CoT that enters through ``Ingest.accept``. These
structs are the boundary between the three, so they are frozen and carry only plain values.
"""

from __future__ import annotations

import enum
from datetime import datetime

import msgspec


class Domain(enum.StrEnum):
    """Where an object moves; picks the CoT dimension, the stale time and the plausibility limits."""

    AIR = "air"
    SEA = "sea"
    GROUND = "ground"
    UNKNOWN = "unknown"


class IdentityKind(enum.StrEnum):
    """The namespace of a source-given identity; two identities of different kinds never merge silently."""

    ICAO = "icao"  # 24-bit ICAO aircraft address, six lower-case hex digits
    MMSI = "mmsi"  # AIS Maritime Mobile Service Identity, nine digits
    APRS = "aprs"  # callsign-SSID, upper case
    TAK = "tak"  # a CoT uid
    FEATURE = "feature"  # a GeoJSON/KML feature id (static layers)
    GPS = "gps"  # a named NMEA receiver (the feed itself)


class Identity(msgspec.Struct, frozen=True):
    """An identity as the source gave it."""

    kind: IdentityKind
    value: str


class Observation(msgspec.Struct, frozen=True, kw_only=True):
    """One report of one object by one source.

    ``ce_m`` is the source's own horizontal accuracy (1-sigma metres) where it states one (NACp, AIS
    position accuracy, HDOP x UERE); ``quality`` keeps the raw indicator for display and weighting.
    Velocity is ground course (degrees true) and speed (m/s) when the source gives them.
    """

    source: str
    received_at: datetime
    source_time: datetime | None
    lat: float
    lon: float
    domain: Domain = Domain.UNKNOWN
    identity: Identity | None = None
    name: str | None = None
    alt_m: float | None = None
    course_deg: float | None = None
    speed_mps: float | None = None
    climb_mps: float | None = None
    ce_m: float | None = None
    quality: str | None = None
    # Source-specific classification that refines the CoT type: AIS ship type number, ADS-B emitter
    # category ("A1".."C7"), APRS symbol, or a CoT type for CoT feeds.
    category: str | None = None


class TrackStatus(enum.StrEnum):
    """Lifecycle of a track."""

    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    DELETED = "deleted"


class TrackReport(msgspec.Struct, frozen=True, kw_only=True):
    """The tracker's current estimate of one object, ready to be said as CoT.

    ``uid`` is stable for the life of the track (identity-based where there is an identity, so a
    restart keeps the same uid). ``ce_m``/``le_m`` come from the estimate's covariance (1-sigma).
    ``sources`` names every source that contributed; ``fused`` is true when more than one did.
    """

    uid: str
    time: datetime
    status: TrackStatus
    domain: Domain
    lat: float
    lon: float
    identity: Identity | None = None
    name: str | None = None
    alt_m: float | None = None
    course_deg: float | None = None
    speed_mps: float | None = None
    ce_m: float | None = None
    le_m: float | None = None
    category: str | None = None
    sources: tuple[str, ...] = ()
    fused: bool = False
