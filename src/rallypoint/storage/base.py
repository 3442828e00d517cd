"""What every event store promises, whatever it keeps its rows in.

Semantics shared by all backends (the contract tests in ``tests/contract`` pin them):

* Times are epoch milliseconds. A history window is half-open: ``since_ms <= time < until_ms``.
* Ordering is by event ``time``, ties broken by arrival order (``asc``) or its reverse (``desc``).
* ``type_prefix`` is a plain string prefix on the CoT type (``"a-f"`` matches ``"a-f-G-U-C"``).
* ``bbox`` is ``(min_lon, min_lat, max_lon, max_lat)``, edges inclusive. ``min_lon > max_lon`` means
  the box crosses the antimeridian. A row at exactly 0,0 (no position fix, ``model.fix``) is in no box.
* The *latest* event of a uid is the one with the greatest ``time`` (ties: the last appended).
  ``latest()`` returns it only if it is not stale at ``now_ms`` and has not been deleted; an older
  event of the same uid never stands in for a newer one that is stale or deleted.
* ``reader`` keeps the rows a reader may see: broadcast rows (a non-empty comma-separated ``group``)
  sharing a group with ``reader.groups``; addressed rows (empty ``group``) only when
  ``reader.all_addressed`` or their ``sender`` is ``reader.sender``.
* ``after`` is a keyset cursor ``(time, key)``: only rows strictly after it in the query's order.
  ``page()`` returns each row with its key (the arrival tie-breaker) so a caller can build one.
* ``prune(cutoff)`` removes events with ``time < cutoff`` except a uid's latest event while it is
  still live (not deleted, ``stale > cutoff``): retention must not forget a long-lived marker that
  late joiners still need.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import msgspec

from rallypoint.model.cot import CotEvent
from rallypoint.model.fix import has_fix

Order = Literal["asc", "desc"]
BBox = tuple[float, float, float, float]


class StoredEvent(msgspec.Struct, frozen=True, gc=False):
    """One persisted event: the indexed envelope plus the full forwarded XML."""

    uid: str
    type: str
    how: str
    time: int
    start: int
    stale: int
    lat: float
    lon: float
    hae: float
    callsign: str | None
    group: str | None
    # Principal or session id that submitted the event (audit and "do not echo back" on replay).
    sender: str | None
    xml: bytes
    received: int


class HistoryReader(msgspec.Struct, frozen=True):
    """Whose rows a history query may return (see the module docstring)."""

    groups: frozenset[str]
    sender: str | None = None
    all_addressed: bool = False


class HistoryQuery(msgspec.Struct, frozen=True):
    """Filters for ``EventStore.query``; ``None`` means "no filter on this field"."""

    since_ms: int | None = None
    until_ms: int | None = None
    uid: str | None = None
    type_prefix: str | None = None
    bbox: BBox | None = None
    limit: int = 1000
    order: Order = "asc"
    reader: HistoryReader | None = None
    after: tuple[int, int] | None = None


class EventStore(Protocol):
    """Append-mostly history of CoT events, plus the latest live state per uid."""

    async def append(self, events: Sequence[StoredEvent]) -> None:
        """Persist a batch atomically (all or nothing)."""
        ...

    async def query(self, q: HistoryQuery) -> list[StoredEvent]:
        """Events matching every filter of ``q``, ordered and limited as it asks."""
        ...

    async def page(self, q: HistoryQuery) -> list[tuple[int, StoredEvent]]:
        """Like :meth:`query`, each row paired with its key, for an ``after`` cursor."""
        ...

    async def latest(self, *, now_ms: int, types_prefix: tuple[str, ...] | None = None) -> list[StoredEvent]:
        """The latest event per uid that is live at ``now_ms``, ordered by time.

        With ``types_prefix``, only uids whose latest event's type starts with one of the prefixes.
        """
        ...

    async def delete_uid(self, uid: str) -> None:
        """Mark the uid's latest event as deleted so ``latest()`` no longer returns it."""
        ...

    async def prune(self, older_than_ms: int) -> int:
        """Remove history older than the cutoff (see module docstring); returns rows removed."""
        ...

    async def close(self) -> None:
        """Release the backend; further calls are a bug."""
        ...


def stored_event_from_cot(
    event: CotEvent, *, received: int, sender: str | None = None, xml: bytes | None = None
) -> StoredEvent:
    """Build the stored row for ``event``.

    ``xml`` should be the bytes actually forwarded (the ingest path has them already); when absent
    the event is encoded here, which needs ``rallypoint.protocol.xml_codec``.
    """
    if xml is None:
        # Imported here so the storage layer stays usable before the codec is loaded.
        from rallypoint.protocol.xml_codec import encode_event

        xml = encode_event(event)
    return StoredEvent(
        uid=event.uid,
        type=event.type,
        how=event.how,
        time=event.time,
        start=event.start,
        stale=event.stale,
        lat=event.point.lat,
        lon=event.point.lon,
        hae=event.point.hae,
        callsign=event.detail.callsign,
        group=event.detail.group_name,
        sender=sender,
        xml=xml,
        received=received,
    )


def type_matches(type_: str, prefixes: tuple[str, ...] | None) -> bool:
    """True if ``type_`` starts with any of ``prefixes`` (or there is no prefix filter)."""
    return prefixes is None or type_.startswith(prefixes)


def in_bbox(lon: float, lat: float, bbox: BBox) -> bool:
    """True if the position lies inside ``bbox`` (edges inclusive, antimeridian-aware)."""
    min_lon, min_lat, max_lon, max_lat = bbox
    if not min_lat <= lat <= max_lat:
        return False
    if min_lon <= max_lon:
        return min_lon <= lon <= max_lon
    return lon >= min_lon or lon <= max_lon


def matches(q: HistoryQuery, ev: StoredEvent) -> bool:
    """True if ``ev`` passes every filter of ``q`` (ordering and limit aside)."""
    if q.since_ms is not None and ev.time < q.since_ms:
        return False
    if q.until_ms is not None and ev.time >= q.until_ms:
        return False
    if q.uid is not None and ev.uid != q.uid:
        return False
    if q.type_prefix is not None and not ev.type.startswith(q.type_prefix):
        return False
    if q.reader is not None and not readable(q.reader, ev):
        return False
    return q.bbox is None or (has_fix(ev.lat, ev.lon) and in_bbox(ev.lon, ev.lat, q.bbox))


def row_groups(ev: StoredEvent) -> frozenset[str]:
    """The broadcast groups recorded with a row (empty for addressed events)."""
    return frozenset(g for g in (ev.group or "").split(",") if g)


def readable(reader: HistoryReader, ev: StoredEvent) -> bool:
    """True if ``reader`` may see the row (the rule every backend applies for ``HistoryQuery.reader``)."""
    groups = row_groups(ev)
    if groups:
        return not reader.groups.isdisjoint(groups)
    return reader.all_addressed or (reader.sender is not None and ev.sender == reader.sender)
