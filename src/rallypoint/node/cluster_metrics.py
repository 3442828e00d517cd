"""``/metrics`` of the cluster machinery: leases, dead-node removals and the picture's mirror in NATS.

Read at scrape time from the plain counters the components keep (``KvLease``, ``NodeWatch``,
``LatestSync``). A lone node (local bus) exports only the repeater lease, which it always holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from rallypoint.bus.lease import EMERGENCY_REPEATER, Lease
from rallypoint.services.latest_sync import LatestSync
from rallypoint.services.node_watch import NodeWatch

# The liveness key's name carries the node id; the label names its role, so every node exports the same series.
LIVENESS = "liveness"


@dataclass(frozen=True)
class ClusterMetrics:
    """The cluster components of one node, read for ``ServerMetrics.add_collector``."""

    repeater: Lease
    liveness: Lease | None = None
    watch: NodeWatch | None = None
    mirror: LatestSync | None = None

    def families(self) -> Iterable[Metric]:
        """Every family, built from the components' counters now."""
        leases = [(EMERGENCY_REPEATER, self.repeater)]
        if self.liveness is not None:
            leases.append((LIVENESS, self.liveness))
        yield _labelled(GaugeMetricFamily, "rallypoint_lease_held", "1 while this node holds the lease",
                        [(name, float(lease.held)) for name, lease in leases])
        yield _labelled(CounterMetricFamily, "rallypoint_lease_taken", "Times this node took the lease",
                        [(name, float(lease.taken)) for name, lease in leases])
        yield _labelled(CounterMetricFamily, "rallypoint_lease_renewals", "Renewals of the lease by this node",
                        [(name, float(lease.renewed)) for name, lease in leases])
        yield _labelled(CounterMetricFamily, "rallypoint_lease_lost",
                        "Times this node lost the lease (taken by another node, or NATS did not answer)",
                        [(name, float(lease.lost)) for name, lease in leases])
        if self.watch is not None:
            yield _single(CounterMetricFamily, "rallypoint_cluster_nodes_removed",
                          "Nodes found dead (liveness key gone) whose clients this node removed",
                          self.watch.nodes_removed)
            yield _single(CounterMetricFamily, "rallypoint_cluster_clients_removed",
                          "Disconnect notices published for clients of dead nodes", self.watch.removed)
        if self.mirror is not None:
            yield _single(CounterMetricFamily, "rallypoint_picture_sync_written",
                          "Entries written to the cluster's picture in NATS", self.mirror.written)
            yield _single(CounterMetricFamily, "rallypoint_picture_sync_deleted",
                          "Entries deleted from the cluster's picture in NATS", self.mirror.deleted)
            yield _single(CounterMetricFamily, "rallypoint_picture_sync_failed",
                          "Writes to the cluster's picture in NATS that failed (kept for the next flush)",
                          self.mirror.failed)
            yield _single(GaugeMetricFamily, "rallypoint_picture_sync_pending",
                          "Uids whose change waits to be written to the cluster's picture in NATS",
                          self.mirror.pending)


Family = Callable[..., CounterMetricFamily | GaugeMetricFamily]


def _labelled(kind: Family, name: str, doc: str, values: list[tuple[str, float]]) -> Metric:
    family = kind(name, doc, labels=["lease"])
    for label, value in values:
        family.add_metric([label], value)
    return family


def _single(kind: Family, name: str, doc: str, value: float) -> Metric:
    family = kind(name, doc)
    family.add_metric([], float(value))
    return family
