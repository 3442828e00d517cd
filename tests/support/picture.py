"""The routing core without sockets: real Directory, Router, LocalBus, Dispatcher, Presence,
EmergencyService and Ingest over a ManualClock, with receivers that record what they are offered."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from rallypoint.bus.local import LocalBus
from rallypoint.clock import ManualClock
from rallypoint.delivery.dispatcher import Dispatcher
from rallypoint.model.cot import CotEvent, Point
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import make_event, parse_event
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import ANON_GROUP, Envelope, Origin
from rallypoint.routing.router import Router
from rallypoint.security.policy import IdentityPolicy
from rallypoint.services.emergency import EmergencyService
from rallypoint.services.ingest import Ingest
from rallypoint.services.metrics import ServerMetrics
from rallypoint.services.presence import Presence
from tests.support.samples import SAMPLES

NODE = "node-a"
ANON = frozenset({ANON_GROUP})


@dataclass(eq=False)
class Receiver:
    """A subscriber (``routing.directory.Subscriber``) that keeps every envelope it is offered."""

    id: str
    read_groups: frozenset[str] = ANON
    write_groups: frozenset[str] = ANON
    principal: str | None = None
    is_relay: bool = False
    received: list[Envelope] = field(default_factory=list)

    def offer(self, envelope: Envelope) -> None:
        self.received.append(envelope)

    @property
    def origin(self) -> Origin:
        return Origin(session_id=self.id, groups=self.write_groups, principal=self.principal, node=NODE)

    def uids(self) -> list[str]:
        """Uids of the events received, in order."""
        return [e.event.uid for e in self.received]

    def types(self) -> list[str]:
        return [e.event.type for e in self.received]


def groups(*names: str) -> frozenset[str]:
    return frozenset(names)


def event(
    clock: ManualClock, uid: str, cot_type: str = "a-f-G-U-C", detail: str = "", *, stale_s: float = 60.0
) -> CotEvent:
    """An event stamped with the clock's time, built exactly as if received as XML."""
    now = clock.now_ms()
    return make_event(
        uid=uid, type=cot_type, how="m-g", time=now, start=now, stale=now + int(stale_s * 1000),
        point=Point(1.0, 2.0), detail_xml=detail.encode(),
    )


def device_sa(clock: ManualClock, uid: str, callsign: str, team: str | None = None) -> CotEvent:
    """A device's own SA (``<takv>`` + contact endpoint), as ATAK sends it."""
    group = f'<__group name="{team}" role="Team Member"/>' if team else ""
    return event(
        clock, uid, detail=f'<takv platform="ATAK-CIV"/><contact callsign="{callsign}" endpoint="*:-1:stcp"/>{group}'
    )


def marker(clock: ManualClock, uid: str, *, stale_s: float = 60.0) -> CotEvent:
    return event(clock, uid, "b-m-p-s-m", '<contact callsign="spot"/>', stale_s=stale_s)


def delete(clock: ManualClock, target: str, uid: str = "") -> CotEvent:
    return event(clock, uid or f"del-{target}", "t-x-d-d", f'<link uid="{target}" relation="p-p" type="b-m-p-s-m"/>')


def chat(
    clock: ManualClock, sender_uid: str, *, room: str, chat_id: str, parent: str = "RootContactGroup",
    members: tuple[str, ...] = (), marti: str = "",
) -> CotEvent:
    """A GeoChat as ATAK writes it; ``members`` are the recipients (chatgrp uid1..N)."""
    uids = " ".join(f'uid{i}="{m}"' for i, m in enumerate((sender_uid, *members)))
    detail = (
        f'<__chat parent="{parent}" groupOwner="false" chatroom="{room}" id="{chat_id}" senderCallsign="S">'
        f'<chatgrp {uids} id="{chat_id}"/></__chat>'
        f'<link uid="{sender_uid}" type="a-f-G-U-C" relation="p-p"/><remarks>hi</remarks>{marti}'
    )
    return event(clock, f"GeoChat.{sender_uid}.{room}.{clock.now_ms()}", "b-t-f", detail, stale_s=3600)


def sample(clock: ManualClock, name: str, *, stale_s: float = 3600.0) -> CotEvent:
    """A recorded sample, parsed as the server parses it, with times moved to the clock's now."""
    parsed = parse_event((SAMPLES / name).read_bytes(), Limits())
    now = clock.now_ms()
    return msgspec.structs.replace(parsed, time=now, start=now, stale=now + int(stale_s * 1000), raw=None)


@dataclass
class Picture:
    """Every in-memory component of a node's routing core, wired as ``build_node`` wires them."""

    clock: ManualClock
    directory: Directory
    router: Router
    bus: LocalBus
    dispatcher: Dispatcher
    presence: Presence
    emergencies: EmergencyService
    identity: IdentityPolicy
    metrics: ServerMetrics
    ingest: Ingest
    published: list[Envelope] = field(default_factory=list)

    def join(
        self, sub_id: str, read: frozenset[str] = ANON, write: frozenset[str] | None = None, *,
        principal: str | None = None, relay: bool = False,
    ) -> Receiver:
        """Connect a receiver (as ``SessionHub.joined`` does) and return it."""
        receiver = Receiver(sub_id, read, read if write is None else write, principal, relay)
        self.directory.add(receiver)
        self.identity.track_session(sub_id)
        return receiver

    def send(self, sender: Receiver, cot: CotEvent) -> Envelope:
        """What a session does with a received event: ``Ingest.accept`` with the session's origin."""
        envelope = Envelope(cot, sender.origin, self.clock.now_ms())
        self.ingest.accept(envelope)
        return envelope

    def identify(self, sender: Receiver, uid: str, callsign: str, team: str | None = None) -> None:
        """Send the receiver's own device SA so the directory knows its uid, callsign and team."""
        self.send(sender, device_sa(self.clock, uid, callsign, team))


def picture(clock: ManualClock | None = None) -> Picture:
    """A fresh routing core on a manual clock (nothing persisted)."""
    clock = clock or ManualClock()
    directory = Directory()
    router = Router(directory)
    bus = LocalBus(NODE)
    dispatcher = Dispatcher(directory)
    bus.subscribe(dispatcher.deliver)
    presence = Presence(directory)
    emergencies = EmergencyService(clock, repeat_s=3.0)
    identity = IdentityPolicy()
    metrics = ServerMetrics()
    ingest = Ingest(
        directory=directory, router=router, bus=bus, presence=presence, emergencies=emergencies,
        writer=None, metrics=metrics, clock=clock, identity=identity,
    )
    built = Picture(clock, directory, router, bus, dispatcher, presence, emergencies, identity, metrics, ingest)
    bus.subscribe(lambda envelope, audience: built.published.append(envelope))
    return built
