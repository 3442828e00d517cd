"""Who acknowledged which active emergency, per web user, and the ``Emergencies`` live message built from it.

An acknowledgement is a browser user's "I have seen it": it silences that user's alarm and tells every
other viewer who has seen it. It changes nothing in the TAK picture (the alert keeps repeating until an
approver cancels it), so it is kept here, in the node's memory, beside the feeds that show it: one
acknowledgement per principal and alert, forgotten with the alert.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from rallypoint.model.fix import has_fix
from rallypoint.routing.envelope import Envelope
from rallypoint.services.emergency import EmergencyService

if TYPE_CHECKING:
    from rallypoint.web.context import RequestIdentity

# Bounds the table whatever callers do: an alert is acknowledged by people, not by scripts.
MAX_ACKS_PER_ALERT = 256


class Ack(msgspec.Struct, frozen=True):
    """One acknowledgement: the principal and when (epoch ms)."""

    by: str
    time_ms: int


class ActiveEmergency(msgspec.Struct, frozen=True):
    """An active alert as the page shows it; ``position`` is ``[lon, lat]`` or null without a fix."""

    uid: str
    cot_type: str
    kind: str | None
    callsign: str | None
    sender_uid: str | None
    position: list[float] | None
    raised_ms: int
    acks: list[Ack]


class EmergenciesMessage(msgspec.Struct, frozen=True, tag_field="type", tag="Emergencies"):
    """The live message: every active alert the feed's caller may read, oldest first (replaces the last one)."""

    emergencies: list[ActiveEmergency]


class AckResult(msgspec.Struct, frozen=True):
    """``POST /api/emergencies/{uid}/ack``: the alert and everyone who acknowledged it so far."""

    uid: str
    acks: list[Ack]


class EmergencyAcks:
    """Acknowledgements of active alerts; listeners hear of each new one (the live feeds re-send their list)."""

    def __init__(self) -> None:
        self._acks: dict[str, dict[str, int]] = {}
        self._listeners: list[Callable[[], None]] = []

    def listen(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every new acknowledgement."""
        self._listeners.append(listener)

    def acknowledge(self, uid: str, principal: str, now_ms: int) -> bool:
        """Record that ``principal`` saw alert ``uid``; False when it already had (the first time counts)."""
        table = self._acks.setdefault(uid, {})
        if principal in table or len(table) >= MAX_ACKS_PER_ALERT:
            return False
        table[principal] = now_ms
        for listener in self._listeners:
            listener()
        return True

    def of(self, uid: str) -> list[Ack]:
        """Acknowledgements of ``uid`` in the order they came."""
        return [Ack(by=by, time_ms=t) for by, t in self._acks.get(uid, {}).items()]

    def forget_all_but(self, active: set[str] | dict[str, Envelope]) -> None:
        """Drop the acknowledgements of alerts that are no longer active."""
        for uid in [u for u in self._acks if u not in active]:
            del self._acks[uid]

    def visible(self, emergencies: EmergencyService, identity: RequestIdentity) -> EmergenciesMessage:
        """The ``Emergencies`` message for ``identity``: active alerts it may read (as ``GET /api/emergencies``)."""
        active = dict(emergencies.active)
        self.forget_all_but(active)
        out = []
        for uid, envelope in active.items():
            if not identity.can_read(envelope.origin.groups):
                continue
            event = envelope.event
            info = event.detail.emergency
            point = event.point
            out.append(ActiveEmergency(
                uid=uid, cot_type=event.type, kind=info.type if info is not None else None,
                callsign=event.detail.callsign, sender_uid=event.detail.link_uid,
                position=[point.lon, point.lat] if has_fix(point.lat, point.lon) else None,
                raised_ms=envelope.received_ms, acks=self.of(uid),
            ))
        out.sort(key=lambda e: (e.raised_ms, e.uid))
        return EmergenciesMessage(emergencies=out)
