"""What every event store promises, whatever it keeps its rows in.

Semantics shared by all backends (the contract tests in ``tests/contract`` pin them):

* Times are epoch milliseconds. A history window is half-open: ``since_ms <= time < until_ms``.
* Ordering is by event ``time``, ties broken by arrival order (``asc``) or its reverse (``desc``).
* ``type_prefix`` is a plain string prefix on the CoT type (``"a-f"`` matches ``"a-f-G-U-C"``).
* ``bbox`` is ``(min_lon, min_lat, max_lon, max_lat)``, edges inclusive. ``min_lon > max_lon`` means
  the box crosses the antimeridian. A row at exactly 0,0 (no position fix, ``model.fix``) is in no box.
* A row carries two different "groups", never mixed: ``groups`` are the access groups the event was
  broadcast to (empty: an addressed event, sent to chosen receivers with ``marti/dest``), and ``team``
  is the team colour the sender put in ``<__group name=...>`` (display only, never used for access).
* ``reader`` keeps the rows a reader may see: broadcast rows sharing a group (exact names) with
  ``reader.groups``; addressed rows only when ``reader.all_addressed`` or their ``sender`` is
  ``reader.sender``.
* ``exercise`` keeps rows by exercise marking (``model.exercise``): ``"any"`` (default) every row,
  ``"none"`` live traffic only, an exercise id that exercise's rows only.
* ``after`` is a keyset cursor ``(time, key)``: only rows strictly after it in the query's order.
  ``page()`` returns each row with its key (the arrival tie-breaker) so a caller can build one.

History and the picture. History keeps every delivered event. The *picture* is what the live server
shows late joiners: a row's ``picture`` flag records whether the event entered it (broadcast, and
accepted by presence as a client's SA or as a map item). Addressed events, deletes, and items
presence refused (another group's event reusing a uid it does not own) are history only. So:

* The *latest* event of a uid is its picture row with the greatest ``time`` (ties: the last
  appended); rows with ``picture`` false are never considered. ``latest()`` returns it only if it is
  not stale at ``now_ms`` and has not been deleted; an older picture row never stands in for a newer
  one that is stale or deleted. What start-up reloads from ``latest()`` is therefore exactly what the
  live picture held: a refused item of another group does not replace a marker, and a marker re-sent
  to one contact does not hide the broadcast one.
* ``delete_uid`` marks the uid's latest picture row deleted.
* ``prune(cutoff)`` removes events with ``time < cutoff`` except a uid's latest picture row while it
  is still live (not deleted, ``stale > cutoff``): retention must not forget a long-lived marker
  that late joiners still need.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal, Protocol

import msgspec

from rallypoint.model.cot import CotEvent
from rallypoint.model.exercise import FILTER_ANY, FILTER_NONE
from rallypoint.model.fix import has_fix

Order = Literal["asc", "desc"]
BBox = tuple[float, float, float, float]
NO_GROUPS: frozenset[str] = frozenset()
# ``HistoryQuery.exercise`` values besides an exercise id; the control API refuses them as exercise ids.
EXERCISE_ANY = FILTER_ANY
EXERCISE_NONE = FILTER_NONE


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
    # Access groups the event was broadcast to; empty for an addressed event.
    groups: frozenset[str]
    # Team colour from ``<__group name=...>``; shown, never used for access.
    team: str | None
    # Principal or session id that submitted the event (audit and "do not echo back" on replay).
    sender: str | None
    xml: bytes
    received: int
    # Whether the event entered the shared picture (see the module docstring).
    picture: bool = False
    # The exercise the event is simulated traffic of (``CotEvent.exercise``); None for live traffic.
    exercise: str | None = None

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
    # ``"any"``: live and exercise rows; ``"none"``: live rows only; otherwise that exercise's rows.
    exercise: str = EXERCISE_ANY


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
        """The latest picture row per uid that is live at ``now_ms``, ordered by time.

        With ``types_prefix``, only uids whose latest picture row's type starts with one of the prefixes.
        """
        ...

    async def delete_uid(self, uid: str) -> None:
        """Mark the uid's latest picture row as deleted so ``latest()`` no longer returns it."""
        ...

    async def prune(self, older_than_ms: int) -> int:
        """Remove history older than the cutoff (see module docstring); returns rows removed."""
        ...

    async def close(self) -> None:
        """Release the backend; further calls are a bug."""
        ...


def stored_event_from_cot(
    event: CotEvent,
    *,
    received: int,
    sender: str | None = None,
    xml: bytes | None = None,
    groups: Iterable[str] = NO_GROUPS,
    picture: bool = False,
) -> StoredEvent:
    """Build the stored row for ``event``.

    ``groups`` are the access groups it was broadcast to (empty when addressed) and ``picture``
    whether presence took it into the shared picture. ``xml`` should be the bytes actually forwarded
    (the ingest path has them already); when absent the event is encoded here, which needs
    ``rallypoint.protocol.xml_codec``.
    """
    if xml is None:
        # Imported here so the storage layer stays usable before the codec is loaded.
        from rallypoint.protocol.xml_codec import encode_event

        xml = encode_event(event)
    point, detail = event.point, event.detail
    # Positional, in field order: a third of the keyword form's cost, once per stored event.
    return StoredEvent(
        event.uid, event.type, event.how, event.time, event.start, event.stale, point.lat, point.lon, point.hae,
        detail.callsign, groups if type(groups) is frozenset else frozenset(groups), detail.group_name, sender, xml,
        received, picture, event.exercise,
    )  # fmt: skip


def type_matches(type_: str, prefixes: tuple[str, ...] | None) -> bool:
    """True if ``type_`` starts with any of ``prefixes`` (or there is no prefix filter)."""
    return prefixes is None or type_.startswith(prefixes)


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string greater than every string starting with ``prefix`` (None if there is none).

    ``prefix <= s < bound`` is a prefix test an ordinary (code point ordered) index can serve.
    """
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return None
    successor = last + 1
    if 0xD800 <= successor <= 0xDFFF:
        # Surrogates cannot be stored as UTF-8; the next encodable code point keeps the order.
        successor = 0xE000
    return prefix[:-1] + chr(successor)


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
    if not exercise_matches(q.exercise, ev.exercise):
        return False
    return q.bbox is None or (has_fix(ev.lat, ev.lon) and in_bbox(ev.lon, ev.lat, q.bbox))


def exercise_matches(wanted: str, exercise: str | None) -> bool:
    """True if a row of ``exercise`` passes the ``HistoryQuery.exercise`` filter ``wanted``."""
    if wanted == EXERCISE_ANY:
        return True
    if wanted == EXERCISE_NONE:
        return exercise is None
    return exercise == wanted


def readable(reader: HistoryReader, ev: StoredEvent) -> bool:
    """True if ``reader`` may see the row (the rule every backend applies for ``HistoryQuery.reader``)."""
    if ev.groups:
        return not reader.groups.isdisjoint(ev.groups)
    return reader.all_addressed or (reader.sender is not None and ev.sender == reader.sender)
