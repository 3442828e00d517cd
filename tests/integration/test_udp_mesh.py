"""UDP mesh input: multicast membership, per-source rate limit, off unless enabled."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cot_client import CotClient, sa
from tests.support.poll import wait_until
from tests.support.server import ServerProcess

MESH_GROUP = "239.2.3.1"


def _rejected_udp(server: ServerProcess, reason: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{server.ports['http']}/metrics", timeout=5).text
    pattern = rf'rallypoint_events_rejected_total\{{reason="{reason}",transport="udp"\}} ([0-9.e+]+)'
    match = re.search(pattern, text)
    return float(match.group(1)) if match else 0.0


@pytest.fixture
def mesh_server(data_dir: Path) -> Iterator[ServerProcess]:
    """A server whose mesh input joins 239.2.3.1 on loopback, with a small per-source rate."""
    proc = ServerProcess(
        data_dir,
        env={
            "RALLYPOINT_UDP_BIND": "0.0.0.0",
            "RALLYPOINT_UDP_MULTICAST": MESH_GROUP,
            "RALLYPOINT_UDP_MULTICAST_INTERFACE": "127.0.0.1",
            "RALLYPOINT_MAX_EVENTS_PER_S": "1",
            "RALLYPOINT_EVENTS_BURST": "5",
        },
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _multicast_sender() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    return sock


async def test_multicast_sa_reaches_stream_clients(mesh_server: ServerProcess, clients: list[object]) -> None:
    b = await CotClient.connect(mesh_server.ports["cot"])
    clients.append(b)
    with _multicast_sender() as sock:
        sock.sendto(sa("mesh-phone", "MESH"), (MESH_GROUP, mesh_server.ports["udp"]))
    got = await b.wait_uid("mesh-phone")
    assert got.detail.callsign == "MESH"


async def test_flooding_source_is_rate_limited_and_others_still_heard(
    mesh_server: ServerProcess, clients: list[object]
) -> None:
    b = await CotClient.connect(mesh_server.ports["cot"])
    clients.append(b)
    port = mesh_server.ports["udp"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flood:
        for i in range(50):
            flood.sendto(sa(f"flood-{i}", f"F{i}"), ("127.0.0.1", port))
    # Burst 5 at 1/s: at most a handful of the 50 get through, the rest are counted.
    await wait_until(lambda: _rejected_udp(mesh_server, "rate_limited") >= 40, "flood counted as rate limited")
    mesh_server.wait_for_log("datagram rejected", reason="rate_limited")
    await b.wait_uid("flood-0")
    # A different source address (another mesh participant) has its own budget.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.bind(("127.0.0.2", 0))
        other.sendto(sa("quiet-phone", "QUIET"), ("127.0.0.1", port))
    await b.wait_uid("quiet-phone")
    assert not b.has(lambda e: e.uid == "flood-49")


async def test_mesh_input_is_off_unless_enabled(data_dir: Path) -> None:
    proc = ServerProcess(data_dir, "--udp-port", "0")
    proc.start()
    try:
        assert "udp" not in proc.ports
    finally:
        proc.stop()
