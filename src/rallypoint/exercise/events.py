"""The CoT a simulated unit sends, every event carrying the exercise marker.

Marker (docs/exercises.md, "Control and marking"): ``opex="e-<EXID>"`` on the event, ``how="m-s"``
(CoT's "simulated"), and ``<__rallypoint_exercise id=.. unit=..>`` in the detail, with ``inject``
and ``kind`` on events that carry out an inject. Events are built as XML text (escaped); the
protobuf form carries the same fields (``opex`` in the CotEvent, the element in ``xmlDetail``).
"""

from __future__ import annotations

import time
import uuid
from xml.sax.saxutils import quoteattr

from rallypoint.exercise.model import Inject, LatLon, Unit
from rallypoint.exercise.motion import Fix

HOW_SIMULATED = "m-s"
RECORD_TYPE = "t-x-rp-exercise"
MARKER_ELEMENT = "__rallypoint_exercise"
ALL_CHAT_ROOMS = "All Chat Rooms"
# ATAK's alert types and the CoT type each is sent with (cancel: b-a-o-can).
EMERGENCY_TYPES = {
    "911 Alert": "b-a-o-tbl",
    "Ring The Bell": "b-a-o-pan",
    "Geo-fence Breached": "b-a-g",
    "In Contact": "b-a-o-opn",
    "Custom": "b-a-o-c",
}
EMERGENCY_CANCEL = "b-a-o-can"
_UNKNOWN = 9999999.0


def cot_time(ms: int) -> str:
    """Epoch milliseconds as a CoT timestamp."""
    secs, frac = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:03d}Z"


def opex(exercise_id: str) -> str:
    """The ``opex`` attribute value of an exercise's events."""
    return f"e-{exercise_id}"


def unit_uid(exercise_id: str, unit_id: str) -> str:
    """The CoT uid of a simulated unit: stable for the exercise, never a real device's."""
    return f"RP-EX-{exercise_id}-{unit_id}"


def marker(exercise_id: str, unit_id: str | None, inject: Inject | None = None) -> str:
    """The detail element that marks an event as exercise traffic."""
    attrs = f"id={quoteattr(exercise_id)}"
    if unit_id is not None:
        attrs += f" unit={quoteattr(unit_id)}"
    if inject is not None:
        attrs += f" inject={quoteattr(inject.id)} kind={quoteattr(inject.kind.value)}"
    return f"<{MARKER_ELEMENT} {attrs}/>"


def _event(exercise_id: str, uid: str, cot_type: str, now_ms: int, stale_s: float, at: LatLon | None,
           detail: str) -> bytes:
    t = cot_time(now_ms)
    point = (f'<point lat="{at.lat:.7f}" lon="{at.lon:.7f}" hae="{_UNKNOWN}" ce="10.0" le="{_UNKNOWN}"/>'
             if at is not None else f'<point lat="0.0" lon="0.0" hae="{_UNKNOWN}" ce="{_UNKNOWN}" le="{_UNKNOWN}"/>')
    return (
        f"<event version=\"2.0\" uid={quoteattr(uid)} type={quoteattr(cot_type)} how=\"{HOW_SIMULATED}\" "
        f"time=\"{t}\" start=\"{t}\" stale=\"{cot_time(now_ms + int(stale_s * 1000))}\" "
        f"opex={quoteattr(opex(exercise_id))}>{point}<detail>{detail}</detail></event>"
    ).encode()


class PositionEncoder:
    """A unit's position reports (its SA, like a TAK client's own), with each unit's fixed parts escaped once.

    Escaping the uid, callsign, team and marker on every report was most of a report's CPU time;
    they never change during an exercise.
    """

    def __init__(self, exercise_id: str) -> None:
        self._exercise_id = exercise_id
        self._opex = quoteattr(opex(exercise_id))
        self._parts: dict[str, tuple[str, str, str]] = {}

    def _make(self, unit: Unit) -> tuple[str, str, str]:
        uid = unit_uid(self._exercise_id, unit.id)
        head = f'<event version="2.0" uid={quoteattr(uid)} type={quoteattr(unit.type)} how="{HOW_SIMULATED}" '
        detail = (
            f'<contact callsign={quoteattr(unit.callsign)} endpoint="*:-1:stcp"/>'
            f"<__group name={quoteattr(unit.team)} role={quoteattr(unit.role)}/>"
            f'<takv platform="Rallypoint exercise" version="1" device="simulated" os="-"/>'
        )
        parts = (head, detail, marker(self._exercise_id, unit.id))
        self._parts[unit.id] = parts
        return parts

    def encode(self, unit: Unit, fix: Fix, now_ms: int, stale_s: float) -> bytes:
        """One report of ``unit`` at ``fix``, taken at ``now_ms``, valid ``stale_s`` seconds."""
        head, detail, mark = self._parts.get(unit.id) or self._make(unit)
        t = cot_time(now_ms)
        at = fix.at
        return (
            f'{head}time="{t}" start="{t}" stale="{cot_time(now_ms + int(stale_s * 1000))}" opex={self._opex}>'
            f'<point lat="{at.lat:.7f}" lon="{at.lon:.7f}" hae="{_UNKNOWN}" ce="10.0" le="{_UNKNOWN}"/>'
            f'<detail>{detail}<track course="{fix.course:.1f}" speed="{fix.speed_mps:.2f}"/>{mark}</detail></event>'
        ).encode()


def position_event(exercise_id: str, unit: Unit, fix: Fix, now_ms: int, stale_s: float) -> bytes:
    """One position report (see :class:`PositionEncoder`, which a runner keeps for all its reports)."""
    return PositionEncoder(exercise_id).encode(unit, fix, now_ms, stale_s)


def emergency_event(exercise_id: str, unit: Unit, inject: Inject, at: LatLon, now_ms: int, *,
                    cancel: bool) -> bytes:
    """An emergency raised (or cancelled) by ``unit``, as ATAK sends it (uid ``<unit uid>-9-1-1``)."""
    me = unit_uid(exercise_id, unit.id)
    cot_type = EMERGENCY_CANCEL if cancel else EMERGENCY_TYPES.get(inject.emergency_type, "b-a-o-c")
    body = (f'<emergency cancel="true">{_text(unit.callsign)}</emergency>' if cancel
            else f"<emergency type={quoteattr(inject.emergency_type)}>{_text(unit.callsign)}</emergency>")
    detail = (f'<link uid={quoteattr(me)} type={quoteattr(unit.type)} relation="p-p"/>'
              f"<contact callsign={quoteattr(unit.callsign + '-Alert')}/>{body}"
              f"{marker(exercise_id, unit.id, inject)}")
    return _event(exercise_id, f"{me}-9-1-1", cot_type, now_ms, 60.0, at, detail)


def chat_event(exercise_id: str, unit: Unit, inject: Inject, now_ms: int, to_uid: str | None = None) -> bytes:
    """A GeoChat message from ``unit``: to All Chat Rooms, or to ``inject.to`` (``to_uid`` when known)."""
    me = unit_uid(exercise_id, unit.id)
    if inject.to is None:
        room = chat_id = ALL_CHAT_ROOMS
        dest = ""
    else:
        room, chat_id = inject.to, to_uid or inject.to
        dest = f"<marti><dest callsign={quoteattr(inject.to)}/></marti>"
    detail = (
        f'<__chat parent="RootContactGroup" groupOwner="false" chatroom={quoteattr(room)} id={quoteattr(chat_id)} '
        f"senderCallsign={quoteattr(unit.callsign)}>"
        f"<chatgrp uid0={quoteattr(me)} uid1={quoteattr(chat_id)} id={quoteattr(chat_id)}/></__chat>"
        f'<link uid={quoteattr(me)} type={quoteattr(unit.type)} relation="p-p"/>'
        f"<remarks source={quoteattr('BAO.F.ATAK.' + me)} time=\"{cot_time(now_ms)}\">{_text(inject.text)}</remarks>"
        f"{marker(exercise_id, unit.id, inject)}{dest}"
    )
    uid = f"GeoChat.{me}.{room}.{uuid.uuid4()}"
    return _event(exercise_id, uid, "b-t-f", now_ms, 86_400.0, None, detail)


def marker_event(exercise_id: str, unit: Unit | None, inject: Inject, now_ms: int) -> bytes:
    """A map marker proposed by ``unit`` (or by the exercise control cell when None)."""
    creator = unit_uid(exercise_id, unit.id) if unit is not None else f"RP-EX-{exercise_id}"
    link = (f'<link uid={quoteattr(creator)} type={quoteattr(unit.type)} relation="p-p"/>'
            if unit is not None else "")
    detail = (f"<contact callsign={quoteattr(inject.title)}/>{link}<remarks>{_text(inject.text)}</remarks>"
              f"{marker(exercise_id, unit.id if unit else None, inject)}")
    return _event(exercise_id, f"{creator}.{inject.id}", inject.marker_type, now_ms, 3600.0, inject.position,
                  detail)


def record_event(exercise_id: str, unit_id: str | None, inject: Inject, now_ms: int, note: str = "") -> bytes:
    """The ``t-x-rp-exercise`` event recording an inject in history (stored, delivered to nobody)."""
    detail = marker(exercise_id, unit_id, inject) + (f"<remarks>{_text(note)}</remarks>" if note else "")
    uid = f"RP-EX-{exercise_id}.inject.{inject.id}.{now_ms}"
    return _event(exercise_id, uid, RECORD_TYPE, now_ms, 60.0, inject.position, detail)


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
