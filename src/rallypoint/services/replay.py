"""Replay of stored history: the window rules, the pacing and the re-stamping of each event.

Pure functions and frozen values (no sockets, no clock reads): the API (``web/api/replay.py``) and
the command line (``cli/replay.py``) share them, so a window means the same thing on both paths.

* A window is half-open, ``since <= time < until``, ``since < until``, at most ``MAX_WINDOW_MS``
  long; an optional bbox narrows it to an area (the store's bbox rule, ``storage.base.events``).
* Pacing: an event of time ``t`` is due ``(t - t0) / speed`` after the replay starts, ``t0`` being
  the window's first event: the original spacing divided by ``speed``.
* Re-stamping for a live server: each event's ``time`` becomes the moment it is due, ``start`` and
  ``stale`` move by the same amount (so its lifetime is kept); the uid gets a prefix (by default
  ``replay-``) so replayed units stand beside the live ones instead of moving them, and a live
  report is never overwritten by an old position. The event is marked ``opex="s-replay"`` (CoT's
  "simulation"), an exercise's event keeps its exercise (``model.exercise``). Everything else in
  the event is sent as stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from lxml import etree

from rallypoint.errors import RallypointError
from rallypoint.model.exercise import EXERCISE_OPEX_PREFIX, EXERCISE_TAG, REPLAY_OPEX
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.timefmt import format_time, parse_time
from rallypoint.protocol.xmlsafe import new_parser, parse_document, reject_markup_declarations, strip_declaration
from rallypoint.storage.base import EXERCISE_ANY, BBox, EventStore, HistoryQuery, HistoryReader, StoredEvent

MAX_WINDOW_MS = 31 * 24 * 3600 * 1000
MIN_SPEED = 0.01
MAX_SPEED = 1000.0
DEFAULT_UID_PREFIX = "replay-"
PAGE_ROWS = 1000
_TIME_ATTRIBUTES = ("time", "start", "stale")


class ReplayError(RallypointError):
    """A replay request that cannot be served as asked (bad window, bad speed, unreadable event)."""


@dataclass(frozen=True)
class ReplayWindow:
    """What to replay: a half-open time window, an optional area and type prefix."""

    since_ms: int
    until_ms: int
    bbox: BBox | None = None
    type_prefix: str | None = None
    exercise: str = EXERCISE_ANY

    def query(self, *, limit: int, reader: HistoryReader | None, after: tuple[int, int] | None = None) -> HistoryQuery:
        """The store query for one page of the window, oldest first."""
        return HistoryQuery(since_ms=self.since_ms, until_ms=self.until_ms, bbox=self.bbox,
                            type_prefix=self.type_prefix, limit=limit, order="asc", reader=reader, after=after,
                            exercise=self.exercise)


def window(since_ms: int | None, until_ms: int | None, *, bbox: BBox | None = None,
           type_prefix: str | None = None, max_window_ms: int = MAX_WINDOW_MS,
           exercise: str = EXERCISE_ANY) -> ReplayWindow:
    """Validate a window: both ends given, ``since < until``, no longer than ``max_window_ms``."""
    if since_ms is None or until_ms is None:
        raise ReplayError("a replay window needs both since and until")
    if until_ms <= since_ms:
        raise ReplayError("until must be later than since")
    if until_ms - since_ms > max_window_ms:
        raise ReplayError(f"the window is longer than {max_window_ms // 3_600_000} hours; replay it in parts")
    return ReplayWindow(since_ms, until_ms, bbox, type_prefix, exercise)


def check_speed(speed: float) -> float:
    """``speed`` when it is a usable factor (``MIN_SPEED`` to ``MAX_SPEED``)."""
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise ReplayError(f"speed must be between {MIN_SPEED:g} and {MAX_SPEED:g}")
    return speed


@dataclass(frozen=True)
class Pacer:
    """When each event is due, for a replay started at ``started_ms`` whose first event is ``first_ms``."""

    started_ms: int
    first_ms: int
    speed: float = 1.0

    def due_ms(self, event_time_ms: int) -> int:
        """The original spacing from the first event, divided by the speed, after the start."""
        return self.started_ms + round(max(0, event_time_ms - self.first_ms) / self.speed)


def restamp(xml: bytes, *, shift_ms: int, uid_prefix: str = DEFAULT_UID_PREFIX, limits: Limits | None = None) -> bytes:
    """The stored event with time/start/stale moved by ``shift_ms`` and ``uid_prefix`` put before its uid."""
    try:
        body = strip_declaration(xml)
        reject_markup_declarations(body)
        root = parse_document(body, limits or Limits(), new_parser())
        for name in _TIME_ATTRIBUTES:
            value = root.get(name)
            if value is not None:
                root.set(name, format_time(parse_time(value) + shift_ms))
    except RallypointError as exc:
        raise ReplayError(f"a stored event cannot be replayed: {exc}") from exc
    if uid_prefix:
        root.set("uid", uid_prefix + (root.get("uid") or ""))
    _mark_replayed(root)
    return bytes(etree.tostring(root, encoding="UTF-8", xml_declaration=False))


def _mark_replayed(root: etree._Element) -> None:
    """``opex="s-replay"``: simulated traffic, never mistaken for a live report.

    An exercise's event keeps its exercise: when only its ``opex`` named it, the detail marker is
    added, so the replayed copy is still exercise traffic (isolated from live missions, filtered).
    """
    opex = root.get("opex") or ""
    if opex.startswith(EXERCISE_OPEX_PREFIX):
        detail = root.find("detail")
        if detail is None:
            detail = etree.SubElement(root, "detail")
        if detail.find(EXERCISE_TAG) is None:
            etree.SubElement(detail, EXERCISE_TAG, id=opex[len(EXERCISE_OPEX_PREFIX):])
    root.set("opex", REPLAY_OPEX)


async def window_rows(store: EventStore, win: ReplayWindow, *, reader: HistoryReader | None,
                      limit: int, page_rows: int = PAGE_ROWS) -> AsyncIterator[StoredEvent]:
    """The window's rows oldest first, read a page at a time (keyset), at most ``limit`` of them."""
    after: tuple[int, int] | None = None
    left = limit
    while left > 0:
        wanted = min(page_rows, left)
        page = await store.page(win.query(limit=wanted, reader=reader, after=after))
        for _, row in page:
            yield row
        left -= len(page)
        if len(page) < wanted:
            return
        key, last = page[-1]
        after = (last.time, key)
