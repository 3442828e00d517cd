"""Data packages: zip safety checks, manifest validation, and the package service.

Zip archives are inspected with ``zipfile`` without extracting anything to disk: names are
checked for traversal tricks, entry counts and sizes against limits, and every entry is
decompressed into nothing (counted, CRC-checked) so a lying size header cannot hide a zip bomb.
A ``MANIFEST/manifest.xml`` is parsed with the same hardened XML rules as CoT (no DTD, no
entities) and must describe a version 2 mission package whose entries exist.
"""

from __future__ import annotations

import asyncio
import logging
import re
import stat
import uuid
import zipfile
import zlib
from pathlib import Path

import msgspec
from lxml import etree

from rallypoint.clock import Clock
from rallypoint.errors import RallypointError, RemoteProtocolError
from rallypoint.protocol.xmlsafe import new_parser, reject_markup_declarations, strip_declaration
from rallypoint.storage.base.packages import BlobStore, PackageRecord, PackageRecords
from rallypoint.storage.files import BlobWriter, is_sha256

log = logging.getLogger(__name__)

MIB = 1024 * 1024
MANIFEST_PATH = "MANIFEST/manifest.xml"
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
TOOLS = frozenset({"public", "private"})
_DRIVE = re.compile(r"^[A-Za-z]:")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._ ()+\-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PackageLimits(msgspec.Struct, frozen=True):
    """Upload and archive limits (defaults suit ATAK mission packages with imagery)."""

    max_upload_bytes: int = 100 * MIB
    max_uncompressed_bytes: int = 1024 * MIB
    max_entries: int = 10_000
    # Ratio limits apply to entries (and archives) above ``ratio_floor_bytes``: tiny, very
    # compressible files (a page of zeros) are harmless whatever their ratio.
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 1 * MIB
    max_manifest_bytes: int = 1 * MIB
    max_manifest_depth: int = 32


class PackageRejected(RallypointError):
    """An upload refused for a stated reason; ``status`` is the HTTP answer (400 or 413)."""

    def __init__(self, reason: str, detail: str = "", *, status: int = 400) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.status = status


class ZipSummary(msgspec.Struct, frozen=True):
    """What a validated archive holds."""

    entries: int
    uncompressed_bytes: int
    manifest: bool
    package_uid: str | None = None
    package_name: str | None = None


# --- archive checks ---------------------------------------------------------------------------


def looks_like_zip(head: bytes) -> bool:
    """True when the first bytes are a zip local header (or an empty archive)."""
    return head[:4] in ZIP_MAGIC


def check_entry_name(name: str) -> None:
    """Refuse names that could escape an extraction directory on any platform."""
    if not name or "\x00" in name:
        raise PackageRejected("zip_path", "empty or NUL in entry name")
    if "\\" in name:
        raise PackageRejected("zip_path", f"backslash in {name!r}")
    if name.startswith("/") or _DRIVE.match(name):
        raise PackageRejected("zip_path", f"absolute path {name!r}")
    if any(part == ".." for part in name.split("/")):
        raise PackageRejected("zip_path", f"parent reference in {name!r}")


def check_zip(path: Path, limits: PackageLimits) -> ZipSummary:
    """Validate an archive on disk without extracting it; raises ``PackageRejected``.

    Blocking (it decompresses every entry into a counter): run it in a worker thread.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            return _check_open_zip(zf, limits)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise PackageRejected("zip_malformed", str(exc)) from None
    except RuntimeError as exc:  # zipfile raises it for encrypted entries read without a password
        raise PackageRejected("zip_encrypted", str(exc)) from None


def _check_open_zip(zf: zipfile.ZipFile, limits: PackageLimits) -> ZipSummary:
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise PackageRejected("zip_entries", f"{len(infos)} entries > {limits.max_entries}", status=413)
    names: set[str] = set()
    declared = 0
    compressed = 0
    for info in infos:
        check_entry_name(info.filename)
        if info.filename in names:
            raise PackageRejected("zip_duplicate", f"entry {info.filename!r} appears twice")
        names.add(info.filename)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise PackageRejected("zip_symlink", f"symbolic link {info.filename!r}")
        if info.flag_bits & 0x1:
            raise PackageRejected("zip_encrypted", f"encrypted entry {info.filename!r}")
        if info.file_size > limits.ratio_floor_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise PackageRejected("zip_ratio", f"entry {info.filename!r} expands too much", status=413)
        declared += info.file_size
        compressed += info.compress_size
        if declared > limits.max_uncompressed_bytes:
            raise PackageRejected("zip_too_large", f"more than {limits.max_uncompressed_bytes} bytes", status=413)
    if declared > limits.ratio_floor_bytes and declared > limits.max_ratio * max(compressed, 1):
        raise PackageRejected("zip_ratio", "archive expands too much", status=413)
    actual = 0
    for info in infos:
        if info.is_dir():
            continue
        # zipfile never yields more than the declared size and checks the CRC at the end, so a
        # full read proves the header told the truth.
        with zf.open(info) as member:
            while chunk := member.read(256 * 1024):
                actual += len(chunk)
                if actual > limits.max_uncompressed_bytes:
                    raise PackageRejected("zip_too_large", "uncompressed size exceeds the limit", status=413)
    uid = name = None
    manifest = _find_manifest(infos)
    if manifest is not None:
        if manifest.file_size > limits.max_manifest_bytes:
            raise PackageRejected("manifest_invalid", "manifest too large", status=413)
        uid, name = validate_manifest(zf.read(manifest), names, limits)
    return ZipSummary(
        entries=len(infos), uncompressed_bytes=actual, manifest=manifest is not None, package_uid=uid,
        package_name=name,
    )


def _find_manifest(infos: list[zipfile.ZipInfo]) -> zipfile.ZipInfo | None:
    for info in infos:
        if info.filename.lower() == MANIFEST_PATH.lower():
            return info
    return None


def validate_manifest(data: bytes, entries: set[str], limits: PackageLimits) -> tuple[str | None, str | None]:
    """Check a ``MissionPackageManifest`` v2; returns its configured ``(uid, name)``.

    Raises ``PackageRejected`` (reason ``manifest_doctype`` for DTD/entity tricks, else
    ``manifest_invalid``).
    """
    try:
        body = strip_declaration(data)
        reject_markup_declarations(body)
        root = etree.fromstring(body, new_parser())
    except RemoteProtocolError as exc:
        reason = "manifest_doctype" if exc.reason in ("doctype", "entity") else "manifest_invalid"
        raise PackageRejected(reason, exc.reason) from None
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        raise PackageRejected("manifest_invalid", f"not well-formed XML (line {line}, column {column})") from None
    if root.xpath("boolean(" + "/*" * (limits.max_manifest_depth + 1) + ")"):
        raise PackageRejected("manifest_invalid", "too deep")
    if root.tag != "MissionPackageManifest":
        raise PackageRejected("manifest_invalid", f"root element {root.tag!r}")
    if root.get("version") != "2":
        raise PackageRejected("manifest_invalid", f"version {root.get('version')!r} (expected 2)")
    config = root.find("Configuration")
    contents = root.find("Contents")
    if config is None or contents is None:
        raise PackageRejected("manifest_invalid", "Configuration and Contents are required")
    params = {p.get("name"): p.get("value") for p in config.findall("Parameter")}
    for content in contents.findall("Content"):
        entry = content.get("zipEntry")
        if not entry:
            raise PackageRejected("manifest_invalid", "Content without zipEntry")
        if entry not in entries:
            raise PackageRejected("manifest_invalid", f"zipEntry {entry!r} is not in the archive")
    return params.get("uid"), params.get("name")


# --- names and metadata -----------------------------------------------------------------------


def sanitize_filename(name: str | None, default: str = "package.zip") -> str:
    """A display/download name safe in headers and on any file system (never used as a path)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE_NAME_CHARS.sub("_", _CONTROL.sub("", base)).strip(" .")
    return base[:200] or default


def clean_keywords(values: list[str]) -> tuple[str, ...]:
    """Keywords from query parameters (repeated and/or comma separated), de-duplicated, in order."""
    out: list[str] = []
    for value in values:
        for item in value.split(","):
            item = _CONTROL.sub("", item).strip()[:100]
            if item and item not in out:
                out.append(item)
    return tuple(out[:20])


class Upload(msgspec.Struct, frozen=True):
    """What the caller says about an upload (the content itself arrives through a ``BlobWriter``)."""

    filename: str
    submitter: str
    groups: frozenset[str]
    creator_uid: str = ""
    mime: str = "application/octet-stream"
    keywords: tuple[str, ...] = ("missionpackage",)
    tool: str = "public"
    expected_hash: str | None = None
    # Mission package uploads must be zip archives; other uploads are checked only if they are.
    require_zip: bool = False


class DataPackageService:
    """Stores uploads content-addressed, keeps their metadata per upload, answers group-filtered lookups.

    The bytes are kept once per SHA-256; each uploader (submitter and write groups) gets its own
    metadata row. Every lookup picks among the rows the caller may read, so holding the same bytes
    as another group reveals nothing of that group's upload (name, keywords, submitter, groups).
    """

    def __init__(
        self, blobs: BlobStore, records: PackageRecords, clock: Clock, limits: PackageLimits | None = None
    ) -> None:
        self.blobs = blobs
        self.records = records
        self.limits = limits or PackageLimits()
        self._clock = clock
        # Committing a blob and adding its row, or removing the last row and then the blob, must not
        # interleave: an upload could otherwise land a row whose blob a concurrent delete removes.
        self._blob_lock = asyncio.Lock()

    def spool(self) -> BlobWriter:
        """A spool file for an incoming upload, capped at the upload limit."""
        return self.blobs.writer(self.limits.max_upload_bytes)

    async def store(self, writer: BlobWriter, upload: Upload) -> tuple[PackageRecord, bool]:
        """Validate a finished upload, keep it under its hash and record its metadata.

        Returns ``(record, created)``; raises ``PackageRejected``. The spool file is consumed.
        ``created`` is True when this uploader (submitter and groups) had no row for the hash yet,
        whether or not the bytes were already stored for someone else: answering otherwise would
        tell the caller that another group holds the same file.
        """
        writer.finish()
        digest = writer.sha256
        if upload.expected_hash and upload.expected_hash.lower() != digest:
            raise PackageRejected("hash_mismatch", f"content hashes to {digest}")
        if upload.tool not in TOOLS:
            raise PackageRejected("bad_tool", upload.tool)
        with writer.path.open("rb") as fh:
            head = fh.read(4)
        is_zip = looks_like_zip(head)
        if upload.require_zip and not is_zip:
            raise PackageRejected("zip_malformed", "a mission package must be a zip archive")
        summary: ZipSummary | None = None
        if is_zip:
            summary = await asyncio.to_thread(check_zip, writer.path, self.limits)
        mime = "application/x-zip-compressed" if is_zip and upload.mime == "application/octet-stream" else upload.mime
        record = PackageRecord(
            hash=digest,
            uid=(summary.package_uid if summary and summary.package_uid else str(uuid.uuid4()))[:200],
            name=upload.filename,
            mime=_CONTROL.sub("", mime)[:200] or "application/octet-stream",
            size=writer.size,
            keywords=upload.keywords,
            tool=upload.tool,
            creator_uid=_CONTROL.sub("", upload.creator_uid)[:200],
            submitter=upload.submitter,
            groups=frozenset(upload.groups),
            submitted_ms=self._clock.now_ms(),
        )
        async with self._blob_lock:
            await asyncio.to_thread(self.blobs.commit, writer)
            return await self.records.add(record)

    async def find(
        self, digest: str, read_groups: frozenset[str], submitter: str | None = None
    ) -> PackageRecord | None:
        """The caller's view of a stored package, or None when it cannot read any upload of it.

        Only rows sharing one of ``read_groups`` count. Among them the caller's own upload comes
        first (when ``submitter`` is given), then public ones, then private ones (still readable by
        hash: that is how the contacts a package was sent to download it); oldest first within each.
        """
        if not is_sha256(digest.lower()):
            return None
        readable = await self._readable(digest.lower(), read_groups)
        if not readable or self.blobs.path(readable[0].hash) is None:
            return None
        return _preferred(readable, submitter)

    async def search(
        self, read_groups: frozenset[str], submitter: str, *, keyword: str | None = None, tool: str | None = None
    ) -> list[PackageRecord]:
        """Readable uploads; private ones only for their submitter, whatever the ``tool`` filter.

        A private package is one sent to chosen contacts: they download it by the hash in the
        message, so listing it to the rest of its groups (``tool=private``) would disclose it.
        Each upload is its own entry: two uploads of the same bytes readable by the caller are two.
        """
        found = await self.records.search(keyword=keyword, tool=tool)
        return [
            r for r in found
            if not read_groups.isdisjoint(r.groups) and (r.tool != "private" or r.submitter == submitter)
        ]

    async def set_tool(
        self, digest: str, tool: str, *, read_groups: frozenset[str], write_groups: frozenset[str],
        submitter: str, admin: bool = False,
    ) -> PackageRecord | None:
        """Change the tool (``public``/``private``) of the caller's own uploads of a package.

        An admin changes every upload of it the caller can read. None when the caller can read no
        upload of it (it does not exist for them); ``PackageRejected`` with status 403 when they
        can read one but submitted none, or write none of its groups.
        """
        if tool not in TOOLS:
            raise PackageRejected("bad_tool", tool)
        if await self.find(digest, read_groups) is None:
            return None
        readable = await self._readable(digest.lower(), read_groups)
        mine = readable if admin else [r for r in readable if r.submitter == submitter]
        if not mine:
            raise PackageRejected("forbidden", "only the submitter or an admin may change the tool", status=403)
        targets = [r for r in mine if not write_groups.isdisjoint(r.groups)]
        if not targets:
            raise PackageRejected("forbidden", "no write access to this package", status=403)
        updated = [u for r in targets if (u := await self.records.update(r.id, tool=tool)) is not None]
        return _preferred(updated, submitter) if updated else None

    async def delete(
        self, digest: str, *, read_groups: frozenset[str], principal: str | None, admin: bool
    ) -> PackageRecord | None:
        """Remove the caller's uploads of a package (every readable one for an admin).

        The content itself goes with the last upload of it, whoever made the others. None when
        the caller can read no upload of it; ``PackageRejected`` with status 403 when they can
        read one but submitted none and are not an admin.
        """
        if await self.find(digest, read_groups) is None:
            return None
        readable = await self._readable(digest.lower(), read_groups)
        targets = readable if admin else [r for r in readable if principal is not None and r.submitter == principal]
        if not readable:
            return None  # deleted meanwhile
        if not targets:
            raise PackageRejected("forbidden", "only the submitter or an admin may delete a package", status=403)
        async with self._blob_lock:
            removed, left = await self.records.delete([r.id for r in targets])
            if removed == 0:
                return None  # deleted meanwhile
            if left == 0:
                await asyncio.to_thread(self.blobs.delete, targets[0].hash)
        return _preferred(targets, principal)

    async def _readable(self, digest: str, read_groups: frozenset[str]) -> list[PackageRecord]:
        return [r for r in await self.records.rows(digest) if not read_groups.isdisjoint(r.groups)]

    async def close(self) -> None:
        """Close the metadata store."""
        await self.records.close()


def _preferred(rows: list[PackageRecord], submitter: str | None) -> PackageRecord:
    # Own upload, then public, then private; the oldest within each (rows come oldest first).
    def rank(record: PackageRecord) -> int:
        if submitter is not None and record.submitter == submitter:
            return 0
        return 1 if record.tool != "private" else 2

    return min(rows, key=rank)
