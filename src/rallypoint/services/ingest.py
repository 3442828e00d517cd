"""The single entry point of the picture: every producer's events pass through ``Ingest.accept``.

``accept`` decides, once, at the node the event entered: it validates the sender's identity,
binds a local session's uid, routes (addresses, and whether they reach anyone in the cluster) and
publishes. Everything that keeps state is a bus subscriber and runs on every node for every
publication, its own node's and others' (:meth:`Ingest.on_published`): the picture, emergencies
and the features (missions, mailbox, HTTP features). What only the origin can decide stays at the
origin inside that subscriber: the stored row (storage is written once, by the node the event
entered) and the chat delivery-failure notice (only that node knows the sender's session and
whether its mailbox kept the chat).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Container

import msgspec

from rallypoint.bus.base import MessageBus
from rallypoint.clock import Clock
from rallypoint.model.cot_type import DELETE, is_persistent_item
from rallypoint.protocol.wire import WireFormat
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import NOBODY, Audience, Router, to_sessions
from rallypoint.security.policy import Claim, IdentityPolicy, is_device_sa
from rallypoint.services.emergency import EmergencyService
from rallypoint.services.messages import chat_delivery_failure
from rallypoint.services.metrics import ServerMetrics
from rallypoint.services.presence import Presence
from rallypoint.storage.base import NO_GROUPS, StoredEvent, stored_event_from_cot
from rallypoint.storage.writer import BatchedEventWriter

log = logging.getLogger(__name__)
Hook = Callable[[Envelope, Audience], object]
# Distinct CoT types whose hook lists are remembered; a peer sending endless new types only makes
# the cache start over.
_MAX_HOOK_TYPES = 512
# Read once: an enum member lookup costs about 0.1 us on Python 3.11 (here once per stored event).
_XML = WireFormat.XML


class Ingest:
    """Validate, bind, route and publish; as a bus subscriber, keep the picture and features.

    Building it subscribes :meth:`on_published` to ``bus``: build it after the bus subscribers
    that must run first (the contact index) and before the dispatcher, so features see an event
    before its receivers do, as they did when they ran inside ``accept``.
    """

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
        self._hooks: list[tuple[Hook, Callable[[str], bool] | None, bool]] = []
        # The hooks that take each CoT type, in the order added (most hooks want few types): those
        # a broadcast calls, and those an addressed publication calls (every hook of the type).
        self._hooks_by_type: dict[str, tuple[list[Hook], list[Hook]]] = {}
        self._directory = directory
        self._router = router
        self._bus = bus
        self._presence = presence
        self._emergencies = emergencies
        self._writer = writer
        self._metrics = metrics
        self._clock = clock
        self._events_in = metrics.events_in
        self._node = bus.node
        # Uids whose cluster claim is undecided, and where their reports wait (services/claim_hold.py).
        self._held: Container[str] = frozenset()
        self._keep: Callable[[Envelope, Claim], object] = _keep_nothing
        bus.subscribe(self.on_published)

    def accept(self, envelope: Envelope) -> Audience:
        """Take one validated event into the picture and hand it to its audience.

        Raises :class:`~rallypoint.security.policy.IdentityRefused` (a ``RemoteProtocolError``)
        when the sender may not speak for the uid. An event of a uid whose cluster claim is
        undecided is held, not routed (``services/uid_claims.py``): it reaches nobody yet.
        """
        started = time.perf_counter()
        event = envelope.event
        if self._identity is not None:
            claim = self._identity.check(envelope.origin.session_id, envelope.origin.principal, event)
        else:
            claim = Claim.DEVICE if is_device_sa(event) else Claim.ITEM
        self._events_in[self._metrics.type_class(event.type)] += 1
        if event.uid in self._held:
            self._keep(envelope, claim)
            return NOBODY
        self._presence.bind(envelope, claim)
        audience = self._router.route(envelope)
        self._bus.publish(envelope, audience)
        self._metrics.route_seconds.observe(time.perf_counter() - started)
        return audience

    def hold_reports(self, held: Container[str], keep: Callable[[Envelope, Claim], object]) -> None:
        """From now on, ``keep(envelope, claim)`` an accepted event whose uid is ``in held`` instead of
        binding, routing and publishing it (a uid whose cluster claim is undecided); see :meth:`admit`.
        """
        self._held = held
        self._keep = keep

    def admit(self, envelope: Envelope, claim: Claim) -> Audience:
        """Bind, route and publish an event :meth:`accept` checked and held (its uid's claim was won)."""
        # The tail of accept, repeated there rather than called: accept is the hot path.
        self._presence.bind(envelope, claim)
        audience = self._router.route(envelope)
        self._bus.publish(envelope, audience)
        return audience

    def on_published(self, envelope: Envelope, audience: Audience) -> None:
        """The features, in order, for one publication of any node (a bus subscriber).

        1. storage delete of a ``t-x-d-d``'s target (origin only; checked before the picture
           forgets the target), 2. the picture (``Presence``), 3. the stored row (origin only),
        4. emergencies, 5. the hooks in the order added (HTTP features: Marti core, data
        packages, missions CoT fan-out, native API, live feed; then the mailbox and the no-fix
        counter), 6. the chat delivery-failure notice (origin only). Repeats (emergency
        re-broadcasts) and delivery-only publications (replies, kept mail, snapshots) are not
        new events of the picture: they are delivered and nothing else.
        """
        if envelope.repeat or audience.delivery_only:
            return
        event = envelope.event
        here = envelope.origin.node == self._node
        if not here and self._identity is not None:
            self._identity.learn(envelope.origin.principal, event)
        writer = self._writer if here else None
        if (
            writer is not None and event.type == DELETE and event.detail.link_uid is not None
            and self._presence.may_delete(envelope)
        ):
            writer.submit_delete(event.detail.link_uid)
        pictured = self._presence.observe(envelope)
        if writer is not None:
            writer.submit(self._stored(envelope, pictured))
        self._emergencies.observe(envelope)
        hooks = self._hooks_by_type.get(event.type)
        if hooks is None:
            hooks = self._hooks_for(event.type)
        held = False
        for hook in hooks[1] if audience.explicit else hooks[0]:
            # A hook answers True when it keeps the event for recipients that are offline.
            held = hook(envelope, audience) is True or held
        if here and audience.explicit and event.type == "b-t-f" and audience.reaches_nobody and not held:
            self._chat_failed(envelope, audience)

    def entered_here(self, envelope: Envelope) -> bool:
        """Whether ``envelope`` entered the picture at this node (what is decided once is decided here)."""
        return envelope.origin.node == self._node

    def deliver(self, envelope: Envelope, audience: Audience) -> None:
        """Publish a server-made envelope for delivery only (a reply, a notice, kept mail).

        It reaches the receivers ``audience`` names on every node and changes no state anywhere.
        """
        if not audience.delivery_only:
            audience = msgspec.structs.replace(audience, delivery_only=True)
        self._bus.publish(envelope, audience)

    def add_hook(
        self, hook: Hook, *, types: Callable[[str], bool] | None = None, addressed_only: bool = False
    ) -> None:
        """Call ``hook(envelope, audience)`` for every publication of any node, after the picture.

        A hook returns True when it keeps the event for later delivery (store-and-forward), which
        suppresses the chat delivery-failure notice. ``types``: the hook is only called for events
        whose CoT type this accepts (decided once per type), so the others do not pay for the call.
        ``addressed_only``: it is only called for addressed publications (``audience.explicit``),
        the hook of a feature that does nothing with a broadcast.
        """
        self._hooks.append((hook, types, addressed_only))
        self._hooks_by_type.clear()

    def _hooks_for(self, cot_type: str) -> tuple[list[Hook], list[Hook]]:
        taking = [(hook, addressed) for hook, types, addressed in self._hooks if types is None or types(cot_type)]
        hooks = ([hook for hook, addressed in taking if not addressed], [hook for hook, _ in taking])
        if len(self._hooks_by_type) >= _MAX_HOOK_TYPES:
            self._hooks_by_type.clear()
        self._hooks_by_type[cot_type] = hooks
        return hooks

    def republish(self, envelope: Envelope) -> None:
        """Deliver again without storing or updating features (emergency repeats).

        Every node keeps an alert (for late joiners); the one node holding the repeater lease
        repeats it, whichever node it entered: the repeat is this node's publication (the bus
        publishes no other node's envelope again) and reaches every node once.
        """
        if envelope.origin.node != self._node:
            # A repeat is a fresh envelope (EmergencyService makes one per repeat): ours to restamp.
            envelope.origin = msgspec.structs.replace(envelope.origin, node=self._node)
        self.deliver(envelope, self._router.route(envelope))

    def _chat_failed(self, envelope: Envelope, audience: Audience) -> None:
        sender = envelope.origin.session_id
        if self._directory.get(sender) is None:
            return
        dest = audience.unresolved[0] if audience.unresolved else None
        who = (dest.callsign or dest.uid or dest.group or "recipient") if dest else "recipient"
        now = self._clock.now_ms()
        notice = chat_delivery_failure(envelope.event, who, now)
        self._metrics.drops.labels("chat_unreachable").inc()
        self.deliver(Envelope(notice, envelope.origin, now), to_sessions(sender))

    def _stored(self, envelope: Envelope, pictured: bool) -> StoredEvent:
        event = envelope.event
        # The groups the event was broadcast to; none for addressed events, which are never
        # replayed to late joiners (that would widen their audience).
        broadcast = not event.detail.dests
        return stored_event_from_cot(
            event,
            received=envelope.received_ms,
            sender=envelope.origin.principal or envelope.origin.session_id,
            xml=envelope.wire(_XML),
            groups=envelope.origin.groups if broadcast else NO_GROUPS,
            picture=pictured and broadcast,
        )


def _keep_nothing(envelope: Envelope, claim: Claim) -> None:
    """Never called: nothing is held until ``hold_reports``."""


def is_replayable(cot_type: str) -> bool:
    """Stored types reloaded into the picture after a restart."""
    return is_persistent_item(cot_type)
