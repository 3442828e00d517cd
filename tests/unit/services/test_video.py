"""VideoService rules over a real SQLite store: groups, owners, kept credentials, b-i-v CoT, queue bound."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from rallypoint.clock import ManualClock
from rallypoint.model.cot import Point
from rallypoint.model.video import VideoFeed
from rallypoint.protocol.xml_codec import make_event
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience
from rallypoint.services.video import VideoDenied, VideoFull, VideoService
from rallypoint.storage.sqlite.video import SqliteVideoRecords
from tests.support.poll import wait_until


class Who(msgspec.Struct, frozen=True):
    principal: str | None
    write_groups: frozenset[str]
    read_groups: frozenset[str]


ALICE = Who("alice", frozenset({"Red"}), frozenset({"Red"}))
BOB = Who("bob", frozenset({"Red"}), frozenset({"Red"}))
CAROL = Who("carol", frozenset({"Blue"}), frozenset({"Blue"}))
READER = Who("rita", frozenset(), frozenset({"Red"}))
URL = "rtsp://u:pw@cam:554/a"


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[VideoService]:
    svc = VideoService(SqliteVideoRecords(tmp_path / "video.db"), ManualClock(), max_connections=3, queue_size=2)
    try:
        yield svc
    finally:
        await svc.close()


def _feed(uid: str, url: str = URL) -> VideoFeed:
    return VideoFeed(uid=uid, alias=uid, url=url)


async def test_groups_owner_and_kept_credentials(service: VideoService) -> None:
    await service.put(ALICE, "a", "Cam", [_feed("a")])
    assert (await service.get(ALICE, "a")).feeds[0].url == URL  # type: ignore[union-attr]
    assert (await service.get(BOB, "a")).feeds[0].url == "rtsp://cam:554/a"  # type: ignore[union-attr]
    assert await service.get(CAROL, "a") is None and await service.visible(CAROL) == []
    with pytest.raises(VideoDenied):
        await service.put(CAROL, "a", "Mine", [_feed("a", "rtsp://evil/x")])
    assert await service.delete(CAROL, "a") is False
    with pytest.raises(VideoDenied):
        await service.delete(READER, "a")  # reads Red, writes nothing
    # Bob renames it sending the redacted URL back: Alice's credentials stay, the owner stays Alice.
    shown = await service.put(BOB, "a", "Renamed", [_feed("a", "rtsp://cam:554/a")])
    assert shown.feeds[0].url == "rtsp://cam:554/a" and shown.owner == "alice"
    assert (await service.get(ALICE, "a")).feeds[0].url == URL  # type: ignore[union-attr]
    # A new URL from Bob replaces it.
    await service.put(BOB, "a", "Renamed", [_feed("a", "rtsp://cam2/b")])
    assert (await service.get(ALICE, "a")).feeds[0].url == "rtsp://cam2/b"  # type: ignore[union-attr]
    assert await service.delete(BOB, "a") is True


async def test_registry_bound(service: VideoService) -> None:
    for uid in ("a", "b", "c"):
        await service.put(ALICE, uid, uid, [_feed(uid)])
    with pytest.raises(VideoFull):
        await service.put(ALICE, "d", "d", [_feed("d")])
    await service.put(ALICE, "a", "again", [_feed("a")])  # replacing is not adding


def _biv(uid: str, url: str, *, time_ms: int = 1_700_000_000_000) -> Envelope:
    event = make_event(uid=uid, type="b-i-v", how="m-g", time=time_ms, start=time_ms, stale=time_ms + 60_000,
                       point=Point(lat=10.0, lon=20.0), detail_xml=f'<__video url="{url}"/>'.encode())
    return Envelope(event, Origin(session_id="s1", groups=frozenset({"Red"}), principal="alice"), time_ms)


async def test_biv_registers_through_the_queue(service: VideoService) -> None:
    runner = asyncio.create_task(service.run())
    service.observe(_biv("cam-1", "srt://h:8890"), Audience())
    service.observe(_biv("bad", "file:///etc/passwd"), Audience())
    await wait_until(lambda: service.counts["cot_registered"], "the b-i-v feed registered")
    got = await service.get(BOB, "cam-1")
    assert got is not None and got.owner == "alice" and got.groups == frozenset({"Red"})
    assert got.feeds[0].latitude == 10.0 and got.updated_ms == 1_700_000_000_000
    assert service.counts["cot_rejected"] == 1 and await service.get(BOB, "bad") is None
    await service.close()
    await asyncio.wait_for(runner, 5)


async def test_biv_queue_is_bounded(service: VideoService) -> None:
    for i in range(5):
        service.observe(_biv(f"c{i}", "srt://h:8890"), Audience())
    assert service.counts["cot_dropped"] == 3


async def test_stream_url_is_the_stored_one_for_readers_only(service: VideoService) -> None:
    hls = "http://u:pw@media:8888/cam/index.m3u8?token=t"
    await service.put(ALICE, "cam", "Cam", [_feed("cam", hls)])
    await service.put(ALICE, "multi", "Two", [_feed("multi-0"), _feed("cam", "http://other/x.m3u8")])
    # A reader who did not add it still gets the credentials, for the server's own use (the HLS relay).
    assert await service.stream_url(READER, "cam") == hls  # the connection of that uid comes first
    assert await service.stream_url(BOB, "multi-0") == URL
    assert await service.stream_url(CAROL, "cam") is None  # Blue reads nothing of Red
    assert await service.stream_url(READER, "absent") is None
