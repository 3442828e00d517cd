"""The Meshtastic gateway: each configured mesh bridged into the picture and back.

Mesh to server: every packet a link hands over is decoded (``connectors/meshtastic/packets.py``)
and its events enter through ``Ingest.accept`` into the mesh's groups, with the gateway's session
as origin. Server to mesh: an ingest hook picks what crosses (``outbound.py``) and queues
it in the channel budget; a writer sends what the budget allows. A chat the mesh acknowledges
(``ROUTING_APP`` answer to our ``want_ack``) becomes a ``b-t-f-d`` delivery receipt for its
sender. A link that fails is reopened with backoff; counters say what was dropped and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client.core import Metric
from starlette.routing import BaseRoute

from rallypoint.clock import Clock
from rallypoint.connectors.meshtastic.budget import ChannelBudget
from rallypoint.connectors.meshtastic.client import NodeSeen, Received, Refused
from rallypoint.connectors.meshtastic.links import MeshLink
from rallypoint.connectors.meshtastic.mesh_cot import delivery_receipt
from rallypoint.connectors.meshtastic.metrics import mesh_families
from rallypoint.connectors.meshtastic.outbound import outgoing
from rallypoint.connectors.meshtastic.packets import Inbound, MeshInbound
from rallypoint.connectors.meshtastic.spec import MeshSpec
from rallypoint.connectors.meshtastic.tak import TakCodec
from rallypoint.errors import RallypointError, RemoteProtocolError
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience, to_sessions

log = logging.getLogger(__name__)
MAX_AWAITING_ACK = 256
HEARTBEAT_S = 300.0  # a keep-alive to the node after this long without writing
LinkOpener = Callable[[MeshSpec, random.Random], contextlib.AbstractAsyncContextManager[MeshLink]]


class MeshGateway:
    """One mesh: a link reopened until closed, packets both ways, a budget, counters."""

    def __init__(self, spec: MeshSpec, *, clock: Clock, accept: Callable[[Envelope], object],
                 deliver: Callable[[Envelope, Audience], None], origin: Origin, open_link: LinkOpener,
                 rng: random.Random, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.spec = spec
        self._heartbeat_s = heartbeat_s
        self._clock = clock
        self._accept = accept
        self._deliver = deliver
        self._origin = origin
        self._open = open_link
        self._rng = rng
        self._tak = TakCodec(spec.dictionaries)
        self.inbound = MeshInbound(self._tak)
        self.budget = ChannelBudget(bytes_per_s=spec.bytes_per_s, burst_bytes=spec.burst_bytes)
        self._send_groups = frozenset(spec.send_groups)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._awaiting: OrderedDict[int, Envelope] = OrderedDict()  # packet id -> chat awaiting its ack
        self._chats: OrderedDict[str, Envelope] = OrderedDict()  # queued chats by event uid
        self.counters: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.connected = asyncio.Event()

    # -- server to mesh ----------------------------------------------------------------------
    def observe(self, envelope: Envelope, audience: Audience) -> None:
        """An ingest hook: queue what crosses into the mesh (cheap, never blocks)."""
        if envelope.repeat or audience.delivery_only:
            return
        # Every node's publications: a mesh hangs off one node (its radio or broker session), which
        # sends what entered anywhere in the cluster.
        try:
            item = outgoing(envelope, tak=self._tak, send=self.spec.send, send_groups=self._send_groups,
                            own_session=self._origin.session_id)
        except (RallypointError, ValueError) as exc:
            # An event the mesh form cannot carry stays off the mesh; the other hooks still run.
            self.counters["not_sendable"] += 1
            log.info("meshtastic event not sent", extra={"mesh": self.spec.name, "uid": envelope.event.uid,
                                                         "error": str(exc)})
            return
        if item is None:
            return
        if item.want_ack:
            # The chat behind the packet, for its receipt once the mesh acknowledges it (bounded).
            self._chats[item.key] = envelope
            while len(self._chats) > MAX_AWAITING_ACK * 4:
                self._chats.popitem(last=False)
        self.budget.offer(item)
        self.counters["queued"] += 1
        self._wake.set()

    async def _writer(self, link: MeshLink) -> None:
        last_write = self._clock.monotonic()
        while True:
            now = self._clock.monotonic()
            idle_left = self._heartbeat_s - (now - last_write)
            if idle_left <= 0:
                # Nodes close client sessions they have not heard from for a while.
                await link.heartbeat()
                last_write = now
                continue
            wait = self.budget.wait_s(now)
            if wait is None or wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=min(idle_left, wait or idle_left))
                continue
            item = self.budget.take(self._clock.monotonic())
            if item is None:
                continue
            packet_id = self._rng.randrange(1, 0xFFFF_FFFF)
            if item.want_ack:
                chat = self._chats.pop(item.key, None)
                if chat is not None:
                    self._awaiting[packet_id] = chat
                    while len(self._awaiting) > MAX_AWAITING_ACK:
                        self._awaiting.popitem(last=False)
            await link.send(port=item.port, payload=item.payload, packet_id=packet_id, want_ack=item.want_ack)
            last_write = self._clock.monotonic()
            self.counters["sent"] += 1
            self.counters["sent_bytes"] += len(item.payload)

    # -- mesh to server ----------------------------------------------------------------------
    async def _reader(self, link: MeshLink) -> None:
        while events := await link.receive():
            for event in events:
                match event:
                    case NodeSeen(num=num, user=user):
                        self.inbound.learn_user(num, user)
                    case Received(packet=packet):
                        self._packet(packet)
                    case Refused(reason=reason, detail=detail):
                        self.counters["packets"] += 1
                        self._refused(RemoteProtocolError(reason, detail))
                    case _:
                        pass
        raise ConnectionError("the mesh link closed")

    def _packet(self, packet: Any) -> None:
        now = self._clock.now_ms()
        self.counters["packets"] += 1
        try:
            result = self.inbound.packet(packet, now)
        except RemoteProtocolError as exc:
            self._refused(exc)
            return
        self._deliver_result(result, now)

    def _refused(self, exc: RemoteProtocolError) -> None:
        self.dropped[exc.reason] += 1
        # Repeats are normal on a mesh (rebroadcasts, several MQTT gateways): not worth a line each.
        level = logging.DEBUG if exc.reason == "replay" else logging.INFO
        log.log(level, "meshtastic packet dropped", extra={"mesh": self.spec.name, "reason": exc.reason,
                                                           "detail": exc.detail})

    def _deliver_result(self, result: Inbound, now: int) -> None:
        for event in result.events:
            try:
                self._accept(Envelope(event, self._origin, now))
                self.counters["accepted"] += 1
            except RemoteProtocolError as exc:
                self.dropped[exc.reason] += 1
        if result.acked is not None:
            chat = self._awaiting.pop(result.acked, None)
            if chat is not None:
                self.counters["acked"] += 1
                if chat.event.type == "b-t-f":
                    receipt = delivery_receipt(chat.event, now_ms=now)
                    self._deliver(Envelope(receipt, self._origin, now), to_sessions(chat.origin.session_id))
        if result.failed is not None and self._awaiting.pop(result.failed, None) is not None:
            self.counters["not_acked"] += 1

    # -- lifetime ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Keep the link open (reopened with backoff) until :meth:`close`."""
        delay = 1.0
        while not self._stop.is_set():
            try:
                async with self._open(self.spec, self._rng) as link:
                    self.connected.set()
                    self.counters["connects"] += 1
                    log.info("meshtastic connected", extra={"mesh": self.spec.name, "kind": self.spec.kind.value})
                    delay = 1.0
                    async with asyncio.TaskGroup() as tg:
                        stop = tg.create_task(self._stop.wait())
                        reader = tg.create_task(self._reader(link))
                        writer = tg.create_task(self._writer(link))
                        await asyncio.wait({stop, reader, writer}, return_when=asyncio.FIRST_COMPLETED)
                        for task in (stop, reader, writer):
                            task.cancel()
            except* (OSError, ConnectionError, RallypointError) as group:
                self.counters["link_failures"] += 1
                log.warning("meshtastic link failed", extra={"mesh": self.spec.name, "error": str(group.exceptions[0])})
            except* Exception as group:  # a broker library's own errors (aiomqtt.MqttError) are link failures
                if type(group.exceptions[0]).__name__ not in ("MqttError", "MqttCodeError", "SerialException"):
                    raise
                self.counters["link_failures"] += 1
                log.warning("meshtastic link failed", extra={"mesh": self.spec.name, "error": str(group.exceptions[0])})
            finally:
                self.connected.clear()
            if self._stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay * (0.5 + self._rng.random()))
            delay = min(delay * 2, 30.0)

    def close(self) -> None:
        """Stop the link."""
        self._stop.set()

    def statistics(self) -> dict[str, object]:
        """Counters, drops by reason, and the budget's figures."""
        return {
            "name": self.spec.name, "connected": self.connected.is_set(), **self.counters,
            "dropped": dict(self.dropped), "pending": self.budget.pending(), "coalesced": self.budget.coalesced,
            "budget_bytes_sent": self.budget.sent_bytes,
        }


class MeshService:
    """Every configured mesh as one node feature: hook, background work, cleanup."""

    def __init__(self, gateways: Sequence[MeshGateway]) -> None:
        self.gateways = list(gateways)

    @property
    def routes(self) -> Sequence[BaseRoute]:
        return ()

    def observe(self, envelope: Envelope, audience: Audience) -> None:
        """Offer a publication to every mesh."""
        for gateway in self.gateways:
            gateway.observe(envelope, audience)

    async def run(self) -> None:
        """Run every gateway until :meth:`close`."""
        if not self.gateways:
            return
        async with asyncio.TaskGroup() as tg:
            for gateway in self.gateways:
                tg.create_task(gateway.run())

    def metric_families(self) -> Iterable[Metric]:
        """``/metrics`` families of every gateway (``metrics.py``)."""
        return mesh_families(self.gateways)

    async def close(self) -> None:
        """Stop every gateway."""
        for gateway in self.gateways:
            gateway.close()
