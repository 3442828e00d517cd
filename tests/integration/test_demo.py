"""``rallypoint serve --demo``: a plain TAK client that connects sees simulated units moving."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rallypoint.model.cot import CotEvent
from tests.support.cot_client import CotClient
from tests.support.server import ServerProcess

DEMO_PREFIX = "rallypoint-demo-"


@pytest.fixture
def demo_server(data_dir: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(data_dir, "--demo")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _demo_units(client: CotClient) -> dict[str, list[CotEvent]]:
    units: dict[str, list[CotEvent]] = {}
    for event in client.events:
        if event.uid.startswith(DEMO_PREFIX):
            units.setdefault(event.uid, []).append(event)
    return units


async def test_demo_units_report_moving_positions(demo_server: ServerProcess, clients: list[object]) -> None:
    client = await CotClient.connect(demo_server.ports["cot"])
    clients.append(client)
    # Several simulated units, each with its own callsign, as SA (atoms) a TAK client can draw.
    await client.wait_for(lambda _: len(_demo_units(client)) >= 4, timeout=15)
    units = _demo_units(client)
    callsigns = {reports[0].detail.callsign for reports in units.values()}
    assert len(callsigns) == len(units), callsigns
    assert all(reports[0].type.startswith("a-f-") for reports in units.values())
    # Units report again and again; between two reports of one unit, its position changes.
    uid = sorted(units)[0]
    first = units[uid][0]

    def moved(event: CotEvent) -> bool:
        return event.uid == uid and event.time > first.time and (
            (event.point.lat, event.point.lon) != (first.point.lat, first.point.lon)
        )

    later = await client.wait_for(moved, timeout=15)
    assert later.detail.callsign == first.detail.callsign
    # A walk around the search area, not a jump across the map.
    assert abs(later.point.lat - first.point.lat) < 0.1 and abs(later.point.lon - first.point.lon) < 0.1
