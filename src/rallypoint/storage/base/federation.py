"""What a federation store keeps: durable outbound queues per peer and inbound de-duplication marks.

Semantics every backend shares (``tests/contract/test_federation_store.py`` pins them):

* Per peer, a queue of ``(seq, payload)`` waiting for the peer's acknowledgement, the next sequence
  number to assign (never goes backwards, even once every row is acknowledged) and the queue's
  ``epoch``, created with the queue so a queue made afresh is told apart from the old one.
* ``seen``: per ``(origin node, epoch)``, the highest sequence number accepted; it only grows.
* ``positions``: per peer, the latest coalesced report of each uid; ``ord`` keeps their order and
  expired reports (``stale <= now``) are never returned.

These queues are per node (each node has its own links), so even on a shared database every row
is keyed by the node's own peers.
"""

from __future__ import annotations

from typing import Protocol

import msgspec


class PeerBacklog(msgspec.Struct, frozen=True):
    """A peer's queue as loaded at start: its epoch, counters and unacknowledged rows (oldest first)."""

    epoch: str
    next_seq: int
    acked: int
    rows: tuple[tuple[int, bytes], ...]
    # True when this call created the queue (first contact, or the store was lost).
    created: bool = False


class FederationRecords(Protocol):
    """Durable federation state."""

    async def backlog(self, peer: str, new_epoch: str) -> PeerBacklog:
        """Unacknowledged messages of ``peer`` and its counters; creates the queue with ``new_epoch``."""
        ...

    async def append(self, peer: str, rows: list[tuple[int, bytes]]) -> None:
        """Persist newly queued messages (sequence numbers already assigned by the caller)."""
        ...

    async def acknowledge(self, peer: str, seq: int) -> None:
        """The peer has everything up to ``seq``: forget those rows."""
        ...

    async def new_epoch(self, peer: str, epoch: str, rows: list[tuple[int, bytes]]) -> None:
        """Start queue ``epoch`` for ``peer`` holding ``rows`` (numbered from 1); the old queue's rows go."""
        ...

    async def trim(self, peer: str, keep_after: int) -> None:
        """Drop rows at or below ``keep_after`` without an acknowledgement (queue overflow)."""
        ...

    async def positions(self, peer: str, now_ms: int) -> list[tuple[str, int, int, bytes]]:
        """Latest reports kept for ``peer`` as ``(uid, ord, stale, payload)`` by ``ord``; expired ones go."""
        ...

    async def save_positions(self, peer: str, upserts: list[tuple[str, int, int, bytes]], deletes: list[str]) -> None:
        """Overwrite the latest report of each uid (``(uid, ord, stale, payload)``) and forget ``deletes``."""
        ...

    async def prune_positions(self, peer: str, now_ms: int) -> None:
        """Forget kept reports of ``peer`` whose stale has passed."""
        ...

    async def seen(self) -> dict[tuple[str, str], int]:
        """Highest sequence number accepted per ``(origin node, epoch)``."""
        ...

    async def mark_seen(self, origin: str, epoch: str, seq: int) -> None:
        """Record ``seq`` as accepted from ``(origin, epoch)`` (a lower mark never replaces a higher one)."""
        ...

    async def close(self) -> None:
        """Release the backend."""
        ...
