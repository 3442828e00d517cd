"""The storage interfaces: one ``Protocol`` per store, with the records that cross it.

Each module states the semantics every backend shares; ``tests/contract`` runs one suite per store
over every backend. ``storage.factory.open_stores`` is the one place that picks backends.
"""

from rallypoint.storage.base.events import (
    EXERCISE_ANY,
    EXERCISE_NONE,
    NO_GROUPS,
    BBox,
    EventStore,
    HistoryQuery,
    HistoryReader,
    Order,
    StoredEvent,
    exercise_matches,
    in_bbox,
    matches,
    prefix_upper_bound,
    readable,
    stored_event_from_cot,
    type_matches,
)

__all__ = [
    "EXERCISE_ANY",
    "EXERCISE_NONE",
    "NO_GROUPS",
    "BBox",
    "EventStore",
    "HistoryQuery",
    "HistoryReader",
    "Order",
    "StoredEvent",
    "exercise_matches",
    "in_bbox",
    "matches",
    "prefix_upper_bound",
    "readable",
    "stored_event_from_cot",
    "type_matches",
]
