"""The running node: listeners, background tasks, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from rallypoint.bus.base import MessageBus
from rallypoint.bus.factory import lease_of, liveness_of, start_bus
from rallypoint.bus.lease import EMERGENCY_REPEATER
from rallypoint.clock import Clock
from rallypoint.config import Settings, tile_origin
from rallypoint.delivery.dispatcher import Dispatcher
from rallypoint.errors import ConfigError
from rallypoint.federation.service import Federation
from rallypoint.node import memtrace
from rallypoint.node.cluster_metrics import ClusterMetrics
from rallypoint.node.upkeep import (
    AccountSync,
    RevocationEnforcer,
    SessionSweep,
    UpkeepFailures,
    load_picture,
    sweep,
    watch_files,
)
from rallypoint.protocol.limits import Limits
from rallypoint.routing.directory import Directory
from rallypoint.security.accounts import AccountCache
from rallypoint.security.audit import AuditLog
from rallypoint.security.ca import CertificateAuthority
from rallypoint.security.revocation import CertificateRegistry, RevocationWatcher
from rallypoint.security.tokens import TokenService
from rallypoint.security.users import UserAccounts
from rallypoint.services.auditing import AuditRecorder
from rallypoint.services.demo import DemoSimulator
from rallypoint.services.emergency import EmergencyService
from rallypoint.services.ingest import Ingest
from rallypoint.services.latest_sync import latest_sync_for
from rallypoint.services.metrics import ServerMetrics
from rallypoint.services.node_watch import NodeWatch
from rallypoint.services.presence import Presence
from rallypoint.storage.base import EventStore
from rallypoint.storage.retention import run_retention
from rallypoint.storage.writer import BatchedEventWriter
from rallypoint.transport.context import TransportContext
from rallypoint.transport.datagram import start_datagram_listener
from rallypoint.transport.stream import bound_port, start_stream_listener
from rallypoint.transport.tls import server_ssl_context
from rallypoint.web.api.plans import PLAN_BODY_LIMITS
from rallypoint.web.app import create_app
from rallypoint.web.enrollment import create_enrollment_app
from rallypoint.web.features import Feature
from rallypoint.web.limits import HttpGuard
from rallypoint.web.oauth import OAuthTokens
from rallypoint.web.peers import PeerCertificates

log = logging.getLogger("rallypoint")


@dataclass(frozen=True)
class WorkerSlot:
    """Which worker of ``serve --workers N`` this process is, and how often its slot was restarted."""

    index: int
    count: int
    restarts: int


@dataclass
class Node:
    """A running Rallypoint server (one process)."""

    settings: Settings
    clock: Clock
    metrics: ServerMetrics
    directory: Directory
    presence: Presence
    emergencies: EmergencyService
    ingest: Ingest
    ctx: TransportContext
    store: EventStore
    writer: BatchedEventWriter
    ca: CertificateAuthority
    bus: MessageBus
    dispatcher: Dispatcher
    revocations: RevocationWatcher
    registry: CertificateRegistry
    users: UserAccounts
    audit: AuditLog
    auditor: AuditRecorder
    accounts: AccountCache
    peers: PeerCertificates
    http_guard: HttpGuard
    # Tokens for the enrollment port (OAuth login, token-authenticated tls/config); closed by the native API.
    tokens: TokenService | None = None
    features: list[Feature] = field(default_factory=list)
    federation: Federation | None = None
    ports: dict[str, int] = field(default_factory=dict)
    # A worker of ``serve --workers N``: its listeners share their ports with the other workers
    # (SO_REUSEPORT), it logs ``worker ready`` (the supervisor alone logs ``rallypoint ready``) and
    # its health names its slot.
    worker: WorkerSlot | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        """Begin a graceful shutdown (SIGTERM does this)."""
        self.stop_event.set()

    def health(self) -> dict[str, Any]:
        stats = self.writer.statistics()
        return {
            "status": "ok" if self.ready.is_set() else "starting",
            "ready": self.ready.is_set(),
            "node": self.settings.node_id,
            "connections": len(self.ctx.sessions),
            "ports": self.ports,
            **({} if self.worker is None else {"worker": {"index": self.worker.index, "of": self.worker.count,
                                                           "restarts": self.worker.restarts}}),
            "storage": {"pending": stats.pending, "written": stats.written, "dropped": stats.dropped},
        }

    async def run(self) -> None:
        """Start every listener, log ``rallypoint ready``, serve until stopped, then drain and flush."""
        s = self.settings
        loop = asyncio.get_running_loop()
        port = (lambda p: 0) if s.ephemeral_ports else (lambda p: p)
        reuse_port = self.worker is not None
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, self.stop)
            loop.add_signal_handler(signal.SIGINT, self.stop)
        # Off unless started with PYTHONTRACEMALLOC=N: SIGUSR2 then logs the top allocations.
        memtrace.install(loop)
        # Connected before anything is published or delivered (a NATS bus; the local bus has nothing to do).
        await start_bus(self.bus)
        await load_picture(self.store, self.presence, self.clock, Limits(max_event_bytes=s.max_event_bytes))
        # In a cluster, the picture of the other nodes too (and this node's previous clients let go).
        mirror = latest_sync_for(self.bus, self.presence, self.clock)
        if mirror is not None:
            await mirror[0].restore(mirror[1].replay, self.ingest, mirror[1].node_alive)
        account_sync = AccountSync(self.users, self.accounts, self.ctx.sessions)
        users_stamp = await account_sync.load()
        upkeep_failures = UpkeepFailures()
        self.metrics.add_collector(upkeep_failures.families)
        servers: list[asyncio.Server] = []
        udp: asyncio.DatagramTransport | None = None
        http_servers: list[uvicorn.Server] = []
        async with asyncio.TaskGroup() as tg:
            writer_task = tg.create_task(self.writer.run(), name="storage-writer")
            # One node of the cluster repeats alerts: the holder of the repeater lease.
            repeater = lease_of(self.bus, EMERGENCY_REPEATER)
            tg.create_task(repeater.run(self.stop_event), name="repeater-lease")
            tg.create_task(
                self.emergencies.run(self.ingest.republish, may_repeat=lambda: repeater.held),
                name="emergency-repeater",
            )
            if mirror is not None:
                tg.create_task(mirror[0].run(self.stop_event), name="latest-sync")
            liveness = liveness_of(self.bus)
            watch: NodeWatch | None = None
            if liveness is not None:
                # Clients of a node that died unannounced leave the picture (services/node_watch.py).
                heartbeat, alive = liveness
                watch = NodeWatch(node=s.node_id, presence=self.presence, ingest=self.ingest, clock=self.clock,
                                  alive=alive, may_act=lambda: repeater.held)
                tg.create_task(heartbeat.run(self.stop_event), name="liveness")
                tg.create_task(watch.run(self.stop_event, heartbeat.renew_s), name="node-watch")
            self.metrics.add_collector(ClusterMetrics(
                repeater, liveness[0] if liveness is not None else None,
                watch, mirror[0] if mirror is not None else None,
            ).families)
            session_sweep = SessionSweep(
                self.presence, self.ctx.sessions, self.clock, idle_timeout_s=s.idle_timeout_s,
                frame_timeout_s=s.frame_timeout_s, slow_receiver_timeout_s=s.slow_receiver_timeout_s,
            )
            tg.create_task(sweep(session_sweep, self.stop_event), name="sweeper")
            tg.create_task(
                watch_files(
                    RevocationEnforcer(self.revocations, self.ctx.sessions, self.auditor), account_sync,
                    stamp=users_stamp, failures=upkeep_failures, stop=self.stop_event,
                ),
                name="file-watcher",
            )
            audit_task = tg.create_task(self.auditor.run(), name="audit")
            if s.retention_days > 0:
                tg.create_task(
                    run_retention(
                        self.store, retention_s=s.retention_days * 86_400, clock=self.clock,
                        interval_s=3600.0, stop=self.stop_event,
                    ),
                    name="retention",
                )
            demo: DemoSimulator | None = None
            try:
                if s.tls_port or s.api_port:
                    tls_ctx = server_ssl_context(self.ca)
                if s.tls_port:
                    srv = await start_stream_listener(
                        self.ctx, host=s.bind, port=port(s.tls_port), ssl_context=tls_ctx, name="tls",
                        handshake_timeout_s=s.tls_handshake_timeout_s, reuse_port=reuse_port,
                    )
                    servers.append(srv)
                    self.ports["tls"] = bound_port(srv)
                if s.cot_port:
                    srv = await start_stream_listener(
                        self.ctx, host=s.plain_bind, port=port(s.cot_port), ssl_context=None, name="tcp",
                        reuse_port=reuse_port,
                    )
                    servers.append(srv)
                    self.ports["cot"] = bound_port(srv)
                if s.udp_enabled and s.udp_port:
                    udp = await start_datagram_listener(
                        self.ctx, host=s.udp_bind or s.plain_bind, port=port(s.udp_port),
                        multicast_groups=s.udp_multicast, multicast_interface=s.udp_multicast_interface,
                        reuse_port=reuse_port,
                    )
                    self.ports["udp"] = int(udp.get_extra_info("sockname")[1])
                if self.federation is not None and s.federation_port:
                    self.ports["federation"] = await self.federation.start_listener(s.bind, port(s.federation_port))
                for feature in self.features:
                    tg.create_task(feature.run(), name=f"feature-{type(feature).__name__}")
                # Features with sockets of their own (feeds listening for their sources) bind before ready.
                for feature in self.features:
                    listening = getattr(feature, "listening", None)
                    if listening is not None:
                        await listening()
                app = create_app(
                    metrics=self.metrics, health=self.health, crl=self.registry.crl_path.read_bytes,
                    extra_routes=[route for feature in self.features for route in feature.routes],
                    max_body_bytes=s.max_http_body_bytes,
                    upload_paths=("/Marti/sync/missionupload", "/Marti/sync/upload"),
                    max_upload_bytes=s.max_upload_bytes, on_body_too_large=self.http_guard.body_too_large,
                    large_paths=PLAN_BODY_LIMITS, tile_origin=tile_origin(s.web.tile_url),
                )
                if s.http_port:
                    http_servers.append(await self._start_http(tg, app, s.plain_bind, port(s.http_port), "http", None))
                if s.api_port:
                    http_servers.append(await self._start_http(tg, app, s.bind, port(s.api_port), "api", tls_ctx))
                if s.enroll_port:
                    enroll_app = create_enrollment_app(
                        ca=self.ca, authenticator=self.users, clock=self.clock, audit=self.auditor.append,
                        server_host=s.public_host or s.server_names[0], tls_port=s.tls_port,
                        org="Rallypoint", org_unit="Rallypoint", max_body_bytes=s.max_http_body_bytes,
                        p12_password=s.p12_password,
                        oauth=None if self.tokens is None else OAuthTokens(
                            users=self.users, tokens=self.tokens, auditor=self.auditor, clock=self.clock,
                            metrics=self.metrics,
                        ),
                    )
                    http_servers.append(
                        await self._start_http(
                            tg, enroll_app, s.bind, port(s.enroll_port), "enroll",
                            server_ssl_context(self.ca, require_client_cert=False),
                        )
                    )
                if s.demo:
                    fixed = frozenset(s.demo_groups)
                    demo = DemoSimulator(
                        self.clock, self.ingest.accept, units=s.demo_units,
                        groups=(lambda: fixed) if fixed else self.accounts.known_groups,
                    )
                    tg.create_task(demo.run(), name="demo")
            except OSError as exc:
                self.stop_event.set()
                raise ConfigError(f"cannot bind a listener: {exc}") from exc
            finally:
                if self.stop_event.is_set():
                    self._shutdown_tasks(demo, http_servers)
            self.ready.set()
            # Everything built so far lives as long as the process: moving it out of the collector's
            # generations keeps full collections (run as request garbage accumulates) short.
            gc.freeze()
            log.info(
                "rallypoint ready" if self.worker is None else "worker ready",
                extra={"ports": self.ports, "node": s.node_id},
            )
            await self.stop_event.wait()
            log.info("shutting down")
            for srv in servers:
                srv.close()
            if udp is not None:
                udp.close()
            for session in self.ctx.sessions:
                session.flush_and_close()
            self._shutdown_tasks(demo, http_servers)
            # Features stop their background work before the TaskGroup waits for it.
            for feature in self.features:
                await feature.close()
            await self.bus.close()
            await self.writer.flush()
            self.writer.stop()
            await writer_task
            self.auditor.stop()
            await audit_task
        if self.federation is not None:
            await self.federation.close_store()
        await self.store.close()
        await self.users.close()
        await self.audit.close()
        log.info("stopped")

    def _shutdown_tasks(self, demo: DemoSimulator | None, http_servers: list[uvicorn.Server]) -> None:
        self.emergencies.stop()
        self.auditor.stop()
        self.stop_event.set()
        self.writer.stop()
        if demo is not None:
            demo.stop()
        for server in http_servers:
            server.should_exit = True

    async def _start_http(
        self, tg: asyncio.TaskGroup, app: Any, host: str, port: int, name: str, ssl_ctx: ssl.SSLContext | None
    ) -> uvicorn.Server:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.worker is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
        self.ports[name] = int(sock.getsockname()[1])
        config = uvicorn.Config(
            app, log_config=None, lifespan="off", access_log=False, limit_concurrency=self.settings.max_connections,
            http=self.http_guard.protocol_class(self.peers.protocol_class()),  # type: ignore[arg-type]
            h11_max_incomplete_event_size=64 * 1024,
            # WebSocket clients (the live map feed) only ever send tiny control messages.
            ws_max_size=64 * 1024,
            # Client certificates are looked up by the connection's address: never let a request's
            # X-Forwarded-For header (trusted from loopback by default) rewrite it.
            proxy_headers=False,
        )
        config.load()
        # Our hardened context (TLS 1.2+, AEAD suites, client certificates where required), not
        # uvicorn's defaults.
        config.ssl = ssl_ctx
        server = EmbeddedUvicorn(config, handshake_timeout_s=self.settings.tls_handshake_timeout_s)
        # The socket is already listening: connections wait in its backlog until serve() accepts.
        tg.create_task(server.serve(sockets=[sock]), name=f"http-{name}")
        return server


class EmbeddedUvicorn(uvicorn.Server):
    """uvicorn inside our TaskGroup: the node owns signals, so uvicorn must not install its own.

    It also creates the listening servers itself, because uvicorn does not pass a TLS handshake
    timeout: a client that opens a connection and never finishes the handshake would otherwise hold
    it for the event loop's 60 s default.
    """

    def __init__(self, config: uvicorn.Config, *, handshake_timeout_s: float) -> None:
        super().__init__(config)
        self._handshake_timeout_s = handshake_timeout_s

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's own startup with no sockets: lifespan, state and the started flag, no listeners.
        await super().startup(sockets=[])
        if self.should_exit:
            return
        config = self.config

        def create_protocol(_loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state, _loop=_loop
            )

        loop = asyncio.get_running_loop()
        for sock in sockets or []:
            server = await loop.create_server(
                create_protocol, sock=sock, ssl=config.ssl, backlog=config.backlog,
                ssl_handshake_timeout=self._handshake_timeout_s if config.ssl else None,
            )
            self.servers.append(server)
