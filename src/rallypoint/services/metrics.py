"""Prometheus metrics on an explicit registry (no global state).

Per-delivery counts are kept as plain integers by the components that do the work and read at
scrape time by a collector: a labelled counter increment per delivery would cost more than the
delivery itself at hundreds of thousands of deliveries per second.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rallypoint.model.cot_type import is_atom, is_chat, is_emergency, is_persistent_item
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience
from rallypoint.services.histogram import LoopHistogram

# Distinct CoT types remembered with their class; past this, types are classified on every call
# (a client sending random types must not grow memory).
_CLASS_CACHE_MAX = 4096

TYPE_CLASSES = ("ping", "delete", "emergency", "chat", "position", "map_item", "file_transfer", "tasking", "other")


def type_class(cot_type: str) -> str:
    """A bounded label for a CoT type (clients can send arbitrary types; labels must not explode)."""
    if cot_type.startswith("t-x-c-t"):
        return "ping"
    if cot_type == "t-x-d-d":
        return "delete"
    if is_emergency(cot_type) or cot_type == "b-a-o-can":
        return "emergency"
    if is_chat(cot_type):
        return "chat"
    if is_atom(cot_type):
        return "position"
    if is_persistent_item(cot_type):
        return "map_item"
    if cot_type.startswith("b-f-t"):
        return "file_transfer"
    if cot_type.startswith("t-"):
        return "tasking"
    return "other"


Deliver = Callable[[Envelope, Audience], int]
DropSource = Callable[[], Iterable[tuple[str, float]]]


class _CallbackCollector(Collector):
    def __init__(self, produce: Callable[[], Iterable[Metric]]) -> None:
        self._produce = produce

    def collect(self) -> Iterable[Metric]:
        return self._produce()


class ServerMetrics:
    """Every metric the server exports."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = Gauge("rallypoint_connections", "Open client connections", ["transport"], registry=r)
        self.connections_total = Counter(
            "rallypoint_connections_opened", "Client connections accepted", ["transport"], registry=r
        )
        # Counted per event on the hot path: plain integers, exported at scrape time (a prometheus
        # Counter takes a lock per increment).
        self.events_in: dict[str, int] = dict.fromkeys(TYPE_CLASSES, 0)
        self.events_out: dict[str, int] = dict.fromkeys(TYPE_CLASSES, 0)
        self._classes: dict[str, str] = {}
        self.rejected = Counter(
            "rallypoint_events_rejected", "Input rejected, by reason", ["reason", "transport"], registry=r
        )
        self.tolerated = Counter(
            "rallypoint_input_tolerated", "Input accepted with parts ignored (e.g. protobuf fields from newer "
            "clients), by reason", ["reason", "transport"], registry=r,
        )
        # Drops counted where they happen; exported together with every other component's drops as
        # one rallypoint_drops_total{reason} family (see add_drops), so it is not registered itself.
        self.drops = Counter("rallypoint_drops", "Events dropped, by reason", ["reason"], registry=None)
        self._drop_sources: list[DropSource] = [self._rejected_total]
        self.drops.labels("chat_unreachable")  # exported at 0 before the first one
        self.sessions_closed = Counter(
            "rallypoint_sessions_closed", "Sessions closed by the server, by reason", ["reason"], registry=r
        )
        self.protocol_upgrades = Counter(
            "rallypoint_protocol_upgrades", "Streams switched to TAK Protocol v1", registry=r
        )
        # Observed once per event: a lock-free histogram exported at scrape time (see histogram.py).
        self.route_seconds = LoopHistogram(
            "rallypoint_route_seconds",
            "Time from receiving an event to handing it to every local receiver",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        r.register(_CallbackCollector(self.route_seconds.collect))
        r.register(_CallbackCollector(self._collect_events))
        r.register(_CallbackCollector(self._collect_drops))

    def _collect_events(self) -> Iterable[Metric]:
        family = CounterMetricFamily("rallypoint_events_in", "Events accepted, by type class", labels=["type"])
        for label, value in self.events_in.items():
            family.add_metric([label], value)
        yield family
        family = CounterMetricFamily(
            "rallypoint_events_out", "Events handed to receivers, by type class", labels=["type"]
        )
        for label, value in self.events_out.items():
            family.add_metric([label], value)
        yield family

    def type_class(self, cot_type: str) -> str:
        """:func:`type_class`, remembered for the types seen most (the bounded cache stops growing)."""
        label = self._classes.get(cot_type)
        if label is None:
            label = type_class(cot_type)
            if len(self._classes) < _CLASS_CACHE_MAX:
                self._classes[cot_type] = label
        return label

    def count_deliveries(self, deliver: Deliver) -> Deliver:
        """Wrap the dispatcher's ``deliver``: count hand-offs per type class (one dict add per envelope)."""
        events_out = self.events_out
        classes = self._classes
        classify = self.type_class

        def counted(envelope: Envelope, audience: Audience) -> int:
            count = deliver(envelope, audience)
            if count:
                cot_type = envelope.event.type
                events_out[classes.get(cot_type) or classify(cot_type)] += count
            return count

        return counted

    def add_drops(self, produce: DropSource) -> None:
        """Register a callback yielding cumulative ``(reason, count)`` drops for ``rallypoint_drops_total``."""
        self._drop_sources.append(produce)

    def _rejected_total(self) -> Iterable[tuple[str, float]]:
        total = 0.0
        for metric in self.rejected.collect():
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
        return [("rejected_input", total)]

    def _collect_drops(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "rallypoint_drops", "Events that reached nobody or were discarded, by reason", labels=["reason"]
        )
        totals: dict[str, float] = {}
        for metric in self.drops.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    reason = sample.labels["reason"]
                    totals[reason] = totals.get(reason, 0.0) + sample.value
        for produce in self._drop_sources:
            for reason, value in produce():
                totals[reason] = totals.get(reason, 0.0) + value
        for reason, value in sorted(totals.items()):
            family.add_metric([reason], value)
        yield family

    def add_collector(self, produce: Callable[[], Iterable[Metric]]) -> None:
        """Register a callback yielding whole metric families (labelled ones) at scrape time."""
        self.registry.register(_CallbackCollector(produce))

    def add_gauges(self, produce: Callable[[], Iterable[tuple[str, str, float]]]) -> None:
        """Register a callback yielding ``(name, help, value)`` gauges read at scrape time."""

        def collect() -> Iterable[Metric]:
            for name, doc, value in produce():
                family = GaugeMetricFamily(name, doc)
                family.add_metric([], value)
                yield family

        self.registry.register(_CallbackCollector(collect))

    def add_counters(self, produce: Callable[[], Iterable[tuple[str, str, float]]]) -> None:
        """Register a callback yielding ``(name, help, value)`` counters read at scrape time."""

        def collect() -> Iterable[Metric]:
            for name, doc, value in produce():
                family = CounterMetricFamily(name, doc)
                family.add_metric([], value)
                yield family

        self.registry.register(_CallbackCollector(collect))
