"""A feed added through the API runs again after the server restarts (kept in the feed store)."""

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


async def test_a_feed_added_through_the_api_runs_again_after_a_restart(data_dir: Path) -> None:
    create_users(data_dir)
    port = free_udp_port()
    with ServerProcess(data_dir) as server:
        async with AsyncRallypointClient(f"http://127.0.0.1:{server.ports['http']}", username="root",
                                         password=PASSWORDS["root"]) as admin:
            added = await admin.add_feed(f"nmea+udp://127.0.0.1:{port}", name="gps", groups=["Ops"], stale_s=60)
            assert added["origin"] == "api"
    with ServerProcess(data_dir) as server:
        # Ready means the kept feed listens: one datagram sent now is decoded.
        fix = nmea_sentences(Observation(source="gps", received_at=datetime.now(UTC),
                                         source_time=datetime.now(UTC), lat=52.0, lon=5.0, ce_m=5.0))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(fix, ("127.0.0.1", port))
        async with AsyncRallypointClient(f"http://127.0.0.1:{server.ports['http']}", username="root",
                                         password=PASSWORDS["root"]) as admin:
            deadline = asyncio.get_running_loop().time() + 20
            while not (feeds := {f["name"]: f for f in await admin.feeds()})["gps"]["statistics"]["observations"]:
                assert asyncio.get_running_loop().time() < deadline, f"the kept feed decoded nothing: {feeds}"
                await asyncio.sleep(0.05)
            gps = feeds["gps"]
            assert (gps["origin"], gps["groups"], gps["stale_s"]) == ("api", ["Ops"], 60.0)
            await admin.remove_feed("gps")
    with ServerProcess(data_dir) as server:
        async with AsyncRallypointClient(f"http://127.0.0.1:{server.ports['http']}", username="root",
                                         password=PASSWORDS["root"]) as admin:
            assert await admin.feeds() == []
