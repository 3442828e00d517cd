"""A unit without a GPS fix (0,0, ``ce=9999999``): routed to TAK clients unchanged, counted, kept off the map."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.support.accounts import run_cli
from tests.support.cot_client import CotClient, sa
from tests.support.live import LiveClient
from tests.support.metrics import metric_value
from tests.support.poll import wait_until
from tests.support.samples import current_sample
from tests.support.server import ServerProcess

# taky's PLI fixture: a device SA (takv, contact endpoint) at 0,0 with ce/le 9999999.
SAMPLE = "01b_sa_pli_minimal_taky_fixture.xml"
UID = "TEST-deadbeef"


async def test_no_fix_sa_is_routed_but_not_placed_at_0_0(
    server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    http_port = server.ports["http"]
    feed = await LiveClient.connect(http_port)  # anonymous on loopback: __ANON__, like the plain TCP clients
    observer = await CotClient.connect(server.ports["cot"])
    device = await CotClient.connect(server.ports["cot"])
    clients.extend([feed, observer, device])
    await feed.wait_for(lambda c: bool(c.received("FeatureCollection")))

    data = current_sample(SAMPLE)
    await device.send(data)
    # TAK clients get it unchanged: they need the contact (callsign, endpoint) to chat with the device.
    got = await observer.wait_uid(UID)
    assert (got.point.lat, got.point.lon) == (0.0, 0.0) and got.detail.callsign == "JENNY"
    assert data[data.find(b"<event"):].strip() in {bytes(r) for r in observer.raw}

    # The map is told the unit exists but has no position: no geometry, flagged.
    feature = await feed.wait_uid(UID)
    assert feature["geometry"] is None and feature["properties"]["no_fix"] is True
    assert feature["properties"]["callsign"] == "JENNY"
    await wait_until(lambda: metric_value(server, "rallypoint_positions_no_fix_total") >= 1, "no-fix counted")

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=10) as http:
        tracks = (await http.get("/api/tracks", params={"format": "geojson"})).json()
        [track] = [f for f in tracks["features"] if f["id"] == UID]
        assert track["geometry"] is None and track["properties"]["no_fix"] is True
        [client] = [c for c in (await http.get("/api/clients")).json() if c["uid"] == UID]
        assert client["position"] is None and client["no_fix"] is True
        # An area around 0,0 does not contain it, live or in history.
        around = {"bbox": "-1,-1,1,1"}
        assert [t for t in (await http.get("/api/tracks", params=around)).json() if t["uid"] == UID] == []

        def stored() -> bool:
            page = httpx.get(f"http://127.0.0.1:{http_port}/api/history", params={"uid": UID}, timeout=10).json()
            return bool(page["events"])

        await wait_until(stored, "the report stored")
        page = (await http.get("/api/history", params={"uid": UID, **around})).json()
        assert page["events"] == []

    # Exported history keeps the report, without a location.
    out = tmp_path / "history.geojson"
    run_cli(server.data_dir, "history", "export", "--format", "geojson", "--uid", UID, "--out", str(out))
    [exported] = json.loads(out.read_text())["features"]
    assert exported["geometry"] is None and exported["properties"]["no_fix"] is True

    # The fix comes back: the unit is placed again.
    await device.send(sa(UID, "JENNY", lat=39.1, lon=-120.0))
    await feed.wait_for(lambda c: c.features[UID]["geometry"] is not None)
    assert feed.features[UID]["geometry"]["coordinates"][:2] == [-120.0, 39.1]
    assert feed.features[UID]["properties"]["no_fix"] is False

