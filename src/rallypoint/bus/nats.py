"""NATS bus: several nodes share one picture through core NATS (positions) and JetStream (the rest).

Publishing never waits for the network. The node's own handlers get the envelope in the
caller's stack frame (the same objects, unserialised, exactly as ``LocalBus``); the envelope
is queued for NATS and a task owned by the bus encodes and sends it. Envelopes of other nodes
arrive from a core subscription (positions, bulk) and a durable JetStream pull consumer named
for this node (everything else), which gives a node that was away (NATS restarted, network
lost, node restarted) what it missed, in order, each once: acknowledged after the handlers ran,
and deduplicated by message id on both sides.

The outgoing queues and their overflow policy are described in ``bus/outgoing.py``; decoding and
deduplicating what arrives, in ``bus/incoming.py``; the stream, buckets and consumer, in
``bus/jetstream_config.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

from rallypoint.bus.base import DeliveryHandler, claim_for_node
from rallypoint.bus.codec import DEFAULT_MAX_MESSAGE_BYTES, BusCodec
from rallypoint.bus.incoming import Incoming
from rallypoint.bus.jetstream_config import consumer_config, ensure_buckets, ensure_stream, stream_config
from rallypoint.bus.latest import LatestCache
from rallypoint.bus.lease import KvLease
from rallypoint.bus.outgoing import MSG_ID, Outgoing
from rallypoint.bus.subjects import DEFAULT_CLUSTER, safe_name, subjects_for
from rallypoint.errors import BusError
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience

log = logging.getLogger(__name__)

# Errors of a NATS operation that a reconnect cures; anything else is a bug and propagates.
_TRANSIENT = (nats.errors.Error, asyncio.TimeoutError, OSError)
_FETCH_BATCH = 256
_FETCH_WAIT_S = 2.0


class NatsBusStatistics(msgspec.Struct, frozen=True):
    """Counters of a NATS bus.

    ``published``: own envelopes handed to the handlers; ``sent``: of those, acknowledged
    (JetStream) or written (core) to NATS; ``received``: envelopes of other nodes handed to the
    handlers; ``own_ignored``: own messages coming back from NATS; ``duplicates``: messages
    seen before (a redelivery); ``foreign_refused``: another node's envelope published again
    here (loop prevention); ``dropped``: by reason; ``pending``: waiting to be sent.
    """

    published: int
    sent: int
    received: int
    own_ignored: int
    duplicates: int
    foreign_refused: int
    dropped: dict[str, int]
    pending: int
    reconnects: int
    connected: bool


class NatsBus:
    """The ``MessageBus`` of a node in a cluster; ``await start()`` before traffic flows to NATS.

    Node ids must be unique in a cluster: a node ignores every message carrying its own id.
    """

    def __init__(
        self,
        url: str,
        node: str,
        *,
        cluster: str = DEFAULT_CLUSTER,
        max_positions: int = 10_000,
        max_jetstream: int = 20_000,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        publish_window: int = 256,
        ack_timeout_s: float = 5.0,
        connect_timeout_s: float = 10.0,
        stream_max_age_s: float = 86_400.0,
        duplicate_window_s: float = 120.0,
        remembered_ids: int = 100_000,
        lease_ttl_s: float = 6.0,
        replicas: int = 1,
        storage: api.StorageType = api.StorageType.FILE,
    ) -> None:
        self.url = url
        self.node = node
        self.subjects = subjects_for(cluster)
        self.codec = BusCodec(max_message_bytes)
        self._handlers: list[DeliveryHandler] = []
        self._ack_timeout_s = ack_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._stream_max_age_s = stream_max_age_s
        self._duplicate_window_s = duplicate_window_s
        self._replicas = replicas
        self._storage = storage
        self._connected = asyncio.Event()
        self._outgoing = Outgoing(
            self.subjects,
            self.codec,
            node,
            connected=self._connected,
            count=self._count,
            transient=_TRANSIENT,
            max_positions=max_positions,
            max_jetstream=max_jetstream,
            window=publish_window,
            ack_timeout_s=ack_timeout_s,
        )
        self._incoming = Incoming(self.codec, node, self._handlers, count=self._count, remembered=remembered_ids)
        self._nc: Client | None = None
        self._latest: LatestCache | None = None
        self._lease_ttl_s = lease_ttl_s
        self._leases: KeyValue | None = None
        self._uids: KeyValue | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pull: JetStreamContext.PullSubscription | None = None
        self._closing = False
        self.published = 0
        self.foreign_refused = self.reconnects = 0
        self.dropped: dict[str, int] = {}

    # -- the MessageBus protocol --------------------------------------------------------------

    def subscribe(self, handler: DeliveryHandler, *, cluster_only: bool = False) -> None:
        self._handlers.append(handler)

    def publish(self, envelope: Envelope, audience: Audience) -> None:
        if not claim_for_node(self.node, envelope):
            self.foreign_refused += 1
            log.debug(
                "envelope of another node not published again",
                extra={"uid": envelope.event.uid, "node": envelope.origin.node},
            )
            return
        self.published += 1
        for handler in self._handlers:
            handler(envelope, audience)
        if self._closing:
            self._count("closed")
            return
        self._outgoing.offer(envelope, audience)

    async def close(self) -> None:
        """Send what is queued (while NATS answers, up to the ack timeout), then drain and disconnect."""
        self._closing = True
        if self._nc is not None and self._connected.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._ack_timeout_s):
                    await self._outgoing.drained()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._pull is not None:
            # Messages that reached the pull inbox after the last fetch are never taken: left
            # subscribed, drain() would wait for them until its own timeout. The durable consumer
            # stays (unacknowledged messages come again on the next start).
            with contextlib.suppress(*_TRANSIENT, ValueError):
                await self._pull.unsubscribe()
        unsent = self._outgoing.discard()
        if unsent:
            self.dropped["closed"] = self.dropped.get("closed", 0) + unsent
            log.warning("bus closed with unsent messages", extra={"count": unsent})
        if self._nc is not None and not self._nc.is_closed:
            with contextlib.suppress(*_TRANSIENT):
                await self._nc.drain()
            if not self._nc.is_closed and not self._nc.is_draining:
                # drain() refuses a connection that is reconnecting (NATS gone): close it instead, or
                # the client's reconnect task outlives the node and the process never exits.
                with contextlib.suppress(*_TRANSIENT):
                    await self._nc.close()
        self._handlers.clear()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, make sure the stream, the KV bucket and this node's consumer exist, start sending."""
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                self._nc = await nats.connect(
                    self.url.split(","),
                    name=f"rallypoint {self.node}",
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    no_echo=True,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    closed_cb=self._on_closed,
                )
        except TimeoutError as exc:
            raise BusError(f"NATS at {self.url} did not answer within {self._connect_timeout_s:g} s") from exc
        self._connected.set()
        # Nothing larger than the server takes is ever sent.
        self.codec.max_bytes = min(self.codec.max_bytes, self._nc.max_payload)
        js = self._nc.jetstream(timeout=self._ack_timeout_s)
        s = self.subjects
        try:
            await ensure_stream(
                js,
                stream_config(
                    s,
                    storage=self._storage,
                    replicas=self._replicas,
                    max_age_s=self._stream_max_age_s,
                    duplicate_window_s=self._duplicate_window_s,
                    max_msg_bytes=self.codec.max_bytes,
                ),
            )
            latest, self._leases, self._uids = await ensure_buckets(
                js,
                s,
                self.uid_bucket_name,
                storage=self._storage,
                replicas=self._replicas,
                lease_ttl_s=self._lease_ttl_s,
            )
            self._latest = LatestCache(latest, self.codec)
            await self._nc.subscribe(s.core_wildcard, cb=self._on_core)
            self._pull = pull = await js.pull_subscribe(
                s.jetstream_wildcard,
                durable=s.consumer_for(self.node),
                stream=s.stream,
                config=consumer_config(self._stream_max_age_s),
            )
        except nats.js.errors.Error as exc:
            raise BusError(f"NATS at {self.url} refused the JetStream setup: {exc}") from exc
        log.info("bus connected", extra={"url": self.url, "node": self.node, "stream": s.stream})
        self._tasks = [
            asyncio.create_task(self._outgoing.run_core(self._nc), name="bus-core-sender"),
            asyncio.create_task(self._outgoing.run_jetstream(js), name="bus-jetstream-sender"),
            asyncio.create_task(self._consume(pull), name="bus-consumer"),
        ]
        for task in self._tasks:
            task.add_done_callback(_log_crash)

    def lease(self, name: str) -> KvLease:
        """The cluster-wide lease ``name`` held on behalf of this node (see ``bus/lease.py``)."""
        if self._leases is None:
            raise BusError("the NATS bus is not started")
        return KvLease(self._leases, name, self.node, ttl_s=self._lease_ttl_s)

    @property
    def uid_bucket_name(self) -> str:
        """The KV bucket of uid claims (``rp_<cluster>_uids``: which principal holds a device uid)."""
        return f"rp_{self.subjects.cluster}_uids"

    def uid_bucket(self) -> KeyValue:
        """The uid claims bucket of a started bus (``services/uid_claims.py``)."""
        if self._uids is None:
            raise BusError("the NATS bus is not started")
        return self._uids

    def heartbeat(self) -> KvLease:
        """This node's liveness key (``node-<id>``): kept while the node runs, expiring when it dies."""
        return self.lease(_liveness_key(self.node))

    async def node_alive(self, node: str) -> bool | None:
        """Whether ``node``'s liveness key exists; ``None`` when NATS does not answer."""
        if self._leases is None:
            return None
        try:
            entry = await self._leases.get(_liveness_key(node))
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            return False
        except _TRANSIENT:
            return None
        return bool(entry.value)

    # -- the shared latest-state cache ----------------------------------------------------------

    async def latest_put(self, envelope: Envelope) -> None:
        """Make ``envelope`` the latest state of its uid for every node."""
        await self._cache().put(envelope)

    async def latest_get(self, uid: str) -> Envelope | None:
        """The latest state of ``uid`` any node put, or ``None``."""
        return await self._cache().get(uid)

    async def latest_list(self) -> list[str]:
        """Every uid with a latest state."""
        return await self._cache().list()

    async def latest_delete(self, uid: str) -> None:
        """Forget the latest state of ``uid``."""
        await self._cache().delete(uid)

    def _cache(self) -> LatestCache:
        if self._latest is None:
            raise BusError("the NATS bus is not started")
        return self._latest

    def replay(self, envelope: Envelope, audience: Audience) -> None:
        """Hand an envelope read back from NATS (the latest-state cache) to this node's handlers only."""
        for handler in self._handlers:
            handler(envelope, audience)

    # -- receiving ------------------------------------------------------------------------------

    async def _on_core(self, msg: Msg) -> None:
        self._incoming.deliver(msg.data)

    async def _consume(self, pull: JetStreamContext.PullSubscription) -> None:
        # Not ``while True``: a cancel that lands as fetch's inner wait_for completes can be lost
        # (asyncio before 3.12), and the loop would fetch on and keep close() waiting forever.
        while not self._closing:
            try:
                msgs = await pull.fetch(_FETCH_BATCH, timeout=_FETCH_WAIT_S)
            except nats.errors.TimeoutError:
                continue
            except _TRANSIENT as exc:
                log.debug("bus fetch failed", extra={"error": repr(exc)})
                await self._connected.wait()
                await asyncio.sleep(0.1)  # JetStream may still be recovering after a reconnect
                continue
            for msg in msgs:
                message_id = (msg.headers or {}).get(MSG_ID, "")
                if message_id.rpartition(":")[0] == self.node:
                    self._incoming.own_ignored += 1
                else:
                    self._incoming.deliver(msg.data)
                with contextlib.suppress(*_TRANSIENT):
                    # Unacknowledged, it comes again after ack_wait and is recognised by its id.
                    await msg.ack()

    # -- connection events ----------------------------------------------------------------------

    async def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, nats.errors.SlowConsumerError):
            self._count("slow_consumer")
        elif not self._connected.is_set():
            # Every failed attempt while reconnecting lands here; the disconnect was logged once.
            log.debug("bus reconnect attempt failed", extra={"url": self.url, "error": repr(exc)})
            return
        log.warning("bus connection error", extra={"url": self.url, "error": repr(exc)})

    async def _on_disconnected(self) -> None:
        self._connected.clear()
        if not self._closing:
            log.warning("bus disconnected from NATS; reconnecting", extra={"url": self.url})

    async def _on_reconnected(self) -> None:
        self.reconnects += 1
        self._connected.set()
        log.info("bus reconnected to NATS", extra={"url": self.url, "reconnects": self.reconnects})

    async def _on_closed(self) -> None:
        self._connected.clear()

    # -- counters -------------------------------------------------------------------------------

    def _count(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def statistics(self) -> NatsBusStatistics:
        """Counters of this bus."""
        return NatsBusStatistics(
            published=self.published,
            sent=self._outgoing.sent,
            received=self._incoming.received,
            own_ignored=self._incoming.own_ignored,
            duplicates=self._incoming.duplicates,
            foreign_refused=self.foreign_refused,
            dropped=dict(self.dropped),
            pending=self._outgoing.pending,
            reconnects=self.reconnects,
            connected=self._connected.is_set(),
        )


def _liveness_key(node: str) -> str:
    return "node-" + safe_name(node)


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("bus task failed", exc_info=task.exception(), extra={"task": task.get_name()})
