"""A small sans-IO ``multipart/form-data`` reader, so uploads stream to disk instead of into memory.

``feed(chunk)`` returns events in order: ``PartStart(name, filename, content_type)``, ``PartData``
(zero or more), ``PartEnd``; after the closing boundary ``done`` is True. Header blocks are capped;
malformed input raises ``RemoteProtocolError("multipart_malformed")``.
"""

from __future__ import annotations

import re

import msgspec

from rallypoint.errors import LimitExceeded, RemoteProtocolError

MAX_HEADER_BYTES = 16 * 1024
_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')


class PartStart(msgspec.Struct, frozen=True):
    name: str
    filename: str | None
    content_type: str | None


class PartData(msgspec.Struct, frozen=True):
    data: bytes


class PartEnd(msgspec.Struct, frozen=True):
    pass


Event = PartStart | PartData | PartEnd


def boundary_of(content_type: str) -> str | None:
    """The ``boundary`` parameter of a ``multipart/form-data`` content type, else None."""
    main, _, _ = content_type.partition(";")
    if main.strip().lower() != "multipart/form-data":
        return None
    for match in _PARAM.finditer(content_type):
        if match.group(1).lower() == "boundary":
            value = match.group(2) if match.group(2) is not None else match.group(3)
            if value and len(value) <= 200:
                return value
    return None


def _disposition(value: str) -> tuple[str | None, str | None]:
    params: dict[str, str] = {}
    for match in _PARAM.finditer(value):
        raw = match.group(2) if match.group(2) is not None else match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", raw)
    return params.get("name"), params.get("filename")


class MultipartReader:
    """Incremental parser for one multipart body."""

    def __init__(self, boundary: str) -> None:
        # The leading CRLF lets the first boundary (at offset 0) match the same delimiter as the rest.
        self._buf = b"\r\n"
        self._delim = b"\r\n--" + boundary.encode("latin-1")
        self._state = "preamble"
        self.done = False

    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data``; returns the events it completes."""
        self._buf += data
        out: list[Event] = []
        while True:
            if self._state == "preamble":
                i = self._buf.find(self._delim)
                if i < 0:
                    self._buf = self._buf[-(len(self._delim) - 1):]
                    return out
                self._buf = self._buf[i + len(self._delim):]
                self._state = "after_delim"
            elif self._state == "after_delim":
                if len(self._buf) < 2:
                    return out
                if self._buf.startswith(b"--"):
                    self.done = True
                    self._state = "epilogue"
                    self._buf = b""
                    return out
                eol = self._buf.find(b"\r\n")
                if eol < 0:
                    if len(self._buf) > 256:
                        raise RemoteProtocolError("multipart_malformed", "bad boundary line")
                    return out
                if self._buf[:eol].strip(b" \t"):
                    raise RemoteProtocolError("multipart_malformed", "bad boundary line")
                self._buf = self._buf[eol + 2:]
                self._state = "headers"
            elif self._state == "headers":
                end = self._buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._buf) > MAX_HEADER_BYTES:
                        raise LimitExceeded("multipart_headers", limit=MAX_HEADER_BYTES, got=len(self._buf))
                    return out
                out.append(self._headers(self._buf[:end]))
                self._buf = self._buf[end + 4:]
                self._state = "body"
            elif self._state == "body":
                i = self._buf.find(self._delim)
                if i < 0:
                    keep = len(self._delim) - 1
                    if len(self._buf) > keep:
                        out.append(PartData(self._buf[:-keep]))
                        self._buf = self._buf[-keep:]
                    return out
                if i:
                    out.append(PartData(self._buf[:i]))
                out.append(PartEnd())
                self._buf = self._buf[i + len(self._delim):]
                self._state = "after_delim"
            else:  # epilogue: ignored
                self._buf = b""
                return out

    @staticmethod
    def _headers(block: bytes) -> PartStart:
        name: str | None = None
        filename: str | None = None
        content_type: str | None = None
        for line in block.decode("utf-8", "replace").split("\r\n"):
            key, sep, value = line.partition(":")
            if not sep:
                raise RemoteProtocolError("multipart_malformed", "bad part header")
            key = key.strip().lower()
            if key == "content-disposition":
                name, filename = _disposition(value)
            elif key == "content-type":
                content_type = value.strip()
        if name is None:
            raise RemoteProtocolError("multipart_malformed", "part without a name")
        return PartStart(name=name, filename=filename, content_type=content_type)
