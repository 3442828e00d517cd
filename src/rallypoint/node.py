"""Composition root: ``build_node(settings)`` picks the concrete classes; ``Node.run()`` owns every task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from rallypoint.bus.local import LocalBus
from rallypoint.clock import Clock, SystemClock
from rallypoint.config import Settings
from rallypoint.delivery.dispatcher import Dispatcher
from rallypoint.errors import ConfigError
from rallypoint.federation.service import Federation
from rallypoint.protocol.limits import Limits
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Router
from rallypoint.security.accounts import AccountCache
from rallypoint.security.audit import AuditLog
from rallypoint.security.ca import CertificateAuthority
from rallypoint.security.policy import IdentityPolicy
from rallypoint.security.ratelimit import AddressLimiter
from rallypoint.security.revocation import CertificateRegistry, RevocationWatcher
from rallypoint.security.users import SqliteUserStore
from rallypoint.services.auditing import AuditRecorder
from rallypoint.services.demo import DemoSimulator
from rallypoint.services.emergency import EmergencyService
from rallypoint.services.ingest import Ingest
from rallypoint.services.mailbox import Mailbox
from rallypoint.services.metrics import ServerMetrics
from rallypoint.services.presence import Presence
from rallypoint.services.sessions import SessionHub
from rallypoint.storage.base import EventStore
from rallypoint.storage.factory import open_event_store
from rallypoint.storage.retention import run_retention
from rallypoint.storage.writer import BatchedEventWriter
from rallypoint.transport.context import TransportContext
from rallypoint.transport.datagram import start_datagram_listener
from rallypoint.transport.stream import bound_port, start_stream_listener
from rallypoint.transport.tls import principal_from_peercert, server_ssl_context
from rallypoint.web.api import native
from rallypoint.web.app import create_app
from rallypoint.web.context import WebContext
from rallypoint.web.enrollment import create_enrollment_app
from rallypoint.web.features import Feature, FeatureBuilder
from rallypoint.web.marti import core, missions, sync
from rallypoint.web.peers import PeerCertificates

log = logging.getLogger("rallypoint")

# HTTP features, in mounting order.
FEATURES: tuple[FeatureBuilder, ...] = (core.build, sync.build, missions.build, native.build)

PERSISTENT_PREFIXES = ("b-m-p", "b-m-r", "u-d-", "u-rb-", "u-r-b-", "b-r-f-h-c")


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
    bus: LocalBus
    dispatcher: Dispatcher
    revocations: RevocationWatcher
    registry: CertificateRegistry
    users: SqliteUserStore
    audit: AuditLog
    auditor: AuditRecorder
    accounts: AccountCache
    peers: PeerCertificates
    features: list[Feature] = field(default_factory=list)
    federation: Federation | None = None
    _users_stamp: tuple[float, ...] = ()
    ports: dict[str, int] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        """Begin a graceful shutdown (SIGTERM does this)."""
        self._stop.set()

    def health(self) -> dict[str, Any]:
        stats = self.writer.statistics()
        return {
            "status": "ok" if self.ready.is_set() else "starting",
            "ready": self.ready.is_set(),
            "node": self.settings.node_id,
            "connections": len(self.ctx.sessions),
            "ports": self.ports,
            "storage": {"pending": stats.pending, "written": stats.written, "dropped": stats.dropped},
        }

    async def run(self) -> None:
        """Start every listener, log ``rallypoint ready``, serve until stopped, then drain and flush."""
        s = self.settings
        loop = asyncio.get_running_loop()
        port = (lambda p: 0) if s.ephemeral_ports else (lambda p: p)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, self.stop)
            loop.add_signal_handler(signal.SIGINT, self.stop)
        await self._load_picture()
        self.accounts.load(await self.users.list())
        self._users_stamp = _stamp(self.users.path)
        servers: list[asyncio.Server] = []
        udp: asyncio.DatagramTransport | None = None
        http_servers: list[uvicorn.Server] = []
        async with asyncio.TaskGroup() as tg:
            writer_task = tg.create_task(self.writer.run(), name="storage-writer")
            tg.create_task(self.emergencies.run(self.ingest.republish), name="emergency-repeater")
            tg.create_task(self._sweep(), name="sweeper")
            tg.create_task(self._watch_files(), name="file-watcher")
            audit_task = tg.create_task(self.auditor.run(), name="audit")
            if s.retention_days > 0:
                tg.create_task(
                    run_retention(
                        self.store, retention_s=s.retention_days * 86_400, clock=self.clock,
                        interval_s=3600.0, stop=self._stop,
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
                        handshake_timeout_s=s.tls_handshake_timeout_s,
                    )
                    servers.append(srv)
                    self.ports["tls"] = bound_port(srv)
                if s.cot_port:
                    srv = await start_stream_listener(
                        self.ctx, host=s.plain_bind, port=port(s.cot_port), ssl_context=None, name="tcp"
                    )
                    servers.append(srv)
                    self.ports["cot"] = bound_port(srv)
                if s.udp_port:
                    udp = await start_datagram_listener(self.ctx, host=s.plain_bind, port=port(s.udp_port))
                    self.ports["udp"] = int(udp.get_extra_info("sockname")[1])
                if self.federation is not None and s.federation_port:
                    self.ports["federation"] = await self.federation.start_listener(s.bind, port(s.federation_port))
                for feature in self.features:
                    tg.create_task(feature.run(), name=f"feature-{type(feature).__name__}")
                app = create_app(
                    metrics=self.metrics, health=self.health, crl=self.registry.crl_path.read_bytes,
                    extra_routes=[route for feature in self.features for route in feature.routes],
                    max_body_bytes=s.max_http_body_bytes,
                    upload_paths=("/Marti/sync/missionupload", "/Marti/sync/upload"),
                    max_upload_bytes=s.max_upload_bytes,
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
                    )
                    http_servers.append(
                        await self._start_http(
                            tg, enroll_app, s.bind, port(s.enroll_port), "enroll",
                            server_ssl_context(self.ca, require_client_cert=False),
                        )
                    )
                if s.demo:
                    demo = DemoSimulator(self.clock, self.ingest.accept, units=s.demo_units)
                    tg.create_task(demo.run(), name="demo")
            except OSError as exc:
                self._stop.set()
                raise ConfigError(f"cannot bind a listener: {exc}") from exc
            finally:
                if self._stop.is_set():
                    self._shutdown_tasks(demo, http_servers)
            self.ready.set()
            log.info("rallypoint ready", extra={"ports": self.ports, "node": s.node_id})
            await self._stop.wait()
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
        self._stop.set()
        self.writer.stop()
        if demo is not None:
            demo.stop()
        for server in http_servers:
            server.should_exit = True

    async def _start_http(
        self, tg: asyncio.TaskGroup, app: Any, host: str, port: int, name: str, ssl_ctx: ssl.SSLContext | None
    ) -> uvicorn.Server:
        import socket

        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
        self.ports[name] = int(sock.getsockname()[1])
        config = uvicorn.Config(
            app, log_config=None, lifespan="off", access_log=False, limit_concurrency=self.settings.max_connections,
            http=self.peers.protocol_class(), h11_max_incomplete_event_size=64 * 1024,
        )
        config.load()
        # Our hardened context (TLS 1.2+, AEAD suites, client certificates where required), not
        # uvicorn's defaults.
        config.ssl = ssl_ctx
        server = _EmbeddedUvicorn(config)
        # The socket is already listening: connections wait in its backlog until serve() accepts.
        tg.create_task(server.serve(sockets=[sock]), name=f"http-{name}")
        return server

    async def _load_picture(self) -> None:
        """Reload persisted, non-stale map items so late joiners see them after a restart."""
        now = self.clock.now_ms()
        from rallypoint.protocol.limits import Limits as _Limits
        from rallypoint.protocol.xml_codec import parse_event

        limits = _Limits(max_event_bytes=self.settings.max_event_bytes)
        for stored in await self.store.latest(now_ms=now, types_prefix=PERSISTENT_PREFIXES):
            try:
                event = parse_event(stored.xml, limits)
            except Exception:
                log.exception("cannot reload stored event", extra={"uid": stored.uid})
                continue
            if not stored.group:
                continue  # addressed, not broadcast: not part of the shared picture
            groups = frozenset(g for g in stored.group.split(",") if g)
            self.presence.items[event.uid] = Envelope(event, Origin(session_id="storage", groups=groups), now)

    async def _watch_files(self) -> None:
        """Apply revocations and account changes made by the CLI (another process) within seconds.

        Both live in files; a stat call every 2 s is the cheapest portable change detection.
        """
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=2.0)
            except TimeoutError:
                pass
            if self.revocations.refresh():
                log.info("revocation list changed", extra={"revoked": len(self.revocations.revoked)})
                for session in self.ctx.sessions:
                    if self.revocations.is_revoked(session.cert_serial):
                        log.warning("disconnecting revoked client", extra={"session": session.id})
                        self.auditor.record("server", "cert.enforce", session.principal or "-", {"session": session.id})
                        session.close("revoked", abort=True)
            stamp = _stamp(self.users.path)
            if stamp != self._users_stamp:
                self._users_stamp = stamp
                await self._apply_account_changes()

    async def _apply_account_changes(self) -> None:
        self.accounts.load(await self.users.list())
        for session in self.ctx.sessions:
            if session.principal is None:
                continue
            access = self.accounts.access_for(session.principal)
            if access is None:
                log.warning("disconnecting disabled account", extra={"session": session.id})
                session.close("disabled", abort=True)
            elif session.regroup(access.write - session.inactive_groups[0], access.read - session.inactive_groups[1]):
                log.info("groups changed", extra={"session": session.id, "principal": session.principal})

    async def _sweep(self) -> None:
        """Expire stale items and close idle sessions every few seconds."""
        idle = self.settings.idle_timeout_s
        timeouts = [t for t in (idle, self.settings.frame_timeout_s, self.settings.slow_receiver_timeout_s) if t > 0]
        interval = min(5.0, max(0.25, min(timeouts, default=10.0) / 4))
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=interval)
            except TimeoutError:
                pass
            self.presence.expire(self.clock.now_ms())
            now = self.clock.monotonic()
            frame_cutoff = now - self.settings.frame_timeout_s
            slow_cutoff = now - self.settings.slow_receiver_timeout_s
            for session in self.ctx.sessions:
                if idle > 0 and session.last_rx < now - idle:
                    session.close("idle_timeout")
                elif session.paused_since is not None and session.paused_since < slow_cutoff:
                    # Its outbox only coalesces; a receiver that reads nothing for this long is gone.
                    log.warning("disconnecting receiver that stopped reading", extra={"session": session.id})
                    session.close("slow_receiver", abort=True)
                elif session.partial_since is not None and session.partial_since < frame_cutoff:
                    log.warning("disconnecting client that never finishes its event", extra={"session": session.id})
                    session.close("slow_frame", abort=True)


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn inside our TaskGroup: the node owns signals, so uvicorn must not install its own."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def build_node(settings: Settings, *, clock: Clock | None = None) -> Node:
    """Wire every component for ``settings``: the only place that picks concrete classes."""
    clock = clock or SystemClock()
    data = Path(settings.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    if settings.bus != "local":
        raise ConfigError(f"bus {settings.bus!r} is not supported yet (use 'local')")
    metrics = ServerMetrics()
    directory = Directory()
    router = Router(directory)
    bus = LocalBus()
    dispatcher = Dispatcher(directory)
    bus.subscribe(dispatcher.deliver)
    presence = Presence(directory)
    emergencies = EmergencyService(
        clock, repeat_s=settings.emergency_repeat_s, max_age_s=settings.emergency_max_age_s
    )
    store = open_event_store(settings.storage_url, data)
    writer = BatchedEventWriter(store, max_batch=settings.storage_batch, max_delay_s=settings.storage_flush_s)
    identity = IdentityPolicy(settings.client_uids)
    ingest = Ingest(
        identity=identity,
        directory=directory,
        router=router,
        bus=bus,
        presence=presence,
        emergencies=emergencies,
        writer=writer,
        metrics=metrics,
        clock=clock,
    )
    hub = SessionHub(
        identity=identity, directory=directory, presence=presence, emergencies=emergencies, ingest=ingest, clock=clock
    )
    ca = CertificateAuthority.load_or_create(data / "ca", clock=clock, server_names=settings.server_names)
    registry = CertificateRegistry(ca.directory)
    registry.publish_crl(ca, clock)
    revocations = RevocationWatcher(registry)
    users = SqliteUserStore(data / "users.db", clock=clock)
    audit = AuditLog.open(data / "audit.db")
    auditor = AuditRecorder(audit, clock)
    accounts = AccountCache(settings.client_groups)
    ctx = TransportContext(
        ingest=ingest,
        hub=hub,
        metrics=metrics,
        clock=clock,
        limits=Limits(max_event_bytes=settings.max_event_bytes),
        principal_of=principal_from_peercert,
        access_of=accounts.access_for,
        audit=auditor.record,
        is_revoked=revocations.is_revoked,
        node_id=settings.node_id,
        offer_protobuf=settings.offer_protobuf,
        outbox_max_items=settings.outbox_max_items,
        slow_receiver_timeout_s=settings.slow_receiver_timeout_s,
        max_connections=settings.max_connections,
        write_buffer_high=settings.write_buffer_high,
        read_chunk_bytes=settings.read_chunk_bytes,
        session_budget_bytes_per_s=settings.session_budget_bytes_per_s,
        max_events_per_s=settings.max_events_per_s,
        events_burst=settings.events_burst,
        max_connections_per_identity=settings.max_connections_per_identity,
        addresses=AddressLimiter(
            max_connections=settings.max_connections_per_ip, rate=settings.ip_events_per_s,
            burst=settings.ip_events_burst,
        ),
    )
    node = Node(
        settings=settings, clock=clock, metrics=metrics, directory=directory, presence=presence,
        emergencies=emergencies, ingest=ingest, ctx=ctx, store=store, writer=writer, ca=ca, bus=bus,
        dispatcher=dispatcher, revocations=revocations, registry=registry, users=users, audit=audit,
        auditor=auditor, accounts=accounts, peers=PeerCertificates(),
    )
    web = WebContext(
        settings=settings, clock=clock, data_dir=data, directory=directory, presence=presence, ingest=ingest,
        accounts=accounts, users=users, auditor=auditor, store=store, metrics=metrics, sessions=ctx.sessions,
        peers=node.peers, revocations=revocations, emergencies=emergencies,
    )
    for build in FEATURES:
        feature = build(web)
        node.features.append(feature)
        ingest.add_hook(feature.observe)
    # Store-and-forward for addressed traffic whose recipient is offline (services/mailbox.py).
    mailbox = Mailbox.open(
        data, directory=directory, clock=clock, limits=Limits(max_event_bytes=settings.max_event_bytes)
    )
    ingest.add_hook(mailbox.observe)
    hub.add_join_source(mailbox.on_join)
    hub.add_leave_listener(mailbox.on_leave)
    presence.add_bind_listener(mailbox.on_bind)
    node.features.append(mailbox)
    metrics.add_gauges(mailbox.gauges)
    metrics.add_counters(mailbox.counters)
    metrics.add_gauges(lambda: _gauges(node))
    if settings.federation_enabled:
        # Peers are Subscribers in the directory; their events enter through ingest like any other.
        node.federation = Federation(
            settings, data_dir=data, server_cert=ca.server_cert_path, server_key=ca.server_key_path,
            ca_pem=ca.ca_pem, directory=directory, accept=ingest.accept, clock=clock,
        )
        node.features.append(node.federation)
        metrics.add_gauges(node.federation.gauges)
    metrics.add_counters(lambda: _counters(node))
    return node


def _stamp(path: Path) -> tuple[float, ...]:
    """Modification times of a SQLite database and its WAL (changes land in the WAL first)."""
    out: list[float] = []
    for candidate in (path, path.with_name(path.name + "-wal")):
        try:
            out.append(candidate.stat().st_mtime)
        except FileNotFoundError:
            out.append(0.0)
    return tuple(out)


def _gauges(node: Node) -> list[tuple[str, str, float]]:
    queued = node.ctx.outbox_totals()["queued"]
    stats = node.writer.statistics()
    return [
        ("rallypoint_outbox_queued", "Envelopes waiting in client outboxes", float(queued)),
        ("rallypoint_storage_pending", "Events waiting to be written to storage", float(stats.pending)),
        ("rallypoint_active_emergencies", "Emergencies being repeated", float(len(node.emergencies.active))),
        ("rallypoint_picture_items", "Map items held for late joiners", float(len(node.presence.items))),
    ]


def _counters(node: Node) -> list[tuple[str, str, float]]:
    stats = node.writer.statistics()
    outbox = node.ctx.outbox_totals()
    return [
        ("rallypoint_outbox_coalesced", "Queued positions replaced by a newer report of the same uid",
         float(outbox["coalesced"])),
        ("rallypoint_outbox_dropped", "Envelopes dropped from outboxes (overflow or stale)", float(outbox["dropped"])),
        ("rallypoint_backpressure_pauses", "Times a receiver's socket buffer filled and delivery paused",
         float(outbox["pauses"])),
        ("rallypoint_events_delivered", "Envelopes handed to receivers", float(node.dispatcher.delivered)),
        ("rallypoint_storage_written", "Events written to storage", float(stats.written)),
        ("rallypoint_storage_dropped", "Events dropped because storage fell behind", float(stats.dropped)),
        ("rallypoint_emergency_repeats", "Emergency re-broadcasts", float(node.emergencies.repeats)),
    ]
