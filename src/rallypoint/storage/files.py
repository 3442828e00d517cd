"""Content-addressed blob store: files live under ``<root>/ab/cd/<sha256>``.

Paths are derived only from the SHA-256 the server computed itself, never from a name a client
sent, so no upload can choose where it lands. Uploads are spooled to a temporary file inside the
store (same file system, so the final ``os.replace`` is atomic) while they are hashed and counted;
a blob is either complete under its hash or absent.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from rallypoint.errors import LimitExceeded

_SHA256 = re.compile(r"[0-9a-f]{64}")
_TMP = ".tmp"


def is_sha256(value: str) -> bool:
    """True for a lowercase hex SHA-256 digest (the only form used as a blob key)."""
    return _SHA256.fullmatch(value) is not None


class BlobWriter:
    """An upload in progress: bytes are hashed and counted as they are written, with a size cap.

    Use as a context manager; anything not committed is deleted on exit.
    """

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self._max = max_bytes
        self._hash = hashlib.sha256()
        self.size = 0
        fd, name = tempfile.mkstemp(prefix="upload-", dir=directory)
        self.path = Path(name)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self.committed = False

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``; raises ``LimitExceeded("upload")`` past the cap (nothing is kept)."""
        if self._file is None:
            raise ValueError("writer is closed")
        self.size += len(chunk)
        if self.size > self._max:
            raise LimitExceeded("upload", limit=self._max, got=self.size)
        self._hash.update(chunk)
        self._file.write(chunk)

    @property
    def sha256(self) -> str:
        """Hex digest of everything written so far."""
        return self._hash.hexdigest()

    def finish(self) -> None:
        """Flush and close the spool file (it stays on disk until committed or discarded)."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def discard(self) -> None:
        """Close and delete the spool file unless it was committed."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if not self.committed:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


class FileBlobStore:
    """Blobs on the local file system, keyed by SHA-256."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / _TMP
        self._tmp.mkdir(parents=True, exist_ok=True)

    def writer(self, max_bytes: int) -> BlobWriter:
        """A new spool file inside the store for an upload of at most ``max_bytes``."""
        return BlobWriter(self._tmp, max_bytes)

    def commit(self, writer: BlobWriter) -> str:
        """Move a finished upload under its hash; returns the hash.

        When the blob already exists the spool file is dropped: one copy per content.
        """
        writer.finish()
        digest = writer.sha256
        target = self._path(digest)
        if target.exists():
            writer.discard()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(writer.path, target)
        writer.committed = True
        return digest

    def path(self, digest: str) -> Path | None:
        """The file holding ``digest``, or None when absent or not a valid digest."""
        if not is_sha256(digest):
            return None
        target = self._path(digest)
        return target if target.is_file() else None

    def delete(self, digest: str) -> bool:
        """Remove a blob; True if it existed."""
        target = self.path(digest)
        if target is None:
            return False
        target.unlink(missing_ok=True)
        return True

    def _path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:4] / digest
