"""What a restarted server reloads is what the live picture held (``storage.base``: picture rows).

Before the fix, start-up reloaded each uid's last stored row whatever it was: another group's item
reusing a marker's uid replaced the marker, and a marker re-sent to one contact vanished.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.certs import client_context
from tests.support.cot_client import CotClient, cot, sa
from tests.support.groups import serve_with_groups
from tests.support.server import ServerProcess

GROUPS = {"blue1": ["Blue"], "blue2": ["Blue"], "red1": ["Red"], "red2": ["Red"]}
HOUR_S = 3600.0


async def _tls(server: ServerProcess, name: str, out: Path, clients: list[object]) -> CotClient:
    client = await CotClient.connect(server.ports["tls"], ssl_context=client_context(server, name, out / name))
    clients.append(client)
    return client


async def test_another_groups_item_with_the_same_uid_does_not_replace_a_marker_after_restart(
    data_dir: Path, tmp_path: Path, clients: list[object]
) -> None:
    with serve_with_groups(data_dir, GROUPS) as first:
        blue = await _tls(first, "blue1", tmp_path / "a", clients)
        red = await _tls(first, "red1", tmp_path / "a", clients)
        red_peer = await _tls(first, "red2", tmp_path / "a", clients)
        await blue.send(sa("dev-blue", "BLUE"))
        await red.send(sa("dev-red", "RED"))
        await blue.send(cot("marker-x", "b-m-p-s-m", lat=10.0, lon=20.0, stale_s=HOUR_S))
        # Delivered to Red (history) but refused into the picture: Blue holds uid marker-x.
        await red.send(cot("marker-x", "b-m-p-s-m", lat=-30.0, lon=-40.0, stale_s=HOUR_S))
        assert (await red_peer.wait_for(lambda e: e.uid == "marker-x")).point.lat == -30.0
        assert await asyncio.to_thread(first.terminate) == 0, first.tail()

    with serve_with_groups(data_dir, GROUPS) as second:
        blue_late = await _tls(second, "blue2", tmp_path / "b", clients)
        red_late = await _tls(second, "red2", tmp_path / "b", clients)
        marker = await blue_late.wait_uid("marker-x")
        assert (marker.point.lat, marker.point.lon) == (10.0, 20.0)
        # Red's copy never was in the picture, so Red's late joiner gets nothing under that uid.
        await red_late.barrier(await _tls(second, "red1", tmp_path / "c", clients))
        assert not red_late.has(lambda e: e.uid == "marker-x")


async def test_a_marker_resent_to_one_contact_is_still_replayed_after_restart(
    data_dir: Path, clients: list[object]
) -> None:
    first = ServerProcess(data_dir)
    first.start()
    try:
        alpha = await CotClient.connect(first.ports["cot"])
        bravo = await CotClient.connect(first.ports["cot"])
        clients.extend([alpha, bravo])
        await alpha.send(sa("dev-alpha", "ALPHA"))
        await bravo.send(sa("dev-bravo", "BRAVO"))
        await alpha.wait_uid("dev-bravo")
        await alpha.send(cot("marker-y", "b-m-p-s-m", stale_s=HOUR_S))
        await alpha.send(cot("marker-y", "b-m-p-s-m", stale_s=HOUR_S, lat=39.2,
                             detail='<marti><dest callsign="BRAVO"/></marti>'))
        await bravo.wait_for(lambda e: e.uid == "marker-y" and e.point.lat == 39.2)
        assert await asyncio.to_thread(first.terminate) == 0, first.tail()
    finally:
        first.stop()

    second = ServerProcess(data_dir)
    second.start()
    try:
        late = await CotClient.connect(second.ports["cot"])
        clients.append(late)
        marker = await late.wait_uid("marker-y")
        assert marker.point.lat == 39.1  # the broadcast marker, not the copy sent to one contact
    finally:
        second.stop()
