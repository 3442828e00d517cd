"""Pick the bus from the ``--bus`` setting: ``local`` (the default) or ``nats://host:port``.

``local`` hands envelopes over in-process (one node). ``nats://`` (or ``tls://``, several
servers separated by commas) joins a cluster of nodes sharing one NATS server or cluster with
JetStream enabled; the names it uses are in ``bus/subjects.py``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from rallypoint.bus.base import MessageBus
from rallypoint.bus.jetstream_config import split_bus_url
from rallypoint.bus.lease import AlwaysHeld, Lease, NodeAlive
from rallypoint.bus.local import LocalBus
from rallypoint.bus.nats import NatsBus
from rallypoint.errors import ConfigError

NATS_SCHEMES = ("nats", "tls")


def open_bus(url: str, node: str) -> MessageBus:
    """The bus named by ``url`` for ``node``; ``ConfigError`` when it names none we have."""
    if url == "local":
        return LocalBus(node)
    # JetStream settings (replicas, storage, max_age, cluster) follow the last server: bus/jetstream_config.py.
    joined, jetstream = split_bus_url(url)
    servers = [part.strip() for part in joined.split(",")]
    for server in servers:
        parts = urlsplit(server)
        if parts.scheme not in NATS_SCHEMES or not parts.hostname:
            raise ConfigError(f"bus {url!r}: use 'local' or nats://host:port (several separated by commas)")
    return NatsBus(
        ",".join(servers), node, cluster=jetstream.cluster, replicas=jetstream.replicas,
        storage=jetstream.storage_type, stream_max_age_s=jetstream.max_age_s,
    )


async def start_bus(bus: MessageBus) -> None:
    """Connect a network bus before the node serves; the local bus needs nothing."""
    await bus.start()


def lease_of(bus: MessageBus, name: str) -> Lease:
    """The cluster-wide lease ``name`` on a started bus; a lone node (the local bus) always holds it."""
    if isinstance(bus, NatsBus):
        return bus.lease(name)
    return AlwaysHeld()


def liveness_of(bus: MessageBus) -> tuple[Lease, NodeAlive] | None:
    """This node's liveness key and the check of another node's, on a cluster bus; None when alone."""
    if isinstance(bus, NatsBus):
        return bus.heartbeat(), bus.node_alive
    return None


def bus_gauges(bus: MessageBus) -> list[tuple[str, str, float]]:
    """Gauges of a network bus for ``/metrics`` (none for the local bus)."""
    if not isinstance(bus, NatsBus):
        return []
    stats = bus.statistics()
    return [
        ("rallypoint_bus_pending", "Envelopes waiting to be sent to NATS (queued or unacknowledged)",
         float(stats.pending)),
        ("rallypoint_bus_connected", "1 while the bus is connected to NATS", float(stats.connected)),
    ]


def bus_counters(bus: MessageBus) -> list[tuple[str, str, float]]:
    """Counters of a network bus for ``/metrics`` (none for the local bus)."""
    if not isinstance(bus, NatsBus):
        return []
    stats = bus.statistics()
    return [
        ("rallypoint_bus_sent", "Envelopes of this node written (core) or acknowledged (JetStream) by NATS",
         float(stats.sent)),
        ("rallypoint_bus_received", "Envelopes of other nodes received from NATS", float(stats.received)),
        ("rallypoint_bus_duplicates", "Messages from NATS seen before (redeliveries), not handed over again",
         float(stats.duplicates)),
        ("rallypoint_bus_reconnects", "Reconnections to NATS", float(stats.reconnects)),
    ]


def bus_drops(bus: MessageBus) -> list[tuple[str, float]]:
    """A network bus's losses by reason, for ``rallypoint_drops_total{reason="bus_<reason>"}``."""
    if not isinstance(bus, NatsBus):
        return []
    return [(f"bus_{reason}", float(count)) for reason, count in sorted(bus.statistics().dropped.items())]
