"""Emergencies: kept while active, re-broadcast periodically until cancelled, shown to late joiners."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

import msgspec

from rallypoint.clock import Clock
from rallypoint.model.cot_type import EMERGENCY_CANCEL, is_emergency
from rallypoint.routing.directory import Subscriber, can_reach
from rallypoint.routing.envelope import Envelope
from rallypoint.services.presence import may_change

log = logging.getLogger(__name__)

# Repeats carry a fresh stale time so receivers keep showing the alert between repeats.
REPEAT_STALE_MS = 15_000


class EmergencyService:
    """Tracks active emergency beacons by uid (ATAK uses ``<selfUid>-9-1-1`` for raise and cancel)."""

    def __init__(self, clock: Clock, *, repeat_s: float = 3.0, max_age_s: float = 86_400.0) -> None:
        self._clock = clock
        self.repeat_s = repeat_s
        self.max_age_ms = int(max_age_s * 1000)
        self.active: dict[str, Envelope] = {}
        self._stop = asyncio.Event()
        self.repeats = 0
        # Cancels and takeovers refused because their sender shares no group with the alert.
        self.refused = 0

    def observe(self, envelope: Envelope) -> None:
        """Raise or cancel an emergency from an accepted event."""
        event = envelope.event
        cancelled = event.type == EMERGENCY_CANCEL or (
            event.detail.emergency is not None and event.detail.emergency.cancel
        )
        if cancelled:
            removed = None
            link = event.detail.link_uid
            for uid, env in list(self.active.items()):
                # By uid, or alerts raised by the same device under another uid.
                matches = uid == event.uid or (link is not None and env.event.detail.link_uid == link)
                if matches and may_change(envelope.origin, env.origin):
                    del self.active[uid]
                    removed = removed or env
            if removed is not None:
                log.info("emergency cancelled", extra={"uid": event.uid})
            elif event.uid in self.active:
                self.refused += 1
                log.warning("emergency cancel from outside its groups ignored",
                            extra={"uid": event.uid, "session": envelope.origin.session_id})
            return
        if is_emergency(event.type):
            current = self.active.get(event.uid)
            if current is not None and not may_change(envelope.origin, current.origin):
                # Taking the uid over would move the repeats away from the alert's own groups.
                self.refused += 1
                log.warning("emergency uid held in other groups; not taken over",
                            extra={"uid": event.uid, "session": envelope.origin.session_id})
                return
            if current is None:
                log.warning(
                    "emergency raised",
                    extra={"uid": event.uid, "type": event.type, "callsign": event.detail.callsign},
                )
            self.active[event.uid] = envelope

    def visible_to(self, sub: Subscriber, now_ms: int) -> Iterator[Envelope]:
        """Active emergencies a newly connected subscriber may read, refreshed to be current."""
        for envelope in list(self.active.values()):
            if can_reach(envelope.origin.groups, sub.read_groups) and envelope.origin.session_id != sub.id:
                yield self._refreshed(envelope, now_ms)

    def _refreshed(self, envelope: Envelope, now_ms: int) -> Envelope:
        event = msgspec.structs.replace(
            envelope.event, time=now_ms, start=now_ms, stale=now_ms + REPEAT_STALE_MS, raw=None
        )
        return Envelope(event, envelope.origin, now_ms, priority=envelope.priority, repeat=True)

    async def run(
        self, republish: Callable[[Envelope], object], *, may_repeat: Callable[[], bool] = lambda: True
    ) -> None:
        """Re-broadcast every active emergency each ``repeat_s`` until :meth:`stop`.

        Every node keeps every alert, but in a cluster only the node holding the repeater lease
        re-broadcasts (``may_repeat``), so each receiver gets each repeat once; the others still
        expire old alerts, ready to take over when the holder goes away.
        """
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=self.repeat_s)
            except TimeoutError:
                pass
            if self._stop.is_set():
                return
            now = self._clock.now_ms()
            for uid, envelope in list(self.active.items()):
                if now - envelope.received_ms > self.max_age_ms:
                    del self.active[uid]
                    continue
                if not may_repeat():
                    continue
                self.repeats += 1
                republish(self._refreshed(envelope, now))

    def stop(self) -> None:
        self._stop.set()

