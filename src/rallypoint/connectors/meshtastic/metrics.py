"""The Meshtastic gateways on ``/metrics``: packets, drops by reason, airtime sent, link state, queue."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from rallypoint.connectors.meshtastic.gateway import MeshGateway


def mesh_families(gateways: Sequence[MeshGateway]) -> Iterable[Metric]:
    """Metric families of every gateway, labelled by mesh name."""
    packets = CounterMetricFamily("rallypoint_mesh_packets", "Packets heard from each mesh", labels=["mesh"])
    accepted = CounterMetricFamily("rallypoint_mesh_accepted", "Events each mesh brought into the picture",
                                   labels=["mesh"])
    dropped = CounterMetricFamily("rallypoint_mesh_dropped", "Packets from each mesh dropped, by reason",
                                  labels=["mesh", "reason"])
    sent = CounterMetricFamily("rallypoint_mesh_sent", "Packets sent into each mesh", labels=["mesh"])
    airtime = CounterMetricFamily("rallypoint_mesh_airtime_bytes",
                                  "Bytes charged to each mesh's budget (payload + radio header)", labels=["mesh"])
    acked = CounterMetricFamily("rallypoint_mesh_acked", "Packets the mesh acknowledged", labels=["mesh"])
    coalesced = CounterMetricFamily("rallypoint_mesh_coalesced", "Positions replaced by newer ones while waiting",
                                    labels=["mesh"])
    connected = GaugeMetricFamily("rallypoint_mesh_connected", "1 while the mesh link is open", labels=["mesh"])
    pending = GaugeMetricFamily("rallypoint_mesh_pending", "Packets waiting for the mesh's budget", labels=["mesh"])
    for g in gateways:
        name = [g.spec.name]
        packets.add_metric(name, g.counters["packets"])
        accepted.add_metric(name, g.counters["accepted"])
        for reason, n in sorted(g.dropped.items()):
            dropped.add_metric([g.spec.name, reason], n)
        sent.add_metric(name, g.counters["sent"])
        airtime.add_metric(name, g.budget.sent_bytes)
        acked.add_metric(name, g.counters["acked"])
        coalesced.add_metric(name, g.budget.coalesced)
        connected.add_metric(name, 1.0 if g.connected.is_set() else 0.0)
        pending.add_metric(name, g.budget.pending())
    yield from (packets, accepted, dropped, sent, airtime, acked, coalesced, connected, pending)
