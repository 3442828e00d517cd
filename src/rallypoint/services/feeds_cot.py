"""Track reports said as CoT: type, how, stale time and the ``<__rallypoint_sources>`` detail.

The type tables are documented in docs/feeds.md ("CoT out"); change both together.
Affiliation is neutral (``n``) for an object that says who it is (ICAO address, MMSI, APRS call
sign, a named GPS receiver) and unknown (``u``) for a track known only from identity-less reports
(radar-like CoT): nobody vouched for what it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.sax.saxutils import escape, quoteattr

from rallypoint.clock import datetime_to_ms
from rallypoint.model.cot import CotEvent, Point
from rallypoint.model.track import Domain, IdentityKind, TrackReport
from rallypoint.protocol.xml_codec import make_event

UNKNOWN_ERROR = 9_999_999.0

# Seconds a report stays on maps without a newer one: about three missed reports of the usual rate
# (ADS-B about 1 Hz, AIS 2 s to 3 min, APRS beacons 1 to 30 min). A feed's stale_s overrides these.
DEFAULT_STALE_S: Mapping[Domain, float] = {
    Domain.AIR: 60.0,
    Domain.SEA: 600.0,
    Domain.GROUND: 1800.0,
    Domain.UNKNOWN: 120.0,
}

_DIMENSION = {Domain.AIR: "A", Domain.SEA: "S", Domain.GROUND: "G", Domain.UNKNOWN: "G"}

# ADS-B emitter categories (DO-260B) that are not fixed-wing aircraft; the rest of set A is.
_ADSB_CATEGORY_TYPES: Mapping[str, str] = {
    "A7": "a-n-A-C-H",  # rotorcraft
    "B1": "a-n-A-C-F",  # glider / sailplane
    "B2": "a-n-A-C-L",  # lighter than air
    "B6": "a-n-A-C-F-q",  # unmanned aerial vehicle
    "C1": "a-n-G-E-V",  # surface vehicle, emergency
    "C2": "a-n-G-E-V",  # surface vehicle, service
}


def vessel_type(ship_type: int) -> str:
    """The CoT type of a vessel from its AIS ship type (ITU-R M.1371, message 5 / 24B)."""
    if ship_type == 30:
        return "a-n-S-X-F"  # fishing
    if ship_type in (31, 32):
        return "a-n-S-X-M-T-O"  # towing
    if ship_type == 33:
        return "a-n-S-X-F-O"  # dredging
    if ship_type in (36, 37):
        return "a-n-S-X-R"  # sailing, pleasure craft
    if ship_type == 52:
        return "a-n-S-X-M-T"  # tug
    if ship_type == 55:
        return "a-n-S-X-L"  # law enforcement
    if 60 <= ship_type <= 69:
        return "a-n-S-X-M-P"  # passenger
    if 70 <= ship_type <= 79:
        return "a-n-S-X-M-C"  # cargo
    if 80 <= ship_type <= 89:
        return "a-n-S-X-M-O"  # tanker
    return "a-n-S-X"


# APRS symbols (primary table) of vehicles, vessels and aircraft; other symbols stay a-n-G.
_APRS_SYMBOL_TYPES: Mapping[str, str] = {
    "/>": "a-n-G-E-V",  # car
    "/k": "a-n-G-E-V",  # truck
    "/u": "a-n-G-E-V",  # truck (18 wheeler)
    "/v": "a-n-G-E-V",  # van
    "/j": "a-n-G-E-V",  # jeep
    "/<": "a-n-G-E-V",  # motorcycle
    "/a": "a-n-G-E-V",  # ambulance
    "/f": "a-n-G-E-V",  # fire truck
    "/s": "a-n-S-X",  # ship (power boat)
    "/Y": "a-n-S-X-R",  # yacht (sail)
    "/'": "a-n-A-C-F",  # small aircraft
    "/^": "a-n-A-C-F",  # large aircraft
    "/X": "a-n-A-C-H",  # helicopter
    "/O": "a-n-A-C-L",  # balloon
}


def cot_type(report: TrackReport) -> str:
    """The CoT type of a track (docs/feeds.md, "CoT out")."""
    identity = report.identity
    category = report.category or ""
    if identity is None:
        return f"a-u-{_DIMENSION[report.domain]}"
    if identity.kind is IdentityKind.TAK and category.startswith("a-"):
        return category  # a CoT source said what it is
    if report.domain is Domain.AIR:
        return _ADSB_CATEGORY_TYPES.get(category.upper(), _APRS_SYMBOL_TYPES.get(category, "a-n-A-C-F"))
    if report.domain is Domain.SEA:
        if category.isdigit():
            return vessel_type(int(category))
        return _APRS_SYMBOL_TYPES.get(category, "a-n-S-X")
    if report.domain is Domain.GROUND:
        return _APRS_SYMBOL_TYPES.get(category, "a-n-G")
    return _APRS_SYMBOL_TYPES.get(category, "a-n-G")


def how_of(report: TrackReport) -> str:
    """``m-f`` (fused) when several sources contributed; else how the one source knows."""
    if report.fused:
        return "m-f"
    if report.identity is None:
        return "m-r"  # only identity-less (radar-like) reports
    if report.identity.kind is IdentityKind.FEATURE:
        return "h-e"
    return "m-g"  # the object's own satellite fix, reported by itself (ADS-B, AIS, APRS, NMEA)


def callsign_of(report: TrackReport) -> str:
    """What maps label the track with: its name, else its identity, else its uid."""
    if report.name:
        return report.name
    if report.identity is not None:
        value = report.identity.value
        return value.upper() if report.identity.kind is IdentityKind.ICAO else value
    return report.uid


def sources_detail(report: TrackReport) -> str:
    """``<__rallypoint_sources fused=".." status=".." identity=".."><source name=".."/>...</...>``."""
    identity = ""
    if report.identity is not None:
        identity = f" identity={quoteattr(f'{report.identity.kind.value}:{report.identity.value}')}"
    inner = "".join(f"<source name={quoteattr(name)}/>" for name in report.sources)
    return (
        f"<__rallypoint_sources fused=\"{'true' if report.fused else 'false'}\""
        f" status={quoteattr(report.status.value)}{identity}>{inner}</__rallypoint_sources>"
    )


def track_event(report: TrackReport, *, stale_s: float, now_ms: int) -> CotEvent:
    """The CoT event of ``report``: time is the estimate's time (never in the future), stale after ``stale_s``."""
    when = min(datetime_to_ms(report.time), now_ms)
    detail = [f"<contact callsign={quoteattr(callsign_of(report))}/>"]
    if report.course_deg is not None or report.speed_mps is not None:
        course = (report.course_deg or 0.0) % 360.0
        speed = max(0.0, report.speed_mps or 0.0)
        detail.append(f"<track course=\"{course:.1f}\" speed=\"{speed:.2f}\"/>")
    if report.name and report.identity is not None:
        kind, value = report.identity.kind.value.upper(), report.identity.value
        detail.append(f"<remarks>{escape(kind)} {escape(value)}</remarks>")
    detail.append(sources_detail(report))
    return make_event(
        uid=report.uid,
        type=cot_type(report),
        how=how_of(report),
        time=when,
        start=when,
        stale=max(when, now_ms) + int(stale_s * 1000),
        point=Point(
            report.lat, report.lon,
            report.alt_m if report.alt_m is not None else UNKNOWN_ERROR,
            report.ce_m if report.ce_m is not None else UNKNOWN_ERROR,
            report.le_m if report.le_m is not None else UNKNOWN_ERROR,
        ),
        detail_xml="".join(detail).encode(),
    )
