"""gRPC (TAK federation v2, ``com.atakmap.FederatedChannel``) on both sides of a link.

As in TAK Server, the side that dials (the *client federate*) opens every stream:
``ClientEventStream(Subscription)`` carries events from the listening side to it,
``ServerEventStream(stream FederatedEvent)`` carries its events to the listening side, and the
group streams advertise which groups each side sends (``ClientFederateGroupsStream`` from the
dialer, ``ServerFederateGroupsStream`` from the listener). Both run over mutual TLS; the listener
identifies the peer by the CA that issued its certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from rallypoint.federation.link import PeerLink
from rallypoint.protocol.fig import fig_pb2, fig_pb2_grpc

log = logging.getLogger(__name__)

# Keepalives detect a silent partition (no RST) within ~10 s on both sides.
KEEPALIVE_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.keepalive_time_ms", 5000),
    ("grpc.keepalive_timeout_ms", 5000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 1000),
    ("grpc.http2.min_ping_interval_without_data_ms", 1000),
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
]
# How long one connection attempt may take before it counts as failed.
CONNECT_TIMEOUT_S = 10.0


# Our identities' description: a peer introducing itself so answers queue checks and acknowledges.
RALLYPOINT = "rallypoint"


def identity(node_id: str, *, server: bool) -> fig_pb2.Identity:
    """How this node introduces itself on a link."""
    kind = fig_pb2.Identity.FEDERATION_TAK_SERVER if server else fig_pb2.Identity.FEDERATION_TAK_CLIENT
    return fig_pb2.Identity(name=node_id, uid=node_id, serverId=node_id, type=kind, description=RALLYPOINT)


def answers_checks(remote: fig_pb2.Identity | None) -> bool:
    """Whether the peer that introduced itself as ``remote`` answers queue checks (a Rallypoint)."""
    return remote is not None and remote.description == RALLYPOINT


class PeerMatcher:
    """Finds the configured peer whose CA issued a client certificate."""

    def __init__(self, links: Sequence[PeerLink], cas: dict[str, list[x509.Certificate]]) -> None:
        self._links = links
        self._cas = cas

    def match(self, pem: bytes) -> PeerLink | None:
        cert = x509.load_pem_x509_certificate(pem)
        for link in self._links:
            for ca in self._cas.get(link.name, []):
                try:
                    cert.verify_directly_issued_by(ca)
                except (ValueError, TypeError, InvalidSignature):  # a mismatch means "not this CA"
                    continue
                return link
        return None


class FederationServicer(fig_pb2_grpc.FederatedChannelServicer):  # type: ignore[misc]
    """The listening side: one servicer for every inbound peer."""

    def __init__(self, node_id: str, matcher: PeerMatcher) -> None:
        self._node_id = node_id
        self._matcher = matcher

    async def _peer(self, context: grpc.aio.ServicerContext[Any, Any]) -> PeerLink:
        pems = context.auth_context().get("x509_pem_cert") or []
        link = self._matcher.match(pems[0]) if pems else None
        if link is None:
            log.warning("federation peer refused: certificate of no configured peer", extra={"peer": context.peer()})
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "unknown federate")
            raise AssertionError("unreachable")
        # The listener starts before the queues are restored; de-duplication needs them.
        await link.wait_loaded()
        return link

    async def ClientEventStream(
        self, request: fig_pb2.Subscription, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[fig_pb2.FederatedEvent]:
        link = await self._peer(context)
        context.set_compression(grpc_compression(link.peer.compression))
        gen = link.attach(peer_answers=answers_checks(request.identity if request.HasField("identity") else None))
        try:
            async for msg in link.outgoing(gen):
                yield msg
        finally:
            link.detach(gen)

    async def ServerEventStream(
        self, request_iterator: AsyncIterator[fig_pb2.FederatedEvent], context: grpc.aio.ServicerContext[Any, Any]
    ) -> fig_pb2.Subscription:
        link = await self._peer(context)
        async for fed in request_iterator:
            await link.receive(fed)
        return fig_pb2.Subscription(identity=identity(self._node_id, server=True))

    async def ServerFederateGroupsStream(
        self, request: fig_pb2.Subscription, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[fig_pb2.FederateGroups]:
        link = await self._peer(context)
        yield fig_pb2.FederateGroups(federateGroups=sorted(set(link.peer.groups_out.values())))

    async def ClientFederateGroupsStream(
        self, request_iterator: AsyncIterator[fig_pb2.FederateGroups], context: grpc.aio.ServicerContext[Any, Any]
    ) -> fig_pb2.Subscription:
        link = await self._peer(context)
        async for groups in request_iterator:
            link.remote_groups = tuple(groups.federateGroups)
        return fig_pb2.Subscription(identity=identity(self._node_id, server=True))

    async def HealthCheck(
        self, request: fig_pb2.ClientHealth, context: grpc.aio.ServicerContext[Any, Any]
    ) -> fig_pb2.ServerHealth:
        return fig_pb2.ServerHealth(status=fig_pb2.ServerHealth.SERVING)

    async def getIdentity(
        self, request: fig_pb2.Empty, context: grpc.aio.ServicerContext[Any, Any]
    ) -> fig_pb2.Identity:
        return identity(self._node_id, server=True)


async def dial(
    link: PeerLink,
    *,
    node_id: str,
    credentials: grpc.ChannelCredentials,
    stop: asyncio.Event,
    delay_s: float,
    backoff_max_s: float,
    sleep: Callable[[asyncio.Event, float], Any],
) -> None:
    """Keep one outbound link connected until ``stop``: exponential backoff between attempts."""
    peer = link.peer
    options = list(KEEPALIVE_OPTIONS)
    if peer.tls_name:
        options.append(("grpc.ssl_target_name_override", peer.tls_name))
    await sleep(stop, delay_s)
    backoff = 0.5
    while not stop.is_set():
        link.connecting()
        gen = 0
        try:
            async with grpc.aio.secure_channel(
                f"{peer.host}:{peer.port}", credentials, options=options, compression=grpc_compression(peer.compression)
            ) as channel:
                stub = fig_pb2_grpc.FederatedChannelStub(channel)
                await _connected(channel, stub, CONNECT_TIMEOUT_S)
                remote = await _remote_identity(stub, CONNECT_TIMEOUT_S)
                sub = fig_pb2.Subscription(identity=identity(node_id, server=False))
                inbound = stub.ClientEventStream(sub)
                gen = link.attach(peer_answers=answers_checks(remote))
                backoff = 0.5
                outbound = stub.ServerEventStream(link.outgoing(gen))
                groups = stub.ClientFederateGroupsStream(
                    _once(fig_pb2.FederateGroups(federateGroups=sorted(set(peer.groups_out.values()))))
                )
                stopper = asyncio.ensure_future(stop.wait())
                reader = asyncio.ensure_future(_read(link, inbound))
                writer = asyncio.ensure_future(_finish(outbound))
                try:
                    done, _ = await asyncio.wait(
                        {reader, stopper, writer},
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    for task in done:
                        if task is not stopper and task.exception() is not None:
                            reason = failure_reason(task.exception())
                            log.info("federation link lost", extra={"peer": link.name, "reason": reason})
                finally:
                    inbound.cancel()
                    outbound.cancel()
                    groups.cancel()
                    stopper.cancel()
                    for task in (reader, writer):
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                            await task
        except (grpc.aio.AioRpcError, TimeoutError, OSError) as exc:
            log.info("federation connect failed", extra={"peer": link.name, "reason": failure_reason(exc)})
        finally:
            link.detach(gen)
        await sleep(stop, backoff)
        backoff = min(backoff * 2, backoff_max_s)


async def _connected(channel: grpc.aio.Channel, stub: fig_pb2_grpc.FederatedChannelStub, timeout_s: float) -> None:
    """Return once ``channel`` is ready; raise gRPC's own account of a failed attempt, or ``TimeoutError``."""
    try:
        async with asyncio.timeout(timeout_s):
            state = channel.get_state(try_to_connect=True)
            while state is not grpc.ChannelConnectivity.READY:
                if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE:
                    # The channel keeps the cause (refused, TLS handshake, DNS) to itself; a call made while
                    # it is in failure fails at once with that cause, without reaching the peer.
                    await stub.getIdentity(fig_pb2.Empty(), timeout=timeout_s)
                await channel.wait_for_state_change(state)
                state = channel.get_state()
    except TimeoutError:
        raise TimeoutError(f"no connection within {timeout_s:g} s") from None


async def _remote_identity(stub: fig_pb2_grpc.FederatedChannelStub, timeout_s: float) -> fig_pb2.Identity | None:
    """The listening peer's identity; None from a peer without ``getIdentity`` (other errors fail the attempt)."""
    try:
        answer: fig_pb2.Identity = await stub.getIdentity(fig_pb2.Empty(), timeout=timeout_s)
    except grpc.aio.AioRpcError as exc:
        if exc.code() is grpc.StatusCode.UNIMPLEMENTED:
            return None
        raise
    return answer


def failure_reason(exc: BaseException | None) -> str:
    """What went wrong, for the log: the exception's type and text (gRPC's status code and details)."""
    if exc is None:
        return "stream ended"
    text = f"{exc.code().name}: {exc.details() or ''}" if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
    name = type(exc).__name__
    return (f"{name}: {text.strip()}" if text.strip() else name)[:300]


def grpc_compression(name: str) -> grpc.Compression:
    """gRPC's compression for a peer's ``compression`` setting."""
    options = {"gzip": grpc.Compression.Gzip, "deflate": grpc.Compression.Deflate}
    return options.get(name, grpc.Compression.NoCompression)


async def _read(link: PeerLink, inbound: Any) -> None:
    async for fed in inbound:
        await link.receive(fed)


async def _finish(call: Any) -> None:
    await call


async def _once(msg: fig_pb2.FederateGroups) -> AsyncIterator[fig_pb2.FederateGroups]:
    yield msg
