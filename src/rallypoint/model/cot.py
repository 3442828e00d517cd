"""The Cursor-on-Target event as the server sees it.

Times are integer milliseconds since the Unix epoch (UTC): that is what TAK Protocol v1 carries,
it is exact, and it compares and sorts cheaply on the hot path. Use ``clock.ms_to_datetime`` at
human-facing edges.

Only what routing and the features need is parsed into fields; everything else of ``<detail>``
stays as XML in ``Detail.xml`` so nothing a client sent is lost.
"""

from __future__ import annotations

import msgspec

from rallypoint.model.exercise import BadExercise, ExerciseMark, exercise_id

UNKNOWN_ERROR = 9999999.0


class Point(msgspec.Struct, frozen=True, gc=False):
    """``<point>``: WGS-84 position, height above ellipsoid and errors in metres."""

    lat: float
    lon: float
    hae: float = UNKNOWN_ERROR
    ce: float = UNKNOWN_ERROR
    le: float = UNKNOWN_ERROR


class Dest(msgspec.Struct, frozen=True, gc=False):
    """One ``<marti><dest .../></marti>`` entry: explicit addressing."""

    callsign: str | None = None
    uid: str | None = None
    group: str | None = None
    mission: str | None = None


class ChatInfo(msgspec.Struct, frozen=True, gc=False):
    """The addressing part of a GeoChat ``<__chat>`` element."""

    chatroom: str
    chat_id: str
    parent: str | None = None
    sender_callsign: str | None = None
    group_owner: bool = False
    # chatgrp uid0 is the sender; uid1..uidN are the recipients.
    members: tuple[str, ...] = ()


class EmergencyInfo(msgspec.Struct, frozen=True, gc=False):
    """``<emergency type="911 Alert">CALLSIGN</emergency>`` or ``<emergency cancel="true">``."""

    type: str | None = None
    cancel: bool = False


class Detail(msgspec.Struct, frozen=True, gc=False):
    """Parsed views of ``<detail>`` plus the rest of it as XML.

    ``xml`` holds the children of ``<detail>`` as XML (possibly in the sender's own spelling of
    quotes and empty elements) without the wrapper element and without ``<marti>`` (addressing
    is consumed by the server and never forwarded, as TAK Server does).
    ``has_marti`` records that a ``<marti>`` element was present (empty ``<marti/>`` means broadcast).
    """

    xml: bytes = b""
    callsign: str | None = None
    endpoint: str | None = None
    group_name: str | None = None
    group_role: str | None = None
    has_marti: bool = False
    dests: tuple[Dest, ...] = ()
    chat: ChatInfo | None = None
    link_uid: str | None = None
    link_type: str | None = None
    link_relation: str | None = None
    emergency: EmergencyInfo | None = None
    battery: int | None = None
    speed: float | None = None
    course: float | None = None
    platform: str | None = None
    # A ``<takv>`` element was present: the sending device describes itself (its own SA).
    takv: bool = False
    # ``<__rallypoint_exercise>``: the event is simulated traffic of a scripted exercise (model.exercise).
    exercise: ExerciseMark | None = None


class CotEvent(msgspec.Struct, frozen=True, gc=False):
    """One validated CoT event.

    ``raw`` is the original ``<event>...</event>`` bytes (no XML declaration) when the event arrived
    as XML; encoders forward it unchanged when nothing has to be stripped, so an XML client sees
    exactly what the sender wrote.
    """

    uid: str
    type: str
    how: str
    time: int
    start: int
    stale: int
    point: Point
    detail: Detail = Detail()
    access: str | None = None
    qos: str | None = None
    opex: str | None = None
    raw: bytes | None = None

    @property
    def exercise(self) -> str | None:
        """The exercise this event belongs to (``opex`` and the detail marker), ``None`` for live traffic.

        The decoders reject malformed marking, so this does not raise for a decoded event.
        """
        if self.opex is None and self.detail.exercise is None:
            return None
        try:
            return exercise_id(self.opex, self.detail.exercise)
        except BadExercise:
            return None

    def is_stale(self, now_ms: int) -> bool:
        """True once the event's validity has ended."""
        return self.stale <= now_ms
