"""``build_node(settings)``: the only place that picks concrete classes."""

from __future__ import annotations

from pathlib import Path

import msgspec

from rallypoint.bus.factory import bus_counters, bus_drops, bus_gauges, open_bus
from rallypoint.clock import Clock, SystemClock
from rallypoint.config import Settings
from rallypoint.delivery.dispatcher import Dispatcher
from rallypoint.federation.service import Federation
from rallypoint.model.cot_type import Priority
from rallypoint.node.core import Node
from rallypoint.node.feeds import feed_service
from rallypoint.node.mesh import mesh_service
from rallypoint.node.node_id import resolve_node_id
from rallypoint.node.shared_changes import share_changes
from rallypoint.node.task_wiring import task_service
from rallypoint.node.upkeep import AccountSync, RevocationEnforcer
from rallypoint.node.web_services import mission_service, package_service
from rallypoint.protocol.limits import Limits
from rallypoint.routing.contacts import ContactIndex
from rallypoint.routing.directory import Directory
from rallypoint.routing.ids import NodeIds
from rallypoint.routing.router import Router
from rallypoint.security.accounts import AccountCache
from rallypoint.security.audit import AuditLog
from rallypoint.security.ca import CertificateAuthority
from rallypoint.security.policy import IdentityPolicy
from rallypoint.security.ratelimit import AddressLimiter
from rallypoint.security.revocation import CertificateRegistry, RevocationWatcher
from rallypoint.security.tokens import KEY_FILE, TokenService
from rallypoint.security.users import UserAccounts
from rallypoint.services.auditing import AuditRecorder
from rallypoint.services.cluster_changes import ChangeKind, ClusterChanges
from rallypoint.services.designations import DesignationService
from rallypoint.services.designations_links import DesignationsFeature, MissionLinks, package_check
from rallypoint.services.emergency import EmergencyService
from rallypoint.services.exercises import ExerciseService
from rallypoint.services.fixes import NoFixCounter
from rallypoint.services.ingest import Ingest
from rallypoint.services.mailbox import Mailbox
from rallypoint.services.metrics import ServerMetrics
from rallypoint.services.plans import PlanService
from rallypoint.services.presence import Presence
from rallypoint.services.sessions import SessionHub
from rallypoint.services.uid_claims import uid_claims_for
from rallypoint.services.video import VideoService
from rallypoint.storage.factory import open_stores
from rallypoint.storage.writer import BatchedEventWriter
from rallypoint.transport.context import TransportContext
from rallypoint.transport.tls import principal_from_peercert
from rallypoint.web import live, picture
from rallypoint.web.api import native
from rallypoint.web.api.messaging import sender_uid
from rallypoint.web.context import TokenIdentities, WebContext
from rallypoint.web.features import FeatureBuilder
from rallypoint.web.limits import HttpGuard
from rallypoint.web.marti import core, missions, sync, video
from rallypoint.web.peers import PeerCertificates

# HTTP features, in mounting order.
FEATURES: tuple[FeatureBuilder, ...] = (core.build, sync.build, missions.build, video.build, native.build,
                                        picture.build, live.build)


def build_node(settings: Settings, *, clock: Clock | None = None) -> Node:
    """Wire every component for ``settings``: the only place that picks concrete classes."""
    clock = clock or SystemClock()
    data = Path(settings.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    # Everything below (announcements, health, federation, session ids) sees the resolved id.
    settings = msgspec.structs.replace(settings, node_id=resolve_node_id(settings.node_id, data))
    ids = NodeIds.start(settings.node_id)
    metrics = ServerMetrics()
    directory = Directory()
    contacts = ContactIndex(directory, settings.node_id)
    router = Router(directory, contacts)
    bus = open_bus(settings.bus, settings.node_id)
    dispatcher = Dispatcher(directory)
    # Bus subscribers, in order: contacts, features (Ingest.on_published, subscribed when built), delivery.
    bus.subscribe(contacts.observe, cluster_only=True)
    presence = Presence(directory)
    emergencies = EmergencyService(
        clock, repeat_s=settings.emergency_repeat_s, max_age_s=settings.emergency_max_age_s
    )
    stores = open_stores(settings.storage_url, data, node_id=settings.node_id)
    store = stores.events()
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
    bus.subscribe(metrics.count_deliveries(dispatcher.deliver))
    hub = SessionHub(
        identity=identity, directory=directory, presence=presence, emergencies=emergencies, ingest=ingest, clock=clock
    )
    ca = CertificateAuthority.load_or_create(data / "ca", clock=clock, server_names=settings.server_names)
    registry = CertificateRegistry(ca.directory)
    registry.publish_crl(ca, clock)
    revocations = RevocationWatcher(registry)
    users = UserAccounts(
        stores.users(), clock=clock, max_failures=settings.login_max_failures,
        lockout_seconds=settings.login_lockout_s,
    )
    audit = AuditLog(stores.audit())
    auditor = AuditRecorder(audit, clock)
    metrics.add_counters(auditor.counters)
    http_guard = HttpGuard(header_timeout_s=settings.http_header_timeout_s, body_timeout_s=settings.http_body_timeout_s)
    metrics.add_counters(http_guard.counters)
    accounts = AccountCache(settings.client_groups)
    tokens = TokenService(stores.tokens(), key_path=data / KEY_FILE, clock=clock, ttl_s=settings.token_ttl_s)
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
        ids=ids,
        offer_protobuf=settings.offer_protobuf,
        offer_compression=settings.offer_compression,
        outbox_max_items=settings.outbox_max_items,
        slow_receiver_timeout_s=settings.slow_receiver_timeout_s,
        max_connections=settings.max_connections,
        write_buffer_high=settings.write_buffer_high,
        read_chunk_bytes=settings.read_chunk_bytes,
        dispatcher=dispatcher,
        session_budget_bytes_per_s=settings.session_budget_bytes_per_s,
        budget_of=lambda principal, groups: budget_for(settings, principal, groups),
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
        auditor=auditor, accounts=accounts, peers=PeerCertificates(), http_guard=http_guard, tokens=tokens,
    )
    # In a cluster, who holds a device uid is decided in NATS: one of two simultaneous claims wins.
    claims = uid_claims_for(
        bus, identity=identity, presence=presence, sessions=ctx.sessions, metrics=metrics, ingest=ingest,
        directory=directory,
    )
    if claims is not None:
        node.features.append(claims)
    # Missions, accounts and revocations changed on any node are applied on every node at once.
    changes = ClusterChanges(bus, clock)
    bus.subscribe(changes.observe)
    metrics.add_counters(changes.counters)
    # The web layer's services, whole before any feature is built (WebContext is frozen).
    packages = package_service(stores, clock)
    # Tasks: an ingest hook (status CoT, chat replies) and a feature (overdue check); shared over the bus.
    tasks = task_service(stores, ingest=ingest, directory=directory, clock=clock, identity=identity, changes=changes)
    node.features.append(tasks)
    ingest.add_hook(tasks.observe, types=tasks.observes_type)
    metrics.add_counters(tasks.counters)
    mission_svc = mission_service(stores, directory, clock, presence, packages)
    designations = DesignationService(
        stores.designations(), accept=ingest.accept, audit=auditor.record, clock=clock,
        package_readable=package_check(packages.find), missions=MissionLinks(mission_svc, sender_uid),
    )
    node.features.append(DesignationsFeature(designations))
    metrics.add_counters(designations.counters)
    # Operation plans: versions beside the missions, drawings to subscribers through ingest (services/plans.py).
    plans = PlanService(stores.plans(), mission_svc, clock, accept=ingest.accept, packages=packages)
    node.features.append(plans)
    metrics.add_counters(plans.counters)
    # Source feeds (ADS-B, AIS, APRS...) fused into tracks that enter through ingest (node/feeds.py).
    feeds = feed_service(settings, clock, ingest, ids)
    node.features.append(feeds)
    metrics.add_collector(feeds.metric_families)
    # Meshtastic radio meshes, bridged both ways through ingest (node/mesh.py, docs/meshtastic.md).
    meshes = mesh_service(settings, clock, ingest, ids)
    node.features.append(meshes)
    metrics.add_collector(meshes.metric_families)
    # Video connections from the Marti video API and shared b-i-v CoT (services/video.py, docs/video.md).
    video_svc = VideoService(stores.video(), clock)
    ingest.add_hook(video_svc.observe, types=video_svc.observes_type)
    metrics.add_counters(video_svc.counters)
    # Exercises: the control API's registry, and which live missions exercise traffic may join.
    exercises = ExerciseService(stores.exercises(), clock)
    node.features.append(exercises)
    metrics.add_counters(exercises.counters)
    mission_svc.admit_exercises(exercises.may_join)
    web = WebContext(
        settings=settings, clock=clock, directory=directory, presence=presence, ingest=ingest,
        accounts=accounts, users=users, auditor=auditor, store=store, metrics=metrics, sessions=ctx.sessions,
        peers=node.peers, revocations=revocations, emergencies=emergencies, identity=identity, tokens=tokens,
        token_identity=TokenIdentities(tokens, users, accounts), packages=packages, tasks=tasks,
        missions=mission_svc, designations=designations, plans=plans, ids=ids,
        announce_accounts=lambda: changes.announce(ChangeKind.ACCOUNTS), feeds=feeds, video=video_svc,
        exercises=exercises,
    )
    for build in FEATURES:
        feature = build(web)
        node.features.append(feature)
        if getattr(feature, "observes", True):  # False: its observe does nothing (web/features.py)
            ingest.add_hook(feature.observe, addressed_only=getattr(feature, "observes_addressed_only", False))
    # Store-and-forward for addressed traffic whose recipient is offline (services/mailbox.py).
    mailbox = Mailbox(
        stores.mailbox(), directory=directory, clock=clock, limits=Limits(max_event_bytes=settings.max_event_bytes),
        ttl_s=settings.mailbox_ttl_s, max_per_identity=settings.mailbox_max_per_identity, node=settings.node_id,
    )
    # On a single node it keeps addressed events only; in a cluster it also watches other nodes' SA.
    ingest.add_hook(mailbox.observe, addressed_only=settings.bus == "local")
    mailbox.deliver_through(ingest.deliver)
    # Kept mail of another node for a session here, and the written reports of mail handed elsewhere.
    bus.subscribe(mailbox.on_bus, cluster_only=True)
    no_fix = NoFixCounter()
    ingest.add_hook(no_fix.observe)
    metrics.add_counters(no_fix.counters)
    hub.add_join_source(mailbox.on_join)
    hub.add_leave_listener(mailbox.on_leave)
    presence.add_bind_listener(mailbox.on_bind)
    if web.missions is not None:
        web.missions.keep_offline(mailbox.keep_notice)
        # Mission notices are bus publications; mission addresses resolve on every node's dispatcher.
        web.missions.deliver_through(ingest.deliver)
        dispatcher.resolve_missions(web.missions.mission_receivers)
    node.features.append(mailbox)
    share_changes(
        changes, missions=web.missions, revocations=revocations, ca=ca, clock=clock,
        enforce_revocations=RevocationEnforcer(revocations, ctx.sessions, auditor).enforce,
        apply_accounts=AccountSync(users, accounts, ctx.sessions).apply,
    )
    metrics.add_gauges(mailbox.gauges)
    metrics.add_counters(mailbox.counters)
    metrics.add_gauges(lambda: _gauges(node))
    if settings.federation_enabled:
        # Peers are Subscribers in the directory; their events enter through ingest like any other.
        node.federation = Federation(
            settings, data_dir=data, store=stores.federation(), server_cert=ca.server_cert_path,
            server_key=ca.server_key_path,
            ca_pem=ca.ca_pem, directory=directory, accept=ingest.accept, clock=clock,
        )
        node.features.append(node.federation)
        metrics.add_collector(node.federation.metric_families)
    metrics.add_counters(lambda: _counters(node))
    metrics.add_drops(lambda: _drops(node, mailbox))
    metrics.add_gauges(lambda: bus_gauges(bus))
    metrics.add_counters(lambda: bus_counters(bus))
    metrics.add_drops(lambda: bus_drops(bus))
    return node


def budget_for(settings: Settings, principal: str | None, groups: frozenset[str]) -> float:
    """A client's byte budget from its class: own name, else the tightest group budget, else the default."""
    budgets = settings.client_budgets
    if principal is not None and principal in budgets:
        return budgets[principal]
    by_group = [budgets[g] for g in groups if g in budgets]
    return min(by_group) if by_group else settings.session_budget_bytes_per_s


def _gauges(node: Node) -> list[tuple[str, str, float]]:
    totals = node.ctx.outbox_totals()
    queued = totals["queued"]
    per_class = [
        (f"rallypoint_outbox_queued_{p.name.lower()}", f"Envelopes waiting in client outboxes, class {p.name.lower()}",
         float(totals.get(f"queued_{p.name.lower()}", 0)))
        for p in Priority
    ]
    stats = node.writer.statistics()
    # Per session, reduced to a few numbers (one series each, whatever the number of clients).
    sessions = [session.statistics() for session in node.ctx.sessions]
    return [
        ("rallypoint_outbox_deepest", "Envelopes in the fullest client outbox",
         float(max((s["queued"] for s in sessions), default=0))),
        ("rallypoint_outbox_deepest_bytes", "Bytes in the largest client outbox",
         float(max((s["queued_bytes"] for s in sessions), default=0))),
        ("rallypoint_sessions_thinning", "Client sessions whose byte budget is thinning positions now",
         float(sum(s.get("thinning", 0) for s in sessions))),
        ("rallypoint_sessions_paused", "Client sessions whose socket is not taking more data now",
         float(sum(s.get("paused", 0) for s in sessions))),
        ("rallypoint_outbox_queued", "Envelopes waiting in client outboxes", float(queued)),
        ("rallypoint_outbox_queued_bytes", "Bytes waiting in client outboxes", float(totals.get("queued_bytes", 0))),
        ("rallypoint_positions_thinned", "Positions skipped by client byte budgets (open sessions)",
         float(totals.get("thinned", 0))),
        *per_class,
        ("rallypoint_storage_pending", "Events waiting to be written to storage", float(stats.pending)),
        ("rallypoint_active_emergencies", "Emergencies being repeated", float(len(node.emergencies.active))),
        ("rallypoint_picture_items", "Map items held for late joiners", float(len(node.presence.items))),
    ]


def _drops(node: Node, mailbox: Mailbox) -> list[tuple[str, float]]:
    """Every cumulative drop count, one reason each, for ``rallypoint_drops_total{reason}``."""
    stats = mailbox.statistics()
    federation = node.federation
    return [
        ("outbox", float(node.ctx.outbox_totals()["dropped"])),
        ("storage", float(node.writer.statistics().dropped)),
        ("mailbox_expired", float(stats["expired"])),
        ("mailbox_overflow", float(stats["overflow"])),
        ("federation", float(sum(link.dropped for link in federation.links)) if federation is not None else 0.0),
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
        ("rallypoint_bus_foreign_refused", "Envelopes of another node not published again (loop prevention)",
         float(node.bus.statistics().foreign_refused)),
        ("rallypoint_storage_written", "Events written to storage", float(stats.written)),
        ("rallypoint_storage_dropped", "Events dropped because storage fell behind", float(stats.dropped)),
        ("rallypoint_emergency_repeats", "Emergency re-broadcasts", float(node.emergencies.repeats)),
        ("rallypoint_emergency_refused", "Emergency cancels or takeovers refused (sender outside the alert's groups)",
         float(node.emergencies.refused)),
        ("rallypoint_picture_refused", "Map item deletes or replacements refused (sender outside its groups)",
         float(node.presence.refused)),
    ]
