"""The package service: content addressing, group filtering, names and keywords."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from rallypoint.clock import ManualClock
from rallypoint.errors import LimitExceeded
from rallypoint.services.datapackages import (
    DataPackageService,
    PackageLimits,
    PackageRejected,
    Upload,
    clean_keywords,
    sanitize_filename,
)
from rallypoint.storage.files import FileBlobStore
from rallypoint.storage.sqlite.packages import PackageRecord, SqlitePackageStore

RED = frozenset({"Red"})
BLUE = frozenset({"Blue"})


@pytest.fixture
async def service(tmp_path: Path):  # type: ignore[no-untyped-def]
    svc = DataPackageService(FileBlobStore(tmp_path / "blobs"), SqlitePackageStore(tmp_path / "packages.db"),
                             ManualClock(),
                             PackageLimits(max_upload_bytes=1000))
    yield svc
    await svc.close()


async def put(svc: DataPackageService, data: bytes, groups: frozenset[str], **kw: object) -> str:
    return (await upload(svc, data, groups, **kw))[0].hash


async def upload(
    svc: DataPackageService, data: bytes, groups: frozenset[str], **kw: object
) -> tuple[PackageRecord, bool]:
    fields: dict[str, object] = {"filename": "f.txt", "submitter": "u", **kw}
    with svc.spool() as writer:
        writer.write(data)
        return await svc.store(writer, Upload(groups=groups, **fields))  # type: ignore[arg-type]


async def test_store_find_and_group_filter(service: DataPackageService, tmp_path: Path) -> None:
    digest = await put(service, b"content", RED, keywords=("doc",))
    assert digest == hashlib.sha256(b"content").hexdigest()
    assert (tmp_path / "blobs" / digest[:2] / digest[2:4] / digest).read_bytes() == b"content"
    assert (await service.find(digest, RED)) is not None
    assert (await service.find(digest.upper(), RED)) is not None
    assert (await service.find(digest, BLUE)) is None
    assert (await service.find("../../etc/passwd", RED)) is None
    assert [r.hash for r in await service.search(RED, "u", keyword="doc")] == [digest]
    assert await service.search(BLUE, "u") == []
    assert await service.search(RED, "u", keyword="other") == []


async def test_spool_limit_and_cleanup(service: DataPackageService, tmp_path: Path) -> None:
    with pytest.raises(LimitExceeded), service.spool() as writer:
        writer.write(b"x" * 1001)
    assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []


async def test_hash_mismatch_and_zip_requirement(service: DataPackageService) -> None:
    with pytest.raises(PackageRejected) as info:
        await put(service, b"abc", RED, expected_hash="0" * 64)
    assert info.value.reason == "hash_mismatch"
    with pytest.raises(PackageRejected) as info:
        await put(service, b"abc", RED, require_zip=True)
    assert info.value.reason == "zip_malformed"


async def test_set_tool_needs_write_access_and_the_submitter(service: DataPackageService) -> None:
    digest = await put(service, b"content", RED)
    record = await service.set_tool(digest, "private", read_groups=RED, write_groups=RED, submitter="u")
    assert record is not None and record.tool == "private"
    assert await service.set_tool(digest, "public", read_groups=BLUE, write_groups=BLUE, submitter="u") is None
    with pytest.raises(PackageRejected) as info:
        await service.set_tool(digest, "public", read_groups=RED, write_groups=BLUE, submitter="u")
    assert info.value.status == 403
    # Another group's upload of the same bytes is its own: its tool is its submitter's to change.
    await put(service, b"content", BLUE, submitter="w", tool="private")
    with pytest.raises(PackageRejected) as info:
        await service.set_tool(digest, "public", read_groups=BLUE, write_groups=BLUE, submitter="v")
    assert info.value.status == 403
    record = await service.set_tool(digest, "public", read_groups=BLUE, write_groups=BLUE, submitter="v", admin=True)
    assert record is not None and (record.tool, record.submitter) == ("public", "w")
    # Red's upload (private since the first change) was not touched by either.
    red = await service.find(digest, RED)
    assert red is not None and (red.tool, red.submitter) == ("private", "u")


async def test_same_bytes_uploaded_by_another_group_show_nothing_of_the_first(
    service: DataPackageService, tmp_path: Path
) -> None:
    blue, created = await upload(service, b"shared", BLUE, filename="blue-secret.zip", submitter="blue1",
                                 keywords=("bluekw",), creator_uid="ANDROID-blue")
    assert created
    red, created = await upload(service, b"shared", RED, filename="red.zip", submitter="red1", keywords=("redkw",))
    # New for Red: answering "already stored" would tell Red that someone else holds these bytes.
    assert created and red.hash == blue.hash
    for view in (await service.find(red.hash, RED), await service.find(red.hash, RED, "red1"), red):
        assert view is not None
        assert (view.name, view.submitter, view.groups, view.keywords, view.creator_uid) == (
            "red.zip", "red1", frozenset({"Red"}), ("redkw",), "")
    assert [(r.name, r.submitter) for r in await service.search(RED, "red1")] == [("red.zip", "red1")]
    assert await service.search(RED, "red1", keyword="bluekw") == []
    # Blue's view is unchanged.
    seen = await service.find(blue.hash, BLUE)
    assert seen is not None and (seen.name, seen.submitter, seen.groups, seen.keywords) == (
        "blue-secret.zip", "blue1", frozenset({"Blue"}), ("bluekw",))
    assert [r.name for r in await service.search(BLUE, "blue1")] == ["blue-secret.zip"]
    # One copy on disk.
    assert [p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == [blue.hash]
    # Red cannot delete Blue's upload, only its own; the content stays for Blue.
    with pytest.raises(PackageRejected) as info:
        await service.delete(red.hash, read_groups=RED, principal="blue1", admin=False)
    assert info.value.status == 403
    gone = await service.delete(red.hash, read_groups=RED, principal="red1", admin=False)
    assert gone is not None and gone.name == "red.zip"
    assert await service.find(red.hash, RED) is None
    assert service.blobs.path(blue.hash) is not None
    assert (await service.find(blue.hash, BLUE)) == seen
    # The last upload takes the content with it.
    assert await service.delete(blue.hash, read_groups=BLUE, principal="blue1", admin=False) is not None
    assert service.blobs.path(blue.hash) is None
    assert await service.find(blue.hash, BLUE) is None


async def test_reupload_by_the_same_uploader_keeps_its_row(service: DataPackageService) -> None:
    first, created = await upload(service, b"doc", RED, filename="v1.txt", keywords=("a",))
    again, created_again = await upload(service, b"doc", RED, filename="upload", keywords=())
    assert created and not created_again and again == first
    assert [(r.name, r.keywords) for r in await service.search(RED, "u")] == [("v1.txt", ("a",))]
    # The same account writing other groups is another uploader.
    _, created = await upload(service, b"doc", BLUE, filename="v3.txt")
    assert created


async def test_a_reader_of_both_groups_sees_each_upload_and_its_own_first(service: DataPackageService) -> None:
    both = RED | BLUE
    await upload(service, b"x", RED, filename="red.txt", submitter="r")
    await upload(service, b"x", BLUE, filename="blue.txt", submitter="b", tool="private")
    assert [r.name for r in await service.search(both, "b")] == ["red.txt", "blue.txt"]
    assert [r.name for r in await service.search(both, "r")] == ["red.txt"]
    assert (await service.find(hashlib.sha256(b"x").hexdigest(), both, "b")).name == "blue.txt"  # type: ignore[union-attr]
    # Without a submitter: public before private.
    assert (await service.find(hashlib.sha256(b"x").hexdigest(), both)).name == "red.txt"  # type: ignore[union-attr]
    # An admin deletes every upload it can read, and the content with them.
    digest = hashlib.sha256(b"x").hexdigest()
    assert await service.delete(digest, read_groups=both, principal="root", admin=True) is not None
    assert service.blobs.path(digest) is None


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\pkg.zip", "pkg.zip"),
        ('a"b\r\nc.zip', "a_bc.zip"),
        ("...", "package.zip"),
        (None, "package.zip"),
        ("données.zip", "donn_es.zip"),
    ],
)
def test_sanitize_filename(raw: str | None, clean: str) -> None:
    assert sanitize_filename(raw) == clean


def test_clean_keywords() -> None:
    assert clean_keywords(["a,b", "b", " c\n", ""]) == ("a", "b", "c")
