"""``rallypoint ready`` is logged only once the feeds that listen for their sources are bound: a
datagram sent to a UDP feed, or a connection made to a TCP-server feed, right after ready is taken."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from pathlib import Path

from rallypoint.client import AsyncRallypointClient
from rallypoint.fusion.emit import nmea_sentences
from rallypoint.model.track import Observation
from tests.integration.test_feeds import free_udp_port
from tests.support.accounts import PASSWORDS, create_users
from tests.support.server import ServerProcess


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_feeds_listening_for_their_sources_are_bound_when_ready(data_dir: Path) -> None:
    create_users(data_dir)
    udp_port, tcp_port = free_udp_port(), free_tcp_port()
    fix = nmea_sentences(Observation(source="gps", received_at=datetime.now(UTC), source_time=datetime.now(UTC),
                                     lat=52.0, lon=5.0, ce_m=5.0))
    with ServerProcess(
        data_dir,
        "--feed", f"nmea+udp://127.0.0.1:{udp_port}?name=gps-udp",
        "--feed", f"nmea+tcp://127.0.0.1:{tcp_port}?listen=1&name=gps-tcp",
    ) as server:
        # Ready has just been logged: one datagram, one connection, no retries.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(fix, ("127.0.0.1", udp_port))
        with socket.create_connection(("127.0.0.1", tcp_port), timeout=5) as stream:
            stream.sendall(fix)
        async with AsyncRallypointClient(f"http://127.0.0.1:{server.ports['http']}", username="root",
                                         password=PASSWORDS["root"]) as admin:

            async def decoded() -> dict[str, int]:
                return {f["name"]: f["statistics"]["observations"] for f in await admin.feeds()}

            deadline = asyncio.get_running_loop().time() + 20
            while not all((got := await decoded()).values()):
                assert asyncio.get_running_loop().time() < deadline, f"lost after ready: {got}"
                await asyncio.sleep(0.05)
            assert set(got) == {"gps-udp", "gps-tcp"}
