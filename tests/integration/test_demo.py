"""``rallypoint serve --demo``: a TAK client or a logged-in map that connects sees simulated units moving."""

from __future__ import annotations

from pathlib import Path

import httpx

from rallypoint.model.cot import CotEvent
from tests.support.accounts import run_cli
from tests.support.certs import client_context
from tests.support.cot_client import CotClient
from tests.support.live import LiveClient
from tests.support.poll import wait_until
from tests.support.server import ServerProcess

DEMO_PREFIX = "rallypoint-demo-"


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


PASSWORD = "newcomer passphrase 1"


async def _token(http: httpx.AsyncClient, name: str) -> str:
    answer = await http.post("/api/auth/token", auth=(name, PASSWORD))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _add_user(data_dir: Path, name: str, group: str) -> None:
    """An account made the way the README shows: ``user add NAME --group G --role member --password-stdin``."""
    run_cli(data_dir, "user", "add", name, "--group", group, "--role", "member", "--password-stdin",
            stdin=PASSWORD + "\n")


def _live_demo_uids(feed: LiveClient) -> set[str]:
    return {uid for uid in feed.features if uid.startswith(DEMO_PREFIX)}


async def test_a_newcomers_account_sees_the_demo_on_the_map_and_over_tls(
    data_dir: Path, tmp_path: Path, clients: list[object]
) -> None:
    _add_user(data_dir, "alice", "Red")
    server = ServerProcess(data_dir, "--demo")
    server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.ports['http']}", timeout=10) as http:
            # The map page's path: log in for a token, open the live feed.
            feed = await LiveClient.connect(server.ports["http"], token=await _token(http, "alice"))
            clients.append(feed)
            await feed.wait_for(lambda c: len(_live_demo_uids(c)) == 8, timeout=15)
            # A TAK client with the account's certificate gets the units too.
            tak = await CotClient.connect(server.ports["tls"], ssl_context=client_context(server, "alice", tmp_path))
            clients.append(tak)
            await tak.wait_for(lambda e: e.uid.startswith(DEMO_PREFIX), timeout=15)
            # An account created while the server runs, in a group nobody had: the next reports reach it.
            _add_user(data_dir, "bob", "Blue")
            bob = await wait_until(lambda: _try_token(server, "bob"), "bob's account loaded", timeout=15)
            tracks = await wait_until(lambda: _demo_tracks(server, bob), "demo units in bob's picture", timeout=15)
            assert len(tracks) == 8
    finally:
        server.stop()


async def test_demo_groups_setting_limits_who_sees_the_demo(data_dir: Path) -> None:
    _add_user(data_dir, "alice", "Red")
    _add_user(data_dir, "carol", "Exercise")
    server = ServerProcess(data_dir, "--demo", env={"RALLYPOINT_DEMO_GROUPS": "Exercise"})
    server.start()
    try:
        carol = await wait_until(lambda: _try_token(server, "carol"), "carol's token")
        await wait_until(lambda: len(_demo_tracks(server, carol)) == 8, "demo units in carol's picture", timeout=15)
        alice = await wait_until(lambda: _try_token(server, "alice"), "alice's token")
        # The demo's reports in the picture carry only the configured group: alice reads none of them.
        assert _demo_tracks(server, alice) == []
    finally:
        server.stop()


def _try_token(server: ServerProcess, name: str) -> str:
    """A token for ``name``, or "" while the server does not know the account yet."""
    answer = httpx.post(f"http://127.0.0.1:{server.ports['http']}/api/auth/token", auth=(name, PASSWORD), timeout=10)
    return str(answer.json()["access_token"]) if answer.status_code == 200 else ""


def _demo_tracks(server: ServerProcess, token: str) -> list[dict[str, object]]:
    answer = httpx.get(f"http://127.0.0.1:{server.ports['http']}/api/tracks",
                       headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return [t for t in answer.json() if str(t["uid"]).startswith(DEMO_PREFIX)]
