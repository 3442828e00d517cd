"""What a mailbox store keeps: store-and-forward mail for offline receivers.

Semantics every backend shares (``tests/contract/test_mailbox_store.py`` pins them):

* A message is kept once, with the identities it still waits for; a per-identity *cursor* says
  everything at or below it is delivered (a pending row at or below the cursor is delivered,
  whatever else the store says), and a message delivered above the cursor loses its own pending row.
* Cursors and the sequence high-water mark only move forward, so sequence numbers never go back,
  even after a purge removed every message.
* ``apply`` writes a batch atomically; writing the same batch twice changes nothing more.
* ``load_state`` returns everything still deliverable (unexpired, above the cursor) and every
  known recipient (oldest seen first). It runs once, before the server accepts connections.
* *Seen* rows are the node's memory of other nodes' addressed messages it delivered to an identity
  (live, or kept mail it wrote): written once (a second write changes nothing), loaded until they
  expire (per identity, in message time order), deleted by ``purge`` once expired.
"""

from __future__ import annotations

from typing import Protocol

import msgspec


class MailRecord(msgspec.Struct, frozen=True, gc=False):
    """One kept event; shared by every recipient it waits for."""

    seq: int
    xml: bytes
    groups: frozenset[str]
    priority: int
    created_ms: int
    expires_ms: int


class RecipientRecord(msgspec.Struct, frozen=True, gc=False):
    """A receiving identity as last seen: how to address it and what it may read."""

    identity: str
    uid: str | None
    callsign: str | None
    principal: str | None
    read_groups: frozenset[str]
    last_seen_ms: int


class SeenRecord(msgspec.Struct, frozen=True, gc=False):
    """An addressed message of another node that this node delivered to ``identity``.

    The message is named by its uid and time (a later version of an item is another message); the
    row is kept until ``expires_ms``, when the holding node would have dropped that mail anyway.
    """

    identity: str
    uid: str
    time: int
    expires_ms: int


class MailboxState(msgspec.Struct, frozen=True):
    """Everything still deliverable, as loaded at start."""

    next_seq: int
    pending: dict[str, list[MailRecord]]
    cursors: dict[str, int]
    recipients: list[RecipientRecord]
    # Unexpired seen rows, grouped by identity, oldest message first within each identity.
    seen: list[SeenRecord] = msgspec.field(default_factory=list)


class MailboxBatch(msgspec.Struct, frozen=True):
    """Changes written in one transaction, in this order: new mail, cursors, deliveries, recipients, purge."""

    mails: tuple[tuple[MailRecord, tuple[str, ...]], ...] = ()
    cursors: tuple[tuple[str, int], ...] = ()
    # Single messages delivered above the identity's cursor (written out of order).
    delivered: tuple[tuple[str, int], ...] = ()
    recipients: tuple[RecipientRecord, ...] = ()
    forget: tuple[str, ...] = ()
    # Other nodes' messages delivered here (see SeenRecord).
    seen: tuple[SeenRecord, ...] = ()
    now_ms: int = 0


class MailboxRecords(Protocol):
    """Mailbox rows."""

    def load_state(self, now_ms: int) -> MailboxState:
        """Everything still deliverable at ``now_ms`` (synchronous: it runs once, before serving)."""
        ...

    async def apply(self, batch: MailboxBatch) -> None:
        """Write one batch atomically."""
        ...

    async def purge(self, now_ms: int) -> int:
        """Delete expired and fully delivered messages and expired seen rows; returns how many message rows went."""
        ...

    async def close(self) -> None:
        """Release the backend; closing twice is harmless."""
        ...
