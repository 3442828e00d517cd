"""What every transport needs from the node, passed explicitly (no globals)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from rallypoint.clock import Clock
from rallypoint.delivery.dispatcher import Dispatcher
from rallypoint.protocol.limits import Limits
from rallypoint.routing.ids import NodeIds
from rallypoint.security.ratelimit import AddressLimiter
from rallypoint.services.ingest import Ingest
from rallypoint.services.metrics import ServerMetrics
from rallypoint.services.sessions import SessionHub
from rallypoint.transport.coalescer import WriteCoalescer


class ClosableSession(Protocol):
    id: str
    cert_serial: int | None
    principal: str | None
    # (write, read) groups the client switched off (TAK channels); account changes keep them off.
    inactive_groups: tuple[frozenset[str], frozenset[str]]

    @property
    def last_rx(self) -> float:
        """Monotonic time of the last read."""
        ...

    @property
    def partial_since(self) -> float | None:
        """Since when an incomplete event has waited in the read buffer."""
        ...

    @property
    def paused_since(self) -> float | None:
        """Since when the socket has refused more data."""
        ...

    def regroup(self, write_groups: frozenset[str], read_groups: frozenset[str]) -> bool: ...

    def close(self, reason: str, *, abort: bool = False) -> None: ...

    def flush_and_close(self) -> None: ...

    def statistics(self) -> dict[str, int]: ...


class SessionSet:
    """The open streaming sessions of this node (for limits, idle sweeps, shutdown and metrics)."""

    def __init__(self) -> None:
        self._sessions: dict[str, ClosableSession] = {}

    def add(self, session: ClosableSession) -> None:
        self._sessions[session.id] = session

    def discard(self, session: ClosableSession) -> bool:
        return self._sessions.pop(session.id, None) is not None

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[ClosableSession]:
        return iter(list(self._sessions.values()))


@dataclass
class TransportContext:
    """Shared, explicitly passed dependencies of the stream and datagram transports."""

    ingest: Ingest
    hub: SessionHub
    metrics: ServerMetrics
    clock: Clock
    limits: Limits
    principal_of: Callable[[bytes | None], str | None]
    # (write, read) groups of a principal, or None to refuse it (disabled account).
    access_of: Callable[[str | None], tuple[frozenset[str], frozenset[str]] | None]
    audit: Callable[[str, str, str, dict[str, str]], None] = lambda actor, action, target, detail: None
    is_revoked: Callable[[int | None], bool] = lambda serial: False
    # This node's id and its session ids (unique across nodes and restarts).
    ids: NodeIds = field(default_factory=lambda: NodeIds.start("rallypoint"))
    offer_protobuf: bool = True
    # Offer deflate stream compression with TAK protocol 1 (clients opt in; docs/protocol.md).
    offer_compression: bool = False
    outbox_max_items: int = 10_000
    # Per-session link budget in bytes/s for degraded links (0 = off): positions are thinned first.
    session_budget_bytes_per_s: float = 0.0
    # Byte budget of a client from its class (certificate name, else groups); 0 = unlimited.
    budget_of: Callable[[str | None, frozenset[str]], float] | None = None
    slow_receiver_timeout_s: float = 30.0
    max_connections: int = 10_000
    write_buffer_high: int = 1024 * 1024
    read_chunk_bytes: int = 32 * 1024
    max_events_per_s: float = 0.0
    events_burst: int = 500
    max_connections_per_identity: int = 0
    addresses: AddressLimiter = field(default_factory=lambda: AddressLimiter(max_connections=0, rate=0, burst=1))
    identities: dict[str, int] = field(default_factory=dict)
    sessions: SessionSet = field(default_factory=SessionSet)
    coalescer: WriteCoalescer = field(default_factory=WriteCoalescer)
    # The node's dispatcher: a session holds back its group broadcasts while it takes in one read.
    dispatcher: Dispatcher | None = None
    # Outbox counters of sessions that already closed (live ones are read from the sessions).
    read_buffer: bytearray = field(default_factory=bytearray)
    closed_totals: dict[str, int] = field(default_factory=lambda: {"dropped": 0, "coalesced": 0, "pauses": 0})

    def __post_init__(self) -> None:
        if len(self.read_buffer) != self.read_chunk_bytes:
            self.read_buffer = bytearray(self.read_chunk_bytes)

    def outbox_totals(self) -> dict[str, int]:
        """Cumulative outbox counters over every session, open or closed."""
        totals = dict(self.closed_totals)
        totals["queued"] = 0
        for session in self.sessions:
            for key, value in session.statistics().items():
                totals[key] = totals.get(key, 0) + value
        return totals
