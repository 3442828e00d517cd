"""A small HTTP/1.1 GET for polling documents (``aircraft.json``, GeoJSON, KML), and its sans-IO parser.

The server depends on no HTTP client library, and a poller needs little: one GET per interval with
``Connection: close``, conditional headers (``If-None-Match``/``If-Modified-Since``) so an unchanged
document costs a 304, a size cap on the answer and a timeout on the whole exchange. Bodies may come
with a ``Content-Length``, chunked, or until the server closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit

import msgspec

from rallypoint import __version__


class HttpFetchError(Exception):
    """The poll failed; ``reason`` is a short label for the feed's reject counts."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class HttpAnswer(msgspec.Struct, frozen=True):
    """Status, headers (lower-case names) and body of one answer."""

    status: int
    headers: dict[str, str]
    body: bytes


def request_bytes(url: str, *, etag: str | None = None, last_modified: str | None = None) -> bytes:
    """The GET request for ``url`` with the conditional headers of the previous answer."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname or ""
    default_port = 443 if parts.scheme == "https" else 80
    host_header = host if parts.port in (None, default_port) else f"{host}:{parts.port}"
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host_header}",
        f"User-Agent: Rallypoint/{__version__}",
        "Accept: */*",
        "Accept-Encoding: identity",
        "Connection: close",
    ]
    if etag:
        lines.append(f"If-None-Match: {etag}")
    if last_modified:
        lines.append(f"If-Modified-Since: {last_modified}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_answer(raw: bytes, *, max_bytes: int) -> HttpAnswer:
    """Parse a whole HTTP/1.1 answer read until the server closed (sans-IO)."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        raise HttpFetchError("http_malformed", "no end of headers")
    lines = head.decode("latin-1").split("\r\n")
    status_parts = lines[0].split(" ", 2)
    if len(status_parts) < 2 or not status_parts[0].startswith("HTTP/1.") or not status_parts[1].isdigit():
        raise HttpFetchError("http_malformed", f"bad status line {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise HttpFetchError("http_malformed", f"bad header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(rest, max_bytes)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise HttpFetchError("http_malformed", "bad Content-Length") from None
        if length > max_bytes:
            raise HttpFetchError("too_large", f"document of {length} bytes, limit {max_bytes}")
        if len(rest) < length:
            raise HttpFetchError("http_truncated", f"{len(rest)} of {length} bytes")
        body = rest[:length]
    else:
        body = rest
    if len(body) > max_bytes:
        raise HttpFetchError("too_large", f"document above {max_bytes} bytes")
    return HttpAnswer(int(status_parts[1]), headers, body)


def _dechunk(data: bytes, max_bytes: int) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            raise HttpFetchError("http_truncated", "chunk size line missing")
        try:
            size = int(data[pos:end].split(b";", 1)[0], 16)
        except ValueError:
            raise HttpFetchError("http_malformed", "bad chunk size") from None
        if size == 0:
            return bytes(out)
        start = end + 2
        if start + size > len(data):
            raise HttpFetchError("http_truncated", "chunk cut short")
        out += data[start:start + size]
        if len(out) > max_bytes:
            raise HttpFetchError("too_large", f"document above {max_bytes} bytes")
        pos = start + size + 2


async def fetch(url: str, *, timeout_s: float, max_bytes: int, etag: str | None = None,
                last_modified: str | None = None, ssl_context: ssl.SSLContext | None = None) -> HttpAnswer:
    """GET ``url`` once; ``HttpFetchError`` for anything but an answer (timeouts and refusals included)."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    context = (ssl_context or ssl.create_default_context()) if https else None
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=context)
            writer.write(request_bytes(url, etag=etag, last_modified=last_modified))
            await writer.drain()
            # Headers take a little room beyond the body's cap.
            raw = await reader.read(max_bytes + 16 * 1024 + 1)
            chunks = [raw]
            total = len(raw)
            while raw and total <= max_bytes + 16 * 1024:
                raw = await reader.read(max_bytes + 16 * 1024 + 1 - total)
                chunks.append(raw)
                total += len(raw)
    except TimeoutError:
        raise HttpFetchError("http_timeout", f"no whole answer within {timeout_s:g} s") from None
    except (OSError, ssl.SSLError) as exc:
        raise HttpFetchError("http_unreachable", f"{type(exc).__name__}: {exc}") from None
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
    if total > max_bytes + 16 * 1024:
        raise HttpFetchError("too_large", f"answer above {max_bytes} bytes")
    return parse_answer(b"".join(chunks), max_bytes=max_bytes)
