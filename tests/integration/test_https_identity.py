"""A request's client certificate is the one of the connection it arrived on, never borrowed.

The HTTPS port and the plain HTTP port share one app; the certificate of a live HTTPS connection
must not be reachable from a plain HTTP request, whether by naming the HTTPS client's address in
``X-Forwarded-For`` or by leaving the client host from the same port.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.certs import client_context
from tests.support.groups import serve_with_groups
from tests.support.server import ServerProcess

M = "/Marti/api/missions"
MISSION = "BlueOp"


@pytest.fixture
def group_server(data_dir: Path) -> Iterator[ServerProcess]:
    with serve_with_groups(data_dir, {"blue": ["Blue"]}) as proc:
        yield proc


async def _raw_get(stream: tuple[asyncio.StreamReader, asyncio.StreamWriter], path: str,
                   headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One keep-alive HTTP/1.1 GET on an open connection whose socket the test chose itself."""
    reader, writer = stream
    head = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode())
    await writer.drain()
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    length = next(int(v) for k, _, v in (line.partition(": ") for line in lines) if k.lower() == "content-length")
    return int(lines[0].split()[1]), await reader.readexactly(length)


def _socket_from(port: int = 0) -> socket.socket:
    # SO_REUSEADDR on both sockets lets a second connection leave from the same local port (to
    # another destination), as the kernel's own port choice may also do.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


async def test_plain_http_callers_never_act_with_an_https_clients_certificate(
    group_server: ServerProcess, tmp_path: Path
) -> None:
    ports = group_server.ports
    async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{ports['api']}", timeout=10,
                                 verify=client_context(group_server, "blue", tmp_path)) as blue:
        created = await blue.put(f"{M}/{MISSION}", params={"creatorUid": "uid-blue"})
        assert created.status_code == 201, created.text
    # Blue keeps an HTTPS connection open, as ATAK does.
    sock = _socket_from()
    sock.connect(("127.0.0.1", ports["api"]))
    blue_conn = await asyncio.open_connection(sock=sock, ssl=client_context(group_server, "blue", tmp_path),
                                              server_hostname="127.0.0.1")
    try:
        status, body = await _raw_get(blue_conn, "/Marti/api/groups/all")
        assert status == 200 and b'"Blue"' in body
        blue_port = sock.getsockname()[1]
        # A loopback caller naming Blue's address in X-Forwarded-For is still anonymous.
        plain = f"http://127.0.0.1:{ports['http']}"
        async with httpx.AsyncClient(base_url=plain, timeout=10) as anon:
            for forwarded in (f"127.0.0.1:{blue_port}", f"127.0.0.1, 127.0.0.1:{blue_port}"):
                headers = {"x-forwarded-for": forwarded}
                groups = await anon.get("/Marti/api/groups/all", headers=headers)
                assert {g["name"] for g in groups.json()["data"]} == {"__ANON__"}, forwarded
                listed = await anon.get(M, headers=headers)
                assert listed.status_code == 200 and MISSION not in listed.text
        # Nor does a plain connection that leaves from the same local port as Blue's HTTPS one.
        same_port = _socket_from(blue_port)
        same_port.connect(("127.0.0.1", ports["http"]))
        anon_conn = await asyncio.open_connection(sock=same_port)
        try:
            status, body = await _raw_get(anon_conn, "/Marti/api/groups/all")
            assert status == 200 and b'"Blue"' not in body and b'"__ANON__"' in body
            status, body = await _raw_get(anon_conn, M)
            assert status == 200 and MISSION.encode() not in body
        finally:
            anon_conn[1].close()
    finally:
        blue_conn[1].close()
