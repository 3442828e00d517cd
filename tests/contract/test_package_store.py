"""PackageRecords contract: one description per uploader of the same bytes, and the blob store beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from rallypoint.storage.base.packages import PackageRecord, PackageRecords
from rallypoint.storage.factory import open_stores

DIGEST = "ab" * 32
OTHER = "cd" * 32


def upload(name: str, submitter: str, groups: frozenset[str], *, digest: str = DIGEST, tool: str = "public",
           keywords: tuple[str, ...] = ("k",)) -> PackageRecord:
    return PackageRecord(hash=digest, uid=f"uid-{name}", name=name, mime="application/zip", size=3,
                         keywords=keywords, tool=tool, creator_uid="ANDROID-1", submitter=submitter, groups=groups,
                         submitted_ms=1000)


async def test_each_uploader_has_its_own_row_and_a_repeat_changes_nothing(package_records: PackageRecords) -> None:
    blue, created = await package_records.add(upload("blue.zip", "b1", frozenset({"Blue", "Ops"})))
    assert created and blue.id > 0 and blue.groups == frozenset({"Blue", "Ops"})
    red, created = await package_records.add(upload("red.zip", "r1", frozenset({"Red"})))
    assert created and red.id > blue.id
    again, created = await package_records.add(upload("renamed.zip", "b1", frozenset({"Ops", "Blue"}), tool="x"))
    assert not created and again == blue
    other_groups, created = await package_records.add(upload("b.zip", "b1", frozenset({"Blue"})))
    assert created
    assert [r.id for r in await package_records.rows(DIGEST)] == [blue.id, red.id, other_groups.id]
    assert await package_records.rows(OTHER) == []


async def test_search_by_keyword_and_tool(package_records: PackageRecords) -> None:
    a, _ = await package_records.add(upload("a.zip", "s", frozenset({"A"}), keywords=("alpha", "common")))
    b, _ = await package_records.add(upload("b.zip", "s", frozenset({"A"}), digest=OTHER, tool="private",
                                            keywords=("common",)))
    assert [r.id for r in await package_records.search()] == [a.id, b.id]
    assert [r.id for r in await package_records.search(keyword="common")] == [a.id, b.id]
    assert [r.id for r in await package_records.search(keyword="alpha")] == [a.id]
    assert [r.id for r in await package_records.search(tool="private")] == [b.id]
    assert await package_records.search(keyword="alpha", tool="private") == []
    assert await package_records.search(keyword="alp") == []


async def test_update_and_delete_rows(package_records: PackageRecords) -> None:
    a, _ = await package_records.add(upload("a.zip", "s1", frozenset({"A"})))
    b, _ = await package_records.add(upload("b.zip", "s2", frozenset({"B"})))
    changed = await package_records.update(a.id, tool="private", keywords=("x", "y"), expiration_ms=99)
    assert changed is not None
    assert (changed.tool, changed.keywords, changed.expiration_ms) == ("private", ("x", "y"), 99)
    assert await package_records.update(10_000, tool="x") is None
    with pytest.raises(ValueError, match="cannot update"):
        await package_records.update(a.id, name="evil.zip")
    assert await package_records.delete([a.id]) == (1, 1)
    assert await package_records.delete([a.id]) == (0, 0)  # nothing removed: no hash to count
    assert await package_records.delete([b.id]) == (1, 0)
    assert await package_records.rows(DIGEST) == []


def test_blobs_are_kept_once_under_their_hash(tmp_path: Path) -> None:
    blobs = open_stores("sqlite://", tmp_path).blobs()
    digests = []
    for _ in range(2):
        with blobs.writer(max_bytes=10) as writer:
            writer.write(b"abc")
            digests.append(blobs.commit(writer))
    assert digests[0] == digests[1] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    path = blobs.path(digests[0])
    assert path is not None and path.read_bytes() == b"abc"
    assert blobs.path("../../etc/passwd") is None
    assert blobs.delete(digests[0]) and not blobs.delete(digests[0])
    assert blobs.path(digests[0]) is None
