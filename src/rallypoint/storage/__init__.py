"""Persistence: the event history and the latest state replayed to late joiners.

Backends implement the protocols in ``storage.base``; ``storage.factory.open_event_store`` picks one
from a URL. Writes from the routing hot path go through ``storage.writer.BatchedEventWriter``.
"""

from rallypoint.storage.base import EventStore, HistoryQuery, StoredEvent, stored_event_from_cot

__all__ = ["EventStore", "HistoryQuery", "StoredEvent", "stored_event_from_cot"]
