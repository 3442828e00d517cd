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

RED = frozenset({"Red"})
BLUE = frozenset({"Blue"})


@pytest.fixture
async def service(tmp_path: Path):  # type: ignore[no-untyped-def]
    svc = DataPackageService.open(tmp_path, ManualClock(), PackageLimits(max_upload_bytes=1000))
    yield svc
    await svc.close()


async def put(svc: DataPackageService, data: bytes, groups: frozenset[str], **kw: object) -> str:
    with svc.spool() as writer:
        writer.write(data)
        record, _ = await svc.store(writer, Upload(filename="f.txt", submitter="u", groups=groups, **kw))  # type: ignore[arg-type]
    return record.hash


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
    # Uploading the same bytes joins the package's groups, not its ownership.
    await put(service, b"content", BLUE)
    with pytest.raises(PackageRejected) as info:
        await service.set_tool(digest, "public", read_groups=BLUE, write_groups=BLUE, submitter="v")
    assert info.value.status == 403
    record = await service.set_tool(digest, "public", read_groups=BLUE, write_groups=BLUE, submitter="v", admin=True)
    assert record is not None and record.tool == "public"


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
