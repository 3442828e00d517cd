"""The node's feed service: the configured feeds, the fusion tracker and the runners' opener."""

from __future__ import annotations

import random

from rallypoint.clock import Clock
from rallypoint.config import Settings
from rallypoint.connectors.feeds import feed_opener
from rallypoint.connectors.spec import feed_specs
from rallypoint.fusion.tracker import Tracker
from rallypoint.routing.ids import NodeIds
from rallypoint.services.feeds import FeedService
from rallypoint.services.ingest import Ingest
from rallypoint.storage.factory import open_stores


def feed_service(settings: Settings, clock: Clock, ingest: Ingest, ids: NodeIds) -> FeedService:
    """A feed service holding every configured feed (``ConfigError`` names a bad one); started by the node."""
    feed_specs(settings.feeds)  # all checked (names unique, URLs usable) before any is opened
    session = ids.session_id("feeds")
    service = FeedService(
        clock=clock, accept=ingest.accept,
        # Identity-less tracks of this run of this node get uids no other node or run reuses.
        tracker=Tracker(anonymous_prefix=f"{ids.node}-{ids.run}-"),
        opener=feed_opener(clock, random.Random()),
        origin=lambda _name, groups: ids.origin(session, groups),
        # Accepted merges and feeds added through the API: feeds.db, or the shared PostgreSQL database.
        store=open_stores(settings.storage_url, settings.data_path, node_id=settings.node_id).feeds(),
        node=settings.node_id, keep_feeds=settings.workers == 1,
    )
    # Every node's publications: TAK users' positions feed merge proposals (services/feeds_contacts.py).
    ingest.add_hook(service.observe)
    for config in settings.feeds:
        service.add(config, origin="config")
    return service
