"""What a package store keeps: upload descriptions (metadata rows) and the content (blobs).

Semantics every backend shares (``tests/contract/test_package_store.py`` pins them):

* The content is stored once per SHA-256, its description once per *uploader*: a submitter with
  its write groups. Two groups holding the same bytes never see each other's names or keywords.
* ``add`` of an upload whose uploader already has a row for the hash leaves that row unchanged.
* Rows are returned oldest first (by ``id``, which grows with every insert).
* Groups are frozensets of exact names.

Blobs live in a content-addressed directory (``storage.files``); several nodes share packages by
sharing that directory (see docs/operations.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import msgspec

from rallypoint.storage.files import BlobWriter

UPDATABLE_PACKAGE_FIELDS = frozenset({"tool", "keywords", "expiration_ms"})


class PackageRecord(msgspec.Struct, frozen=True):
    """One upload of a file: who sent which bytes, under what name, for which groups."""

    hash: str
    uid: str
    name: str
    mime: str
    size: int
    keywords: tuple[str, ...]
    tool: str
    creator_uid: str
    submitter: str
    groups: frozenset[str]
    submitted_ms: int
    expiration_ms: int | None = None
    id: int = 0


class PackageRecords(Protocol):
    """Package metadata rows."""

    async def add(self, record: PackageRecord) -> tuple[PackageRecord, bool]:
        """Insert ``record`` unless its uploader (submitter and groups) has a row for the hash.

        Returns the stored row (with its ``id``) and True when it was new.
        """
        ...

    async def rows(self, digest: str) -> list[PackageRecord]:
        """Every upload row of ``digest``, oldest first."""
        ...

    async def search(self, *, keyword: str | None = None, tool: str | None = None) -> list[PackageRecord]:
        """Rows carrying ``keyword`` and/or ``tool`` (None: any), oldest first."""
        ...

    async def update(self, row_id: int, **changes: Any) -> PackageRecord | None:
        """Set ``tool``, ``keywords`` or ``expiration_ms`` on one row; returns it, or None if absent."""
        ...

    async def delete(self, row_ids: list[int]) -> tuple[int, int]:
        """Remove the given rows; returns ``(rows removed, rows left for the same hashes)``."""
        ...

    async def close(self) -> None:
        """Release the backend."""
        ...


class BlobStore(Protocol):
    """Content keyed by SHA-256; a blob is either complete under its hash or absent."""

    def writer(self, max_bytes: int) -> BlobWriter:
        """A new spool for an upload of at most ``max_bytes``."""
        ...

    def commit(self, writer: BlobWriter) -> str:
        """Keep a finished upload under its hash (one copy per content); returns the hash."""
        ...

    def path(self, digest: str) -> Path | None:
        """The file holding ``digest``, or None when absent or not a valid digest."""
        ...

    def delete(self, digest: str) -> bool:
        """Remove a blob; True if it existed."""
        ...


def check_package_changes(changes: dict[str, Any]) -> None:
    """Refuse (``ValueError``) a change to a field ``update`` may not set."""
    unknown = set(changes) - UPDATABLE_PACKAGE_FIELDS
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)}")
