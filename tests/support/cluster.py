"""Several routing cores sharing one in-process bus fan-out: a cluster without sockets or NATS.

Each :class:`ClusterNode` is wired as ``build_node`` wires a node (its own Directory, contact
index, Router, Dispatcher, Presence, EmergencyService, Ingest and SessionHub); :class:`FanOut`
hands every publication to the handlers of every node, as the NATS bus does, synchronously.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from rallypoint.bus.base import DeliveryHandler
from rallypoint.bus.local import BusStatistics
from rallypoint.clock import ManualClock
from rallypoint.delivery.dispatcher import Dispatcher
from rallypoint.model.cot import CotEvent
from rallypoint.routing.contacts import ContactIndex
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience, Router
from rallypoint.security.policy import IdentityPolicy
from rallypoint.services.emergency import EmergencyService
from rallypoint.services.ingest import Ingest
from rallypoint.services.metrics import ServerMetrics
from rallypoint.services.presence import Presence
from rallypoint.services.sessions import SessionHub
from tests.support.picture import ANON, Receiver, device_sa


class FanOut:
    """The cluster's bus: what one node publishes, every node's handlers get, in node order."""

    def __init__(self) -> None:
        self.buses: list[NodeBus] = []
        self.published: list[tuple[Envelope, Audience]] = []

    def bus(self, node: str) -> NodeBus:
        bus = NodeBus(self, node)
        self.buses.append(bus)
        return bus

    def carry(self, envelope: Envelope, audience: Audience) -> None:
        self.published.append((envelope, audience))
        for bus in self.buses:
            for handler in bus.handlers:
                handler(envelope, audience)


class NodeBus:
    """One node's ``MessageBus`` on the fan-out; stamps its node on envelopes that name none."""

    def __init__(self, fanout: FanOut, node: str) -> None:
        self.node = node
        self.handlers: list[DeliveryHandler] = []
        self._fanout = fanout
        self.published = 0

    async def start(self) -> None:
        return None

    def statistics(self) -> BusStatistics:
        return BusStatistics(published=self.published, foreign_refused=0)

    def subscribe(self, handler: DeliveryHandler, *, cluster_only: bool = False) -> None:
        self.handlers.append(handler)

    def publish(self, envelope: Envelope, audience: Audience) -> None:
        if not envelope.origin.node:
            envelope.origin = msgspec.structs.replace(envelope.origin, node=self.node)
        assert envelope.origin.node == self.node, "a node publishes only its own envelopes"
        self.published += 1
        self._fanout.carry(envelope, audience)

    async def close(self) -> None:
        self.handlers.clear()


@dataclass(eq=False)
class NodeReceiver(Receiver):
    """A receiver connected to one node of the cluster."""

    node: str = ""

    @property
    def origin(self) -> Origin:
        return Origin(session_id=self.id, groups=self.write_groups, principal=self.principal, node=self.node,
                      read_groups=self.read_groups)


@dataclass
class ClusterNode:
    """One node's routing core on the shared fan-out."""

    name: str
    clock: ManualClock
    directory: Directory
    contacts: ContactIndex
    dispatcher: Dispatcher
    presence: Presence
    ingest: Ingest
    hub: SessionHub
    bus: NodeBus
    receivers: dict[str, NodeReceiver] = field(default_factory=dict)

    def join(self, name: str, read: frozenset[str] = ANON, write: frozenset[str] | None = None) -> NodeReceiver:
        """Connect a receiver to this node (as a stream session does) and return it."""
        receiver = NodeReceiver(f"{self.name}:{name}", read, read if write is None else write, node=self.name)
        self.receivers[name] = receiver
        for envelope in self.hub.joined(receiver):
            receiver.offer(envelope)
        return receiver

    def leave(self, receiver: NodeReceiver) -> None:
        self.hub.left(receiver)

    def send(self, sender: NodeReceiver, cot: CotEvent) -> Envelope:
        envelope = Envelope(cot, sender.origin, self.clock.now_ms())
        self.ingest.accept(envelope)
        return envelope

    def identify(self, sender: NodeReceiver, uid: str, callsign: str, team: str | None = None) -> None:
        self.send(sender, device_sa(self.clock, uid, callsign, team))


def cluster(*names: str, clock: ManualClock | None = None) -> tuple[FanOut, list[ClusterNode]]:
    """Nodes named ``names`` sharing one fan-out bus and one clock."""
    clock = clock or ManualClock()
    fanout = FanOut()
    return fanout, [_node(name, fanout, clock) for name in names]


def _node(name: str, fanout: FanOut, clock: ManualClock) -> ClusterNode:
    directory = Directory()
    contacts = ContactIndex(directory, name)
    bus = fanout.bus(name)
    dispatcher = Dispatcher(directory)
    bus.subscribe(contacts.observe)
    presence = Presence(directory)
    emergencies = EmergencyService(clock, repeat_s=3.0)
    identity = IdentityPolicy()
    ingest = Ingest(
        directory=directory, router=Router(directory, contacts), bus=bus, presence=presence, emergencies=emergencies,
        writer=None, metrics=ServerMetrics(), clock=clock, identity=identity,
    )
    bus.subscribe(dispatcher.deliver)
    hub = SessionHub(directory=directory, presence=presence, emergencies=emergencies, ingest=ingest, clock=clock,
                     identity=identity)
    return ClusterNode(name, clock, directory, contacts, dispatcher, presence, ingest, hub, bus)
