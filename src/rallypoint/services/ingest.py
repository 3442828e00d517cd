"""The single entry point of the picture: every producer's events pass through ``Ingest.accept``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from rallypoint.bus.base import MessageBus
from rallypoint.clock import Clock
from rallypoint.model.cot_type import DELETE, is_persistent_item
from rallypoint.protocol.wire import WireFormat
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience, Router, to_sessions
from rallypoint.security.policy import Claim, IdentityPolicy, is_device_sa
from rallypoint.services.emergency import EmergencyService
from rallypoint.services.messages import chat_delivery_failure
from rallypoint.services.metrics import ServerMetrics, type_class
from rallypoint.services.presence import Presence
from rallypoint.storage.base import NO_GROUPS, StoredEvent, stored_event_from_cot
from rallypoint.storage.writer import BatchedEventWriter

log = logging.getLogger(__name__)


class Ingest:
    """Validate, update features, route, persist (batched, off the hot path) and publish."""

    def __init__(
        self,
        *,
        directory: Directory,
        router: Router,
        bus: MessageBus,
        presence: Presence,
        emergencies: EmergencyService,
        writer: BatchedEventWriter | None,
        metrics: ServerMetrics,
        clock: Clock,
        identity: IdentityPolicy | None = None,
    ) -> None:
        self._identity = identity
        self._hooks: list[Callable[[Envelope, Audience], object]] = []
        self._directory = directory
        self._router = router
        self._bus = bus
        self._presence = presence
        self._emergencies = emergencies
        self._writer = writer
        self._metrics = metrics
        self._clock = clock
        self._events_in = metrics.events_in

    def accept(self, envelope: Envelope) -> Audience:
        """Take one validated event into the picture and hand it to its audience.

        Raises :class:`~rallypoint.security.policy.IdentityRefused` (a ``RemoteProtocolError``)
        when the sender may not speak for the uid.
        """
        started = time.perf_counter()
        event = envelope.event
        if self._identity is not None:
            claim = self._identity.check(envelope.origin.session_id, envelope.origin.principal, event)
        else:
            claim = Claim.DEVICE if is_device_sa(event) else Claim.ITEM
        self._events_in[type_class(event.type)] += 1
        if (
            event.type == DELETE and event.detail.link_uid is not None and self._writer is not None
            and self._presence.may_delete(envelope)
        ):
            self._writer.submit_delete(event.detail.link_uid)
        pictured = self._presence.observe(envelope, claim)
        self._emergencies.observe(envelope)
        audience = self._router.route(envelope)
        if self._writer is not None and not envelope.repeat:
            self._writer.submit(self._stored(envelope, pictured))
        held = False
        for hook in self._hooks:
            # A hook answers True when it keeps the event for recipients that are offline.
            held = hook(envelope, audience) is True or held
        if audience.reaches_nobody and not held and event.type == "b-t-f":
            self._chat_failed(envelope, audience)
        self._bus.publish(envelope, audience)
        self._metrics.route_seconds.observe(time.perf_counter() - started)
        return audience

    def add_hook(self, hook: Callable[[Envelope, Audience], object]) -> None:
        """Call ``hook(envelope, audience)`` for every accepted event, after routing (features).

        A hook returns True when it keeps the event for later delivery (store-and-forward), which
        suppresses the chat delivery-failure notice.
        """
        self._hooks.append(hook)

    def republish(self, envelope: Envelope) -> None:
        """Deliver again without storing or updating features (emergency repeats)."""
        self._bus.publish(envelope, self._router.route(envelope))

    def _chat_failed(self, envelope: Envelope, audience: Audience) -> None:
        # Decided once, here at the origin: only this node knows the sender's session and whether
        # the chat was kept for an offline recipient; the notice itself travels like any delivery.
        sender = envelope.origin.session_id
        if self._directory.get(sender) is None:
            return
        dest = audience.unresolved[0] if audience.unresolved else None
        who = (dest.callsign or dest.uid or dest.group or "recipient") if dest else "recipient"
        now = self._clock.now_ms()
        notice = chat_delivery_failure(envelope.event, who, now)
        self._metrics.drops.labels("chat_unreachable").inc()
        self._bus.publish(Envelope(notice, envelope.origin, now), to_sessions(sender))

    def _stored(self, envelope: Envelope, pictured: bool) -> StoredEvent:
        event = envelope.event
        # The groups the event was broadcast to; none for addressed events, which are never
        # replayed to late joiners (that would widen their audience).
        broadcast = not event.detail.dests
        return stored_event_from_cot(
            event,
            received=envelope.received_ms,
            sender=envelope.origin.principal or envelope.origin.session_id,
            xml=envelope.wire(WireFormat.XML),
            groups=envelope.origin.groups if broadcast else NO_GROUPS,
            picture=pictured and broadcast,
        )


def is_replayable(cot_type: str) -> bool:
    """Stored types reloaded into the picture after a restart."""
    return is_persistent_item(cot_type)
