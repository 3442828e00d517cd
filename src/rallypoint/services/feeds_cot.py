"""Track reports said as CoT: type, how, stale time and the ``<__rallypoint_sources>`` detail.

The type tables are documented in docs/feeds.md ("CoT out"); change both together.
Affiliation is neutral (``n``) for an object that says who it is (ICAO address, MMSI, APRS call
sign, a named GPS receiver) and unknown (``u``) for a track known only from identity-less reports
(radar-like CoT): nobody vouched for what it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.sax.saxutils import quoteattr

from rallypoint.clock import datetime_to_ms
from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent, Detail
from rallypoint.model.exercise import EXERCISE_OPEX_PREFIX, EXERCISE_TAG, ExerciseMark
from rallypoint.model.track import Domain, IdentityKind, TrackReport
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.timefmt import format_time
from rallypoint.protocol.validate import check_how, check_point, check_type, check_uid, is_xml_text

UNKNOWN_ERROR = 9_999_999.0
_LIMITS = Limits()

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
    if report.identity is not None and is_xml_text(report.identity.value):
        identity = f" identity={quoteattr(f'{report.identity.kind.value}:{report.identity.value}')}"
    inner = "".join(f"<source name={quoteattr(name)}/>" for name in report.sources)
    return (
        f"<__rallypoint_sources fused=\"{'true' if report.fused else 'false'}\""
        f" status={quoteattr(report.status.value)}{identity}>{inner}</__rallypoint_sources>"
    )


class TrackCot:
    """Says track reports as CoT events, fast: a busy feed reports thousands of tracks a second.

    Events are built directly rather than through ``make_event``'s parser (which cost most of the
    time): every value is checked as ``make_event`` would (uid, type, how, point; text XML can
    carry) and the detail is markup written here, with the views routing reads filled in. What
    repeats for a track (its contact and sources markup) is kept in bounded caches.
    """

    def __init__(self, max_cached: int = 50_000) -> None:
        self._max = max_cached
        self._contact: dict[str, str] = {}
        self._sources: dict[tuple[object, ...], str] = {}
        self._heads: dict[tuple[str, str, str], str] = {}
        self._seconds: dict[int, str] = {}

    def event(self, report: TrackReport, *, stale_s: float, now_ms: int, exercise: str | None = None) -> CotEvent:
        """The CoT event of ``report``: time is the estimate's time (never in the future), stale after ``stale_s``.

        With ``exercise`` (a valid exercise id), the event carries that exercise's marking, as the
        runner's own events do: ``opex="e-<id>"`` and ``<__rallypoint_exercise id=..>``.
        """
        when = min(datetime_to_ms(report.time), now_ms)
        stale = max(when, now_ms) + int(stale_s * 1000)
        callsign = callsign_of(report)
        detail = [self._contact_of(callsign)]
        course: float | None = None
        speed: float | None = None
        if report.course_deg is not None or report.speed_mps is not None:
            course = round((report.course_deg or 0.0) % 360.0, 1)
            speed = round(max(0.0, report.speed_mps or 0.0), 2)
            detail.append(f"<track course=\"{course:.1f}\" speed=\"{speed:.2f}\"/>")
        detail.append(self._sources_of(report))
        opex: str | None = None
        mark: ExerciseMark | None = None
        opex_attr = ""
        if exercise is not None:
            opex, mark = EXERCISE_OPEX_PREFIX + exercise, ExerciseMark(id=exercise)
            opex_attr = f" opex={quoteattr(opex)}"
            detail.append(f"<{EXERCISE_TAG} id={quoteattr(exercise)}/>")
        point = check_point(
            report.lat, report.lon,
            report.alt_m if report.alt_m is not None else UNKNOWN_ERROR,
            report.ce_m if report.ce_m is not None else UNKNOWN_ERROR,
            report.le_m if report.le_m is not None else UNKNOWN_ERROR,
        )
        uid, kind, how = report.uid, cot_type(report), how_of(report)
        inner = "".join(detail)
        stamp = self._time(when)
        raw = (
            f'{self._head_of(uid, kind, how)} time="{stamp}" start="{stamp}" stale="{self._time(stale)}"{opex_attr}>'
            f'<point lat="{point.lat!r}" lon="{point.lon!r}" hae="{point.hae!r}" ce="{point.ce!r}" le="{point.le!r}"/>'
            f"<detail>{inner}</detail></event>"
        ).encode()
        return CotEvent(
            uid=uid, type=kind, how=how, time=when, start=when, stale=stale, point=point,
            detail=Detail(xml=inner.encode(), callsign=callsign, speed=speed, course=course, exercise=mark), raw=raw,
            opex=opex,
        )

    def _head_of(self, uid: str, kind: str, how: str) -> str:
        key = (uid, kind, how)
        head = self._heads.get(key)
        if head is None:
            check_uid(uid, _LIMITS)
            check_type(kind, _LIMITS)
            check_how(how, _LIMITS)
            if len(self._heads) >= self._max:
                self._heads.clear()
            head = self._heads[key] = (
                f'<event version="2.0" uid={quoteattr(uid)} type={quoteattr(kind)} how={quoteattr(how)}'
            )
        return head

    def _time(self, ms: int) -> str:
        """``format_time(ms)``, the date and time of day of each second formatted once."""
        second, milli = divmod(ms, 1000)
        text = self._seconds.get(second)
        if text is None:
            if len(self._seconds) >= 4096:
                self._seconds.clear()
            text = self._seconds[second] = format_time(second * 1000)[:-5]
        return f"{text}.{milli:03d}Z"

    def _contact_of(self, callsign: str) -> str:
        markup = self._contact.get(callsign)
        if markup is None:
            if not is_xml_text(callsign):
                raise RemoteProtocolError("xml_invalid_char", "the track's name has characters XML cannot carry")
            if len(self._contact) >= self._max:
                self._contact.clear()
            markup = self._contact[callsign] = f"<contact callsign={quoteattr(callsign)}/>"
        return markup

    def _sources_of(self, report: TrackReport) -> str:
        key = (report.identity, report.sources, report.fused, report.status)
        markup = self._sources.get(key)
        if markup is None:
            if len(self._sources) >= self._max:
                self._sources.clear()
            markup = self._sources[key] = sources_detail(report)
        return markup


def track_event(report: TrackReport, *, stale_s: float, now_ms: int) -> CotEvent:
    """The CoT event of one report (see :class:`TrackCot`, which a busy caller keeps)."""
    return TrackCot().event(report, stale_s=stale_s, now_ms=now_ms)
