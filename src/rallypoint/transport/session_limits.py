"""Limits of one streaming session: admission (per address and identity), input rate, output byte budget."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rallypoint.delivery.budget import LinkBudget, ThinningPolicy
from rallypoint.protocol.compression import deflate_bound
from rallypoint.security.ratelimit import TokenBucket

if TYPE_CHECKING:
    from rallypoint.transport.context import TransportContext


class SessionLimits:
    """Connection counts this session holds in the shared tables, plus its own event-rate bucket."""

    __slots__ = ("_address", "_address_bucket", "_bucket", "_ctx", "_principal", "_rate_drops", "_unlimited")

    def __init__(self, ctx: TransportContext, now: float) -> None:
        self._ctx = ctx
        self._bucket = TokenBucket(ctx.max_events_per_s, ctx.events_burst, now)
        self._rate_drops = 0
        # Set once admitted: what ``release`` must give back.
        self._address: str | None = None
        self._principal: str | None = None
        # The address's shared bucket, held while admitted (allow() is per event: no lookup there).
        self._address_bucket: TokenBucket | None = None
        # Neither bucket limits anything: allow() answers at once.
        self._unlimited = self._bucket.rate <= 0

    def admit(self, peer: str, principal: str | None, now: float) -> str | None:
        """Count this connection against its address and identity; the exceeded limit's name, or None."""
        ctx = self._ctx
        address = peer.rsplit(":", 1)[0]
        if not ctx.addresses.connect(address, now):
            return "address_connections"
        self._address = address
        bucket = self._address_bucket = ctx.addresses.bucket(address)
        self._unlimited = self._bucket.rate <= 0 and (bucket is None or bucket.rate <= 0)
        if principal is not None and ctx.max_connections_per_identity > 0:
            count = ctx.identities.get(principal, 0)
            if count >= ctx.max_connections_per_identity:
                # Not counted for this identity, so release must not give anything back for it.
                return "identity_connections"
            ctx.identities[principal] = count + 1
        self._principal = principal
        return None

    def release(self) -> None:
        """Give back the connection counts taken by ``admit`` (idempotent)."""
        ctx = self._ctx
        if self._address is None:
            return
        ctx.addresses.disconnect(self._address)
        self._address = None
        self._address_bucket = None
        self._unlimited = self._bucket.rate <= 0
        principal = self._principal
        if principal is not None and ctx.max_connections_per_identity > 0:
            count = ctx.identities.get(principal, 0) - 1
            if count <= 0:
                ctx.identities.pop(principal, None)
            else:
                ctx.identities[principal] = count

    def allow(self, now: float) -> bool:
        """Whether one more event may be accepted now (session and address rates)."""
        if self._unlimited:
            return True
        shared = self._address_bucket
        if self._bucket.allow(now) and (shared is None or shared.allow(now)):
            self._rate_drops = 0
            return True
        self._rate_drops += 1
        return False

    @property
    def flooding(self) -> bool:
        """Far beyond the limit: a flood, not a burst."""
        return self._rate_drops > self._bucket.burst


def budget_policy(ctx: TransportContext, principal: str | None, read_groups: frozenset[str]) -> ThinningPolicy | None:
    """The byte budget of a client of this class, or None when its output is not budgeted."""
    budget_of = ctx.budget_of
    rate = budget_of(principal, read_groups) if budget_of is not None else ctx.session_budget_bytes_per_s
    if rate <= 0:
        return None
    # The burst must hold the largest event a peer may send, or that event could never go; on a
    # compressed stream an event is charged deflate's worst case for its size before compressing.
    largest = ctx.limits.max_event_bytes
    if ctx.offer_compression:
        largest = deflate_bound(largest)
    burst = max(largest, int(rate * 2))
    return ThinningPolicy(LinkBudget(rate, burst, ctx.clock.monotonic()))
