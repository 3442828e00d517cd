"""Hostile archives: zip bombs, lying size headers, path traversal, links, hostile manifests."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from rallypoint.services.datapackages import MIB, PackageLimits, PackageRejected, check_zip

MANIFEST_OK = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<MissionPackageManifest version="2">'
    b'<Configuration><Parameter name="uid" value="pkg-1"/><Parameter name="name" value="Test"/></Configuration>'
    b'<Contents><Content ignore="false" zipEntry="a/a.cot"/></Contents></MissionPackageManifest>'
)


def write_zip(path: Path, entries: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def rejected(path: Path, limits: PackageLimits | None = None) -> PackageRejected:
    with pytest.raises(PackageRejected) as info:
        check_zip(path, limits or PackageLimits())
    return info.value


def test_valid_package_passes(tmp_path: Path) -> None:
    summary = check_zip(write_zip(tmp_path / "ok.zip", {"MANIFEST/manifest.xml": MANIFEST_OK, "a/a.cot": b"<event/>"}),
                        PackageLimits())
    assert summary.manifest and summary.package_uid == "pkg-1" and summary.package_name == "Test"
    assert summary.entries == 2


def test_zip_bomb_ratio_rejected(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "bomb.zip", {"zeros.bin": bytes(20 * MIB)})
    assert path.stat().st_size < 200 * 1024  # it really is a bomb: tiny archive, 20 MiB inside
    err = rejected(path)
    assert err.reason == "zip_ratio" and err.status == 413


def test_total_uncompressed_limit(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "big.zip", {f"f{i}.bin": bytes(300 * 1024) for i in range(5)},
                     method=zipfile.ZIP_STORED)
    err = rejected(path, PackageLimits(max_uncompressed_bytes=1 * MIB))
    assert err.reason == "zip_too_large" and err.status == 413


def test_lying_size_header_is_caught(tmp_path: Path) -> None:
    """A central directory claiming a tiny size: decompression stops there and the CRC check fails."""
    data = bytearray(write_zip(tmp_path / "src.zip", {"zeros.bin": bytes(4 * MIB)}).read_bytes())
    cd = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, cd + 24, 1000)  # uncompressed size in the central directory entry
    lying = tmp_path / "lying.zip"
    lying.write_bytes(bytes(data))
    assert rejected(lying).reason in ("zip_malformed", "zip_ratio")


def test_too_many_entries(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "many.zip", {f"e{i}": b"x" for i in range(30)})
    err = rejected(path, PackageLimits(max_entries=20))
    assert err.reason == "zip_entries" and err.status == 413


@pytest.mark.parametrize("name", ["../evil.cot", "a/../../evil", "/etc/passwd", "a\\..\\evil", "C:/evil", "c:evil"])
def test_traversal_names_rejected(tmp_path: Path, name: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("placeholder")
        info.filename = name  # bypass zipfile's own normalisation, as a hostile tool would
        zf.writestr(info, b"x")
    path = tmp_path / "trav.zip"
    path.write_bytes(buf.getvalue())
    assert rejected(path).reason == "zip_path"


def test_symlink_entry_rejected(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.create_system = 3
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, b"/etc/passwd")
    path = tmp_path / "link.zip"
    path.write_bytes(buf.getvalue())
    assert rejected(path).reason == "zip_symlink"


def test_duplicate_entries_rejected(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.cot", b"one")
        with pytest.warns(UserWarning):
            zf.writestr("a.cot", b"two")
    path = tmp_path / "dup.zip"
    path.write_bytes(buf.getvalue())
    assert rejected(path).reason == "zip_duplicate"


def test_truncated_archive_rejected(tmp_path: Path) -> None:
    data = write_zip(tmp_path / "src.zip", {"a": b"hello" * 100}).read_bytes()
    path = tmp_path / "cut.zip"
    path.write_bytes(data[: len(data) // 2])
    assert rejected(path).reason == "zip_malformed"


@pytest.mark.parametrize(
    ("manifest", "reason"),
    [
        (b'<!DOCTYPE m [<!ENTITY x "y">]><MissionPackageManifest version="2"><Configuration/><Contents/>'
         b"</MissionPackageManifest>", "manifest_doctype"),
        (b'<?xml version="1.0"?><!DOCTYPE MissionPackageManifest SYSTEM "http://evil.example/x.dtd">'
         b'<MissionPackageManifest version="2"><Configuration/><Contents/></MissionPackageManifest>',
         "manifest_doctype"),
        (b'<MissionPackageManifest version="1"><Configuration/><Contents/></MissionPackageManifest>',
         "manifest_invalid"),
        (b'<MissionPackageManifest version="2"><Configuration/></MissionPackageManifest>', "manifest_invalid"),
        (b'<Other version="2"><Configuration/><Contents/></Other>', "manifest_invalid"),
        (b'<MissionPackageManifest version="2"><Configuration/><Contents>'
         b'<Content zipEntry="missing/file.cot"/></Contents></MissionPackageManifest>', "manifest_invalid"),
        (b"<MissionPackageManifest version=", "manifest_invalid"),
    ],
)
def test_bad_manifests_rejected(tmp_path: Path, manifest: bytes, reason: str) -> None:
    path = write_zip(tmp_path / "m.zip", {"MANIFEST/manifest.xml": manifest, "a/a.cot": b"<event/>"})
    assert rejected(path).reason == reason
