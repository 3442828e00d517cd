"""What an audit store keeps: the rows of the hash chain (``security.audit`` computes the hashes).

Semantics every backend shares (``tests/contract/test_audit_store.py`` pins them):

* Append-only: nothing updates or deletes a row.
* ``append(build)`` reads the chain head and inserts ``build(head_seq, head_hash)`` as one
  serialised step, so appends from several writers at once (a CLI next to a running server, or
  several nodes on one database) still form one unbroken chain.
* The *anchor* is the newest ``(seq, hash)`` recorded apart from the rows on every append, so a
  tail cut off the rows is noticed by verification.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import msgspec


class AuditRow(msgspec.Struct, frozen=True):
    """One stored entry; ``detail`` is the JSON text exactly as hashed."""

    seq: int
    ts_ms: int
    actor: str
    action: str
    target: str
    detail: str
    prev_hash: str
    hash: str


class Anchor(msgspec.Struct, frozen=True):
    """The newest entry at the time of the last append."""

    seq: int
    hash: str


# Given the previous entry's (seq, hash), or (0, None) for an empty log, build the next row.
RowBuilder = Callable[[int, str | None], AuditRow]


class AuditRecords(Protocol):
    """Where audit entries are kept."""

    async def append(self, build: RowBuilder) -> AuditRow:
        """Insert ``build(last_seq, last_hash)`` serialised against every other append; refresh the anchor."""
        ...

    async def rows(self, *, since_seq: int = 0, limit: int = 1000) -> list[AuditRow]:
        """Rows with ``seq > since_seq`` in ``seq`` order, at most ``limit``."""
        ...

    async def read_anchor(self) -> Anchor | None:
        """The anchor, or None if there is none; ``StorageError`` if it is unreadable."""
        ...

    async def close(self) -> None:
        """Release the backend."""
        ...
