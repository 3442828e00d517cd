"""The CoT a designation is shown as on TAK clients (pure: no I/O, time passed in).

* A point is an atom ``a-<affiliation>-<dimension>`` (``a-h-G`` a hostile ground point,
  ``a-f-S`` a friendly vessel); an area is a drawn shape ``u-d-f`` whose ``<link point>`` vertices
  close the ring, coloured by affiliation.
* ``<__rallypoint_designation>`` carries the workflow (id, state, kind, category, affiliation,
  priority, proposer, approver, mission) and one ``<attachment hash>`` per attached data package.
* Before approval the event's uid is ``designation.<id>.proposed``, its callsign starts with
  ``UNAPPROVED:`` and its remarks with ``[UNAPPROVED designation, proposed by <user>]``; once
  approved the uid is ``designation.<id>``. The two never share a uid, so a proposed marker
  deleted (``t-x-d-d``) on approval, rejection or withdrawal never takes the approved one along.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from rallypoint.model.cot import CotEvent, Point
from rallypoint.model.cot_type import DELETE
from rallypoint.model.designation import UNKNOWN_HAE, Designation, Kind, State, centroid
from rallypoint.protocol.xml_codec import make_event

UID_PREFIX = "designation."
PROPOSED_SUFFIX = ".proposed"
UNAPPROVED_CALLSIGN = "UNAPPROVED: "
# Designations hold for weeks (a landing site, a hazard); clients drop a marker once it is stale.
STALE_MS = 30 * 86_400_000
DELETE_STALE_MS = 60_000
DETAIL_TAG = "__rallypoint_designation"
_UNKNOWN = 9999999.0


def proposed_uid(designation_id: str) -> str:
    """The uid of the unapproved marker of a designation."""
    return f"{UID_PREFIX}{designation_id}{PROPOSED_SUFFIX}"


def approved_uid(designation_id: str) -> str:
    """The uid of the approved designation."""
    return f"{UID_PREFIX}{designation_id}"


def designation_event(d: Designation, *, now_ms: int) -> CotEvent:
    """The event showing ``d`` as it stands (proposed or approved)."""
    proposed = d.state is State.PROPOSED
    uid = proposed_uid(d.id) if proposed else approved_uid(d.id)
    callsign = f"{UNAPPROVED_CALLSIGN}{d.title}" if proposed else d.title
    if proposed:
        remark = f"[UNAPPROVED designation, proposed by {d.proposer}] {d.notes}"
    else:
        remark = f"[Designation proposed by {d.proposer}, approved by {d.approver}] {d.notes}"
    attrs = {
        "id": d.id, "state": d.state.value, "kind": d.kind.value, "category": d.category.value,
        "affiliation": d.affiliation.value, "priority": str(d.priority), "proposer": d.proposer,
    }
    if d.approver is not None:
        attrs["approver"] = d.approver
    if d.mission is not None:
        attrs["mission"] = d.mission
    marker = " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items())
    attachments = "".join(f"<attachment hash={quoteattr(h)}/>" for h in d.attachments)
    parts = [f"<{DETAIL_TAG} {marker}>{attachments}</{DETAIL_TAG}>"]
    hae = d.hae if d.hae is not None else UNKNOWN_HAE
    if d.kind is Kind.AREA:
        ring = [*d.polygon, d.polygon[0]]
        parts.extend(f"<link point={quoteattr(f'{v.lat!r},{v.lon!r}')}/>" for v in ring)
        colour = d.affiliation.argb
        # The same hue, a quarter opaque, inside the outline.
        fill = (colour & 0x00FFFFFF) | 0x40000000
        parts.append(f"<strokeColor value=\"{colour}\"/><strokeWeight value=\"3.0\"/>"
                     f"<fillColor value=\"{fill}\"/><labels_on value=\"true\"/>")
        where = centroid(d.polygon)
    else:
        where = d.point
    parts.append(f"<contact callsign={quoteattr(callsign)}/>")
    parts.append(f"<remarks>{escape(remark)}</remarks>")
    return make_event(
        uid=uid, type=d.cot_type, how="h-g-i-g-o", time=now_ms, start=now_ms, stale=now_ms + STALE_MS,
        point=Point(where.lat, where.lon, hae, _UNKNOWN, _UNKNOWN), detail_xml="".join(parts).encode(),
    )


def delete_event(uid: str, target_type: str, *, now_ms: int) -> CotEvent:
    """``t-x-d-d`` removing the marker ``uid`` from the clients that show it."""
    detail = f"<link uid={quoteattr(uid)} relation=\"p-p\" type={quoteattr(target_type)}/><__forcedelete/>"
    return make_event(
        uid=f"{uid}.delete", type=DELETE, how="h-g-i-g-o", time=now_ms, start=now_ms, stale=now_ms + DELETE_STALE_MS,
        point=Point(0.0, 0.0, _UNKNOWN, _UNKNOWN, _UNKNOWN), detail_xml=detail.encode(),
    )
