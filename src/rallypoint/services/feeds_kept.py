"""Feeds added through the API, kept in the feed store so they run again after a restart.

A feed added at run time runs on the node that was asked; the store records it under that node's
id (``node_id``), and each node starts, after its configured feeds, the feeds recorded under its own
id. So in a cluster a feed added through one node's API is run by that node only, as a configured
feed is by the node whose configuration names it. Removing the feed through the API forgets it.
A kept feed that can no longer start (its name is now taken by a configured feed, its URL is no
longer accepted) is skipped with a warning and stays kept until removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from rallypoint.clock import Clock
from rallypoint.config import FeedConfig
from rallypoint.errors import ConfigError, StorageError
from rallypoint.services.feeds_merges import FeedError
from rallypoint.storage.base.feeds import FeedRecord, FeedRecords

if TYPE_CHECKING:
    from rallypoint.services.feeds import FeedView

log = logging.getLogger(__name__)


class KeptFeeds:
    """Adds and removes run-time feeds through the service and the feed store together."""

    def __init__(self, store: FeedRecords | None, node: str, clock: Clock, *,
                 add: Callable[..., FeedView], remove: Callable[[str], FeedView],
                 view: Callable[[str], FeedView]) -> None:
        self._store = store
        self._node = node
        self._clock = clock
        self._add = add
        self._remove = remove
        self._view = view
        self.restored = 0
        self.skipped = 0

    async def add(self, config: FeedConfig, operator: str) -> FeedView:
        """Start the feed, then keep it; if it cannot be kept (``StorageError``) it is stopped again."""
        view = self._add(config, origin="api")
        if self._store is None or config.exercise is not None:
            # An exercise's feed lasts while this server runs it: a restart does not bring it back.
            return view
        record = FeedRecord(node=self._node, name=view.name, url=config.url, groups=list(config.groups),
                            stale_s=config.stale_s, quality=config.quality, added_ms=self._clock.now_ms(),
                            operator=operator)
        try:
            await self._store.add_feed(record)
        except StorageError:
            self._remove(view.name)
            raise
        return view

    async def remove(self, name: str) -> FeedView:
        """Forget the feed in the store (if added at run time), then stop it."""
        view = self._view(name)
        if self._store is not None and view.origin == "api":
            await self._store.remove_feed(self._node, name)
        return self._remove(name)

    async def restore(self) -> None:
        """Start the feeds kept for this node (after the configured ones)."""
        if self._store is None:
            return
        try:
            records = await self._store.feeds(self._node)
        except StorageError as exc:
            log.error("feeds added at run time could not be read", extra={"error": str(exc)[:300]})
            return
        for r in records:
            config = FeedConfig(name=r.name, url=r.url, groups=tuple(r.groups), stale_s=r.stale_s, quality=r.quality)
            try:
                self._add(config, origin="api")
            except (ConfigError, FeedError) as exc:
                self.skipped += 1
                log.warning("kept feed not started", extra={"feed": r.name, "reason": str(exc)[:300]})
                continue
            self.restored += 1
