"""A plan as CoT drawings for TAK clients: the release point, the DZ outline and the footprint ellipse.

Pure: the caller passes the time and the uid prefix; publishing (to a mission's subscribers) is the
caller's business. Shapes follow what ATAK itself exports: a free-form ``u-d-f`` lists its vertices
as ``<link point=.../>``; an ellipse ``u-d-c-e`` carries ``<shape><ellipse major minor angle/></shape>``
with semi-axes in metres and the major axis bearing in degrees.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from rallypoint.model.airdrop import AirdropPlan
from rallypoint.model.cot import CotEvent, Point
from rallypoint.protocol.xml_codec import make_event

CARP_TYPE = "b-m-p-s-m"
DZ_TYPE = "u-d-f"
FOOTPRINT_TYPE = "u-d-c-e"
DEFAULT_STALE_S = 24 * 3600
# ATAK colours are signed 32-bit ARGB integers.
_BLUE = -13870432
_GREEN = -12550594
_GREEN_FILL = 1614458942
_RED = -5227986


def _contact(callsign: str, remarks: str) -> str:
    return f"<contact callsign={quoteattr(callsign)}/><remarks>{_text(remarks)}</remarks>"


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _style(stroke: int, fill: int | None = None) -> str:
    fill_xml = f"<fillColor value='{fill}'/>" if fill is not None else ""
    return f"<strokeColor value='{stroke}'/><strokeWeight value='3.0'/>{fill_xml}<labels_on value='true'/>"


def plan_events(plan: AirdropPlan, *, uid_prefix: str, name: str, now_ms: int,
                stale_s: int = DEFAULT_STALE_S) -> list[CotEvent]:
    """CoT events for ``plan``: release point marker, DZ outline and (with dispersion) footprint ellipse.

    Uids are ``<uid_prefix>.carp``, ``.dz`` and ``.footprint`` so a re-published plan replaces the
    previous drawings. Raises ``RemoteProtocolError`` when ``uid_prefix`` or ``name`` cannot be carried.
    """
    stale = now_ms + stale_s * 1000

    def event(suffix: str, cot_type: str, lat: float, lon: float, detail: str) -> CotEvent:
        return make_event(uid=f"{uid_prefix}.{suffix}", type=cot_type, how="h-e", time=now_ms, start=now_ms,
                          stale=stale, point=Point(lat, lon), detail_xml=detail.encode())

    summary = (f"{plan.advisory} Run-in {plan.run_in_deg:.0f} deg true, time of fall {plan.time_of_fall_s:.1f} s, "
               f"drift {plan.drift_distance_m:.0f} m.")
    if plan.green_light is not None:
        summary += (f" Green light from {plan.green_light.opens_s:+.1f} s to {plan.green_light.closes_s:+.1f} s "
                    "around the CARP.")
    events = [
        event("carp", CARP_TYPE, plan.carp.lat, plan.carp.lon,
              _contact(f"{name} CARP", summary) + f"<color argb='{_BLUE}'/>"
              f"<usericon iconsetpath='COT_MAPPING_SPOTMAP/{CARP_TYPE}/{_BLUE}'/>"),
    ]
    ring = [*plan.dz_polygon, plan.dz_polygon[0]]
    links = "".join(f"<link point='{p.lat!r},{p.lon!r}'/>" for p in ring)
    events.append(event("dz", DZ_TYPE, plan.pi.lat, plan.pi.lon,
                        links + _style(_GREEN, _GREEN_FILL)
                        + _contact(f"{name} DZ", f"Drop zone, PI {plan.pi.lat:.6f}, {plan.pi.lon:.6f}.")))
    if plan.dispersion is not None:
        e = plan.dispersion.ellipse
        events.append(event("footprint", FOOTPRINT_TYPE, e.center.lat, e.center.lon,
                            f"<shape><ellipse major='{e.semi_major_m!r}' minor='{e.semi_minor_m!r}' "
                            f"angle='{e.orientation_deg!r}'/></shape>" + _style(_RED)
                            + _contact(f"{name} footprint 95%",
                                       f"CEP {plan.dispersion.cep_m:.0f} m, R95 {plan.dispersion.r95_m:.0f} m, "
                                       f"P(inside DZ) {plan.dispersion.p_inside_dz:.2f}.")))
    return events
