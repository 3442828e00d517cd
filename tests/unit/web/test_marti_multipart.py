"""The streaming multipart reader: any chunking gives the same parts; malformed bodies are refused."""

from __future__ import annotations

import pytest

from rallypoint.errors import RemoteProtocolError
from rallypoint.web.marti.sync_multipart import MultipartReader, PartData, PartEnd, PartStart, boundary_of

BOUNDARY = "----rallypointBoundary7MA4YWxk"
PAYLOAD = b"PK\x03\x04" + bytes(range(256)) * 40 + b"\r\n--not-the-boundary\r\n"
BODY = (
    f"preamble\r\n--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
    f"--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="assetfile"; filename="pkg \\"1\\".zip"\r\n'
    "Content-Type: application/x-zip-compressed\r\n\r\n"
).encode() + PAYLOAD + f"\r\n--{BOUNDARY}--\r\nepilogue".encode()


def parse(chunks: list[bytes]) -> tuple[list[tuple[PartStart, bytes]], bool]:
    reader = MultipartReader(BOUNDARY)
    parts: list[tuple[PartStart, bytes]] = []
    current: PartStart | None = None
    data = b""
    for chunk in chunks:
        for ev in reader.feed(chunk):
            if isinstance(ev, PartStart):
                current, data = ev, b""
            elif isinstance(ev, PartData):
                data += ev.data
            elif isinstance(ev, PartEnd):
                assert current is not None
                parts.append((current, data))
    return parts, reader.done


@pytest.mark.parametrize("size", [1, 2, 7, 64, 1000, len(BODY)])
def test_any_chunking_gives_the_same_parts(size: int) -> None:
    parts, done = parse([BODY[i:i + size] for i in range(0, len(BODY), size)])
    assert done
    assert [(p.name, p.filename, d) for p, d in parts] == [
        ("note", None, b"hello"), ("assetfile", 'pkg "1".zip', PAYLOAD)]
    assert parts[1][0].content_type == "application/x-zip-compressed"


def test_boundary_of() -> None:
    assert boundary_of(f'multipart/form-data; boundary="{BOUNDARY}"') == BOUNDARY
    assert boundary_of(f"multipart/form-data; charset=utf-8; boundary={BOUNDARY}") == BOUNDARY
    assert boundary_of("application/zip") is None
    assert boundary_of("multipart/form-data") is None


def test_truncated_body_not_done() -> None:
    _, done = parse([BODY[: len(BODY) // 2]])
    assert not done


def test_malformed_headers_refused() -> None:
    reader = MultipartReader(BOUNDARY)
    with pytest.raises(RemoteProtocolError):
        reader.feed(f"--{BOUNDARY}\r\nno colon here\r\n\r\nx".encode())
    reader = MultipartReader(BOUNDARY)
    with pytest.raises(RemoteProtocolError):
        reader.feed(f"--{BOUNDARY}\r\n".encode() + b"X-Long: " + b"a" * 20_000)
