"""Federation as a node feature: the gRPC listener, outbound dialers, per-link state and ``/api/links``.

Trust is separate from client trust: the listener accepts client certificates issued by a CA in
``<data_dir>/federation/truststore.pem`` or in a configured peer's ``ca`` file, and only peers that
match a configured ``federation_peers`` entry (by issuing CA) may open streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc
from cryptography import x509
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from starlette.routing import BaseRoute

from rallypoint.clock import Clock
from rallypoint.config import FederationPeer, Settings
from rallypoint.errors import ConfigError
from rallypoint.federation.dedup import RecentReports
from rallypoint.federation.link import LinkState, PeerLink
from rallypoint.federation.links_api import links_routes
from rallypoint.federation.order import SameTimeOrder
from rallypoint.federation.transport import KEEPALIVE_OPTIONS, FederationServicer, PeerMatcher, dial
from rallypoint.protocol.fig import fig_pb2_grpc
from rallypoint.protocol.limits import Limits
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience
from rallypoint.storage.base.federation import FederationRecords

log = logging.getLogger(__name__)


def federation_node_id(settings: Settings, ca_pem: bytes) -> str:
    """Our id on federation links: ``node_id``, made unique by the CA when left at its default."""
    if settings.node_id != "rallypoint":
        return settings.node_id
    return "rallypoint-" + hashlib.sha256(ca_pem).hexdigest()[:12]


class Federation:
    """Every federation link of this node; a web Feature (routes, run, close)."""

    def __init__(
        self,
        settings: Settings,
        *,
        data_dir: Path,
        store: FederationRecords,
        server_cert: Path,
        server_key: Path,
        ca_pem: bytes,
        directory: Directory,
        accept: Callable[[Envelope], object],
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._dir = data_dir / "federation"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._cert = server_cert.read_bytes()
        self._key = server_key.read_bytes()
        self._ca_pem = ca_pem
        self._directory = directory
        self._clock = clock
        self.node_id = federation_node_id(settings, ca_pem)
        self._store = store
        self._seen: dict[tuple[str, str], int] = {}
        self.recent = RecentReports()
        self.ties = SameTimeOrder()
        self._stop = asyncio.Event()
        self._server: grpc.aio.Server | None = None
        limits = Limits(max_event_bytes=settings.max_event_bytes)
        self._peer_cas: dict[str, bytes] = {}
        self.links: list[PeerLink] = []
        for peer in settings.federation_peers:
            if peer.ca:
                try:
                    self._peer_cas[peer.name] = Path(peer.ca).read_bytes()
                except OSError as exc:
                    raise ConfigError(f"federation peer {peer.name!r}: cannot read ca {peer.ca}: {exc}") from exc
            self.links.append(PeerLink(
                peer, node_id=self.node_id, store=self._store, seen=self._seen, accept=accept, clock=clock,
                limits=limits, max_hops=settings.federation_max_hops, queue_max=settings.federation_queue_max,
                budget_bytes_per_s=link_budget(peer, settings), recent=self.recent, ties=self.ties,
            ))
            # Subscribed from the start: what clients send before run() has loaded the queue is kept.
            directory.add(self.links[-1])

    # Feature protocol ----------------------------------------------------------------------------
    @property
    def routes(self) -> Sequence[BaseRoute]:
        return links_routes(self.snapshot)

    def observe(self, envelope: Envelope, audience: Audience) -> None:
        return None

    async def run(self) -> None:
        """Restore queues, register links with the router, dial outbound peers, expire contacts."""
        self._seen.update(await self._store.seen())
        for link in self.links:
            await link.load()
        async with asyncio.TaskGroup() as tg:
            for link in self.links:
                tg.create_task(link.run_persister(), name=f"federation-persist-{link.name}")
                if link.peer.host:
                    tg.create_task(dial(
                        link, node_id=self.node_id, credentials=self._client_credentials(link.name),
                        stop=self._stop, delay_s=self._settings.federation_connect_delay_s,
                        backoff_max_s=self._settings.federation_backoff_max_s, sleep=_sleep,
                    ), name=f"federation-dial-{link.name}")
            tg.create_task(self._sweep(), name="federation-contacts")
            await self._stop.wait()
            for link in self.links:
                link.close()

    async def close(self) -> None:
        """Stop dialing and listening; the queues stay on disk for the next start."""
        self._stop.set()
        for link in self.links:
            link.close()
        if self._server is not None:
            await self._server.stop(grace=1.0)
        for link in self.links:
            self._directory.remove(link.id)

    async def close_store(self) -> None:
        """Close the database once :meth:`run` has returned."""
        await self._store.close()

    # Listener ------------------------------------------------------------------------------------
    async def start_listener(self, host: str, port: int) -> int:
        """Listen for inbound peers with mutual TLS; returns the bound port."""
        trust = self._trust_bundle()
        creds = grpc.ssl_server_credentials(
            [(self._key, self._cert)], root_certificates=trust, require_client_auth=True
        )
        cas = {name: _certs(pem) for name, pem in self._peer_cas.items()}
        server = grpc.aio.server(options=KEEPALIVE_OPTIONS)
        fig_pb2_grpc.add_FederatedChannelServicer_to_server(
            FederationServicer(self.node_id, PeerMatcher(self.links, cas)), server
        )
        bound = int(server.add_secure_port(f"{host}:{port}", creds))
        if bound == 0:
            raise OSError(f"cannot bind federation port {host}:{port}")
        await server.start()
        self._server = server
        return bound

    def _trust_bundle(self) -> bytes:
        path = self._dir / "truststore.pem"
        parts = [path.read_bytes()] if path.exists() else []
        parts.extend(self._peer_cas.values())
        bundle = b"\n".join(p.strip() for p in parts if p.strip())
        if not bundle:
            raise ConfigError(f"federation is enabled but {path} holds no peer CA certificate")
        return bundle + b"\n"

    def _client_credentials(self, name: str) -> grpc.ChannelCredentials:
        root = self._peer_cas.get(name) or self._trust_bundle()
        return grpc.ssl_channel_credentials(root_certificates=root, private_key=self._key,
                                            certificate_chain=self._cert)

    # State ---------------------------------------------------------------------------------------
    def snapshot(self) -> list[dict[str, object]]:
        """Every link's state (``GET /api/links``)."""
        return [link.snapshot() for link in self.links]

    def metric_families(self) -> list[Metric]:
        """Per-link metrics for ``ServerMetrics.add_collector``, labelled by ``link`` (the peer name)."""
        now_ms = self._clock.now_ms()
        up = GaugeMetricFamily("rallypoint_federation_links_up", "Federation links up")
        up.add_metric([], float(sum(1 for link in self.links if link.state is LinkState.UP)))
        duplicates = CounterMetricFamily(
            "rallypoint_federation_duplicates", "Federated reports dropped as already accepted (replays, two paths)")
        duplicates.add_metric([], float(self.recent.duplicates))
        families: list[Metric] = [up, duplicates]
        state = GaugeMetricFamily(
            "rallypoint_federation_link_state", "1 for the state each link is in", labels=["link", "state"]
        )
        gauges = {
            "queue_depth": GaugeMetricFamily(
                "rallypoint_federation_link_queue_depth", "Messages waiting for the link", labels=["link"]),
            "unacknowledged": GaugeMetricFamily(
                "rallypoint_federation_link_unacknowledged", "Priority messages sent, not yet acknowledged",
                labels=["link"]),
            "unwritten": GaugeMetricFamily(
                "rallypoint_federation_link_unwritten", "Accepted for the link, not yet written to disk",
                labels=["link"]),
            "remote_contacts": GaugeMetricFamily(
                "rallypoint_federation_link_remote_contacts", "Contacts known through the link", labels=["link"]),
            "thinning": GaugeMetricFamily(
                "rallypoint_federation_link_thinning", "1 while the link budget thins positions", labels=["link"]),
            "last_contact": GaugeMetricFamily(
                "rallypoint_federation_link_last_contact_age_seconds",
                "Seconds since the peer last sent anything (absent before first contact)", labels=["link"]),
        }
        counters = {
            "bytes_sent": CounterMetricFamily(
                "rallypoint_federation_link_bytes_sent", "Bytes sent on the link", labels=["link"]),
            "bytes_received": CounterMetricFamily(
                "rallypoint_federation_link_bytes_received", "Bytes received on the link", labels=["link"]),
            "events_sent": CounterMetricFamily(
                "rallypoint_federation_link_events_sent", "Events sent on the link", labels=["link"]),
            "events_received": CounterMetricFamily(
                "rallypoint_federation_link_events_received", "Events received on the link", labels=["link"]),
            "dropped": CounterMetricFamily(
                "rallypoint_federation_link_dropped", "Events the link dropped (hops, overflow, refused)",
                labels=["link"]),
            "positions_thinned": CounterMetricFamily(
                "rallypoint_federation_link_positions_thinned", "Positions held back by the link budget",
                labels=["link"]),
        }
        for link in self.links:
            snap = link.snapshot()
            for value in LinkState:
                state.add_metric([link.name, value.value], 1.0 if link.state is value else 0.0)
            for key in ("queue_depth", "unacknowledged", "unwritten", "remote_contacts"):
                gauges[key].add_metric([link.name], float(snap[key]))  # type: ignore[arg-type]
            gauges["thinning"].add_metric([link.name], 1.0 if snap["thinning"] else 0.0)
            last = snap["last_contact_ms"]
            if isinstance(last, int):
                gauges["last_contact"].add_metric([link.name], max(0.0, (now_ms - last) / 1000))
            for key, family in counters.items():
                family.add_metric([link.name], float(snap[key]))  # type: ignore[arg-type]
        return [*families, state, *gauges.values(), *counters.values()]

    async def _sweep(self) -> None:
        timeout = self._settings.federation_contact_timeout_s
        while not self._stop.is_set():
            await _sleep(self._stop, 1.0)
            for link in self.links:
                link.expire_contacts(timeout)


def link_budget(peer: FederationPeer, settings: Settings) -> float:
    """Outbound bytes/s of the link to ``peer``: its own setting, else the node-wide one (0 = unlimited)."""
    if peer.budget_bytes_per_s is not None:
        return peer.budget_bytes_per_s
    return settings.federation_budget_bytes_per_s


def _certs(pem: bytes) -> list[x509.Certificate]:
    return list(x509.load_pem_x509_certificates(pem))


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds`` or until ``stop`` is set, whichever comes first."""
    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
