"""Feeds added through the API are kept in the feed store under the node's id and started again; the
service says when the feeds that listen are bound (the node logs ready after that)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rallypoint.clock import ManualClock
from rallypoint.config import FeedConfig
from rallypoint.errors import ConfigError
from rallypoint.fusion.tracker import Tracker
from rallypoint.services.feed_types import FeedInfo, FeedStatistics
from rallypoint.services.feeds import FeedError, FeedService
from rallypoint.storage.base.feeds import FeedRecord
from rallypoint.storage.sqlite.feeds import SqliteFeedRecords
from tests.unit.services.test_feeds_service import opener


def node_service(store: SqliteFeedRecords, node: str = "n1") -> FeedService:
    return FeedService(clock=ManualClock(), accept=lambda _e: None, tracker=Tracker(), opener=opener, store=store,
                       node=node)


async def started(feeds: FeedService) -> asyncio.Task[None]:
    """Run the service until its feeds (configured, then kept) are started."""
    task = asyncio.create_task(feeds.run())
    await asyncio.wait_for(feeds.listening(), 10)
    return task


async def stop(feeds: FeedService, task: asyncio.Task[None]) -> None:
    await feeds.close()
    await asyncio.wait_for(task, 10)


async def test_a_feed_added_at_run_time_runs_again_after_a_restart_until_removed(tmp_path: Path) -> None:
    store = SqliteFeedRecords(tmp_path / "feeds.db")
    first = node_service(store)
    task = await started(first)
    view = await first.kept.add(FeedConfig(url="test+harbour", groups=("Ops",), stale_s=60.0, quality=20.0), "root")
    assert view.origin == "api"
    with pytest.raises(FeedError):
        await first.kept.add(FeedConfig(url="test+harbour"), "root")
    with pytest.raises(ConfigError):
        await first.kept.add(FeedConfig(url="nonsense://x"), "root")
    (kept,) = await store.feeds("n1")
    assert (kept.name, kept.url, kept.groups, kept.stale_s, kept.quality, kept.operator) == (
        "harbour", "test+harbour", ["Ops"], 60.0, 20.0, "root")
    await stop(first, task)

    # The node restarts: the feed runs again, as added through the API. Another node does not run it.
    again = node_service(SqliteFeedRecords(tmp_path / "feeds.db"))
    task = await started(again)
    (view,) = again.list()
    assert (view.name, view.origin, view.groups, view.stale_s, view.quality) == ("harbour", "api", ["Ops"], 60.0, 20.0)
    other = node_service(SqliteFeedRecords(tmp_path / "feeds.db"), node="n2")
    other_task = await started(other)
    assert other.list() == []
    await stop(other, other_task)
    await again.kept.remove("harbour")
    assert again.list() == []
    await stop(again, task)
    check = SqliteFeedRecords(tmp_path / "feeds.db")
    assert await check.feeds("n1") == []
    await check.close()


async def test_a_configured_feed_is_removed_without_touching_the_store(tmp_path: Path) -> None:
    store = SqliteFeedRecords(tmp_path / "feeds.db")
    await store.add_feed(FeedRecord(node="n1", name="adsb", url="test+adsb", groups=[], stale_s=None, quality=None,
                                    added_ms=1, operator="root"))
    feeds = node_service(store)
    feeds.add(FeedConfig(url="test+adsb"), origin="config")  # a configured feed now holds the name
    task = await started(feeds)
    assert [(v.name, v.origin) for v in feeds.list()] == [("adsb", "config")]
    assert feeds.kept.skipped == 1
    await feeds.kept.remove("adsb")
    assert feeds.list() == []
    await stop(feeds, task)
    check = SqliteFeedRecords(tmp_path / "feeds.db")
    assert [r.name for r in await check.feeds("n1")] == ["adsb"]  # the kept one is only skipped
    await check.close()


class ListeningRunner:
    """A feed runner that binds when the test says so, or fails to bind."""

    def __init__(self, fail: bool = False) -> None:
        self.bound = asyncio.Event()
        self.release = asyncio.Event()
        self.fail = fail

    async def run(self) -> None:
        await self.release.wait()
        if self.fail:
            raise OSError("address in use")
        self.bound.set()
        await asyncio.Event().wait()

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def statistics(self) -> FeedStatistics:
        return FeedStatistics()


async def test_listening_returns_once_every_listening_feed_is_bound_or_failed() -> None:
    runners = {"udp": ListeningRunner(), "taken": ListeningRunner(fail=True)}

    def listening_opener(config: FeedConfig, sink: object, layers: object) -> tuple[FeedInfo, ListeningRunner]:
        name = config.url.removeprefix("test+")
        return FeedInfo(name=name, url=config.url, format="test", transport="udp"), runners[name]

    feeds = FeedService(clock=ManualClock(), accept=lambda _e: None, tracker=Tracker(),
                        opener=listening_opener)  # type: ignore[arg-type]
    for name in runners:
        feeds.add(FeedConfig(url=f"test+{name}"), origin="config")
    task = asyncio.create_task(feeds.run())
    listening = asyncio.create_task(feeds.listening())
    for _ in range(20):
        await asyncio.sleep(0)  # let every task run as far as it can
    assert not listening.done()
    runners["udp"].release.set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert not listening.done()  # the other feed has neither bound nor failed yet
    runners["taken"].release.set()
    await asyncio.wait_for(listening, 10)
    assert runners["udp"].bound.is_set()
    assert [v.error for v in feeds.list()] == ["OSError: address in use", None]
    await stop(feeds, task)
