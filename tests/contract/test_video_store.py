"""VideoRecords contract: the same suite over SQLite and PostgreSQL."""

from __future__ import annotations

from rallypoint.model.video import VideoConnection, VideoFeed
from rallypoint.storage.base.video import VideoRecords


def _connection(uid: str, *, alias: str = "cam", groups: frozenset[str] = frozenset({"Red"}),
                updated_ms: int = 1_000) -> VideoConnection:
    feed = VideoFeed(uid=uid, alias=alias, url=f"rtsp://u:p@cam.example:554/{uid}", latitude=1.5, longitude=-2.0)
    return VideoConnection(uid=uid, alias=alias, feeds=(feed,), groups=groups, owner="alice", updated_ms=updated_ms)


async def test_put_get_replace_delete(video_records: VideoRecords) -> None:
    assert await video_records.get("a") is None
    assert await video_records.count() == 0
    first = _connection("a")
    await video_records.put(first)
    assert await video_records.get("a") == first
    second = _connection("a", alias="renamed", groups=frozenset({"Blue", "Red"}), updated_ms=2_000)
    await video_records.put(second)
    assert await video_records.get("a") == second
    assert await video_records.count() == 1
    assert await video_records.delete("a") is True
    assert await video_records.delete("a") is False
    assert await video_records.get("a") is None


async def test_all_by_uid(video_records: VideoRecords) -> None:
    for uid in ("c", "a", "b"):
        await video_records.put(_connection(uid))
    assert [c.uid for c in await video_records.all()] == ["a", "b", "c"]
    assert await video_records.count() == 3
