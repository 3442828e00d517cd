"""Persistence: the event history, accounts, audit chain, missions, packages, mailboxes and queues.

Backends implement the protocols in ``storage.base``; ``storage.factory.open_stores`` picks every
store's backend from one URL. Writes from the routing hot path go through
``storage.writer.BatchedEventWriter``.
"""

from rallypoint.storage.base import EventStore, HistoryQuery, StoredEvent, stored_event_from_cot

__all__ = ["EventStore", "HistoryQuery", "StoredEvent", "stored_event_from_cot"]
