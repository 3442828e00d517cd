"""Operation plans against the real server: a PyTAK subscriber gets the drawings, versions, diff, revert, export.

Anonymous callers on the loopback HTTP port act as ``rallypoint-api-anonymous``, which creates and
so owns the mission; the PyTAK client (plain TCP) is subscribed by its uid.
"""

from __future__ import annotations

import asyncio
import configparser
import io
import json
import warnings
import zipfile
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from lxml import etree

from tests.support.cot_client import CotClient, sa
from tests.support.server import ServerProcess

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pytak

PLAN = "/api/missions/Op/plan"
SQUARE = [{"lat": 39.0, "lon": -120.0}, {"lat": 39.0, "lon": -119.98}, {"lat": 39.02, "lon": -119.98},
          {"lat": 39.02, "lon": -120.0}]
FIRST = {
    "objectives": [{"id": "obj-1", "name": "Find the hikers", "point": {"lat": 39.01, "lon": -119.99}}],
    "areas": [{"id": "sector-a", "name": "Sector A", "vertices": SQUARE, "color": "#ff8800"}],
    "routes": [{"id": "ingress", "name": "Ingress", "waypoints": [
        {"lat": 39.0, "lon": -120.01, "name": "Trailhead"}, {"lat": 39.005, "lon": -120.005},
        {"lat": 39.01, "lon": -120.0, "name": "Ridge"}]}],
    "phases": [{"id": "p1", "name": "Move in", "start_ms": 1_700_000_000_000, "end_ms": 1_700_003_600_000},
               {"id": "p2", "name": "Search", "start_ms": 1_700_003_600_000, "end_ms": 1_700_010_000_000,
                "depends_on": ["p1"]}],
    "assignments": [{"id": "as-1", "team": "SAR-ALPHA", "phase": "p2", "items": ["sector-a"]}],
    "resources": [{"id": "water", "name": "Water", "quantity": 40, "unit": "l"}],
}


class PytakReader:
    """Events read by a PyTAK client, parsed as they arrive."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._buffer = b""
        self.events: list[etree._Element] = []

    async def wait_for(self, predicate: Callable[[etree._Element], bool], timeout: float = 10.0) -> etree._Element:
        """The first event (already read or arriving before the deadline) matching ``predicate``."""
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                chunk = await self._reader.read(65536)
                assert chunk, "the server closed the PyTAK connection"
                self._buffer += chunk
                while b"</event>" in self._buffer:
                    one, self._buffer = self._buffer.split(b"</event>", 1)
                    start = one.find(b"<event")
                    self.events.append(etree.fromstring(one[start:] + b"</event>"))


def _config(url: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser()
    parser["test"] = {"COT_URL": url}
    return parser["test"]


@pytest.fixture
async def subscriber(server: ServerProcess, clients: list[object]) -> AsyncIterator[PytakReader]:
    """A PyTAK client on plain TCP, known to the server by its SA and subscribed to mission Op."""
    reader, writer = await pytak.protocol_factory(_config(f"tcp://127.0.0.1:{server.ports['cot']}"))
    watcher = await CotClient.connect(server.ports["cot"])
    clients.append(watcher)
    writer.write(sa("pytak-sub", "PYTAK"))
    await writer.drain()
    await watcher.wait_uid("pytak-sub")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.ports['http']}", timeout=10) as http:
        assert (await http.post("/api/missions", json={"name": "Op"})).status_code == 201
        sub = await http.put("/api/missions/Op/subscription", json={"uid": "pytak-sub"})
        assert sub.status_code == 200, sub.text
    try:
        yield PytakReader(reader)
    finally:
        writer.close()


def _detail(event: etree._Element) -> etree._Element:
    detail = event.find("detail")
    assert detail is not None
    return detail


async def test_plan_versions_reach_the_subscriber_as_cot_and_revert(
        server: ServerProcess, subscriber: PytakReader) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.ports['http']}", timeout=10) as http:
        empty = await http.get(PLAN)
        assert empty.status_code == 200 and empty.json()["version"] == 0

        first = await http.put(PLAN, json={"plan": FIRST, "reason": "first draft"})
        assert first.status_code == 200, first.text
        assert first.json()["version"] == 1 and first.json()["author"] == "rallypoint-api-anonymous"

        area = await subscriber.wait_for(lambda e: e.get("type") == "u-d-f")
        assert area.get("uid", "").endswith(".sector-a")
        points = [link.get("point") for link in _detail(area).findall("link")]
        assert points[0] == points[-1] == "39.0,-120.0" and len(points) == 5
        assert _detail(area).find("marti") is None
        route = await subscriber.wait_for(lambda e: e.get("type") == "b-m-r")
        assert [link.get("callsign") for link in _detail(route).findall("link")] == ["Trailhead", "CP2", "Ridge"]
        assert {link.get("type") for link in _detail(route).findall("link")} == {"b-m-p-w"}
        marker = await subscriber.wait_for(lambda e: e.get("type") == "b-m-p-s-m")
        assert marker.get("uid", "").endswith(".obj-1")

        # A change with a reason: the area moves, the route goes away.
        moved = [{"lat": p["lat"] + 0.1, "lon": p["lon"]} for p in SQUARE]
        second = await http.patch(PLAN, json={
            "reason": "sector A moved north", "remove": ["ingress"],
            "upsert": {"areas": [{"id": "sector-a", "name": "Sector A", "vertices": moved, "color": "#ff8800"}]}})
        assert second.status_code == 200, second.text and second.json()["version"] == 2
        gone = await subscriber.wait_for(lambda e: e.get("type") == "t-x-d-d")
        assert _detail(gone).find("link").get("uid") == route.get("uid")  # type: ignore[union-attr]
        assert _detail(gone).find("__forcedelete") is not None
        await subscriber.wait_for(lambda e: e.get("type") == "u-d-f"
                                  and _detail(e).find("link").get("point") == "39.1,-120.0")  # type: ignore[union-attr]

        zero = (await http.get(PLAN, params={"version": 0})).json()
        assert zero["version"] == 0 and zero["plan"]["areas"] == []
        versions = (await http.get(PLAN + "/versions")).json()
        assert [(v["version"], v["reason"]) for v in versions] == [(1, "first draft"), (2, "sector A moved north")]
        diff = (await http.get(PLAN + "/diff", params={"from": 1, "to": 2})).json()
        assert [(r["kind"], r["id"]) for r in diff["removed"]] == [("routes", "ingress")]
        assert [(c["id"], c["fields"]) for c in diff["changed"]] == [("sector-a", ["vertices"])]
        assert diff["added"] == []

        reverted = await http.post(PLAN + "/revert", json={"version": 1, "reason": "back to the first draft"})
        assert reverted.status_code == 200, reverted.text
        assert reverted.json()["version"] == 3 and reverted.json()["reverted_from"] == 1
        assert reverted.json()["plan"] == (await http.get(PLAN, params={"version": 1})).json()["plan"]
        assert (await http.get(PLAN + "/diff", params={"from": 1, "to": 3})).json()["changed"] == []
        # The route is drawn again.
        await subscriber.wait_for(lambda e: e.get("type") == "b-m-r" and e is not route)

        stale = await http.put(PLAN, json={"plan": FIRST, "reason": "late", "base_version": 2})
        assert stale.status_code == 409 and "version 3" in stale.json()["detail"]


async def test_exported_data_package_parses_back_and_imports(server: ServerProcess, subscriber: PytakReader) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.ports['http']}", timeout=10) as http:
        assert (await http.put(PLAN, json={"plan": FIRST, "reason": "draft"})).status_code == 200
        exported = await http.get(PLAN + "/export", params={"format": "datapackage"})
        assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(exported.content)) as zf:
            manifest = etree.fromstring(zf.read("MANIFEST/manifest.xml"))
            cots = [etree.fromstring(zf.read(n)) for n in zf.namelist() if n.endswith(".cot")]
        assert manifest.get("version") == "2"
        by_type = {e.get("type"): e for e in cots}
        assert set(by_type) == {"u-d-f", "b-m-r", "b-m-p-s-m"}
        ring = [link.get("point") for link in _detail(by_type["u-d-f"]).findall("link")]
        assert ring == [f"{p['lat']!r},{p['lon']!r}" for p in [*SQUARE, SQUARE[0]]]
        waypoints = [link.get("point") for link in _detail(by_type["b-m-r"]).findall("link")]
        assert waypoints == [f"{w['lat']!r},{w['lon']!r}" for w in FIRST["routes"][0]["waypoints"]]  # type: ignore[index]
        marker = by_type["b-m-p-s-m"].find("point")
        assert (marker.get("lat"), marker.get("lon")) == ("39.01", "-119.99")  # type: ignore[union-attr]

        # The package imports back as the same plan (replacing an emptied plan).
        assert (await http.put(PLAN, json={"plan": {}, "reason": "cleared"})).status_code == 200
        back = await http.post(PLAN + "/import", params={"format": "datapackage", "mode": "replace",
                                                         "reason": "restored from the package"},
                               content=exported.content, headers={"content-type": "application/zip"})
        assert back.status_code == 200, back.text
        assert back.json()["plan"] == (await http.get(PLAN, params={"version": 1})).json()["plan"]

        for fmt in ("geojson", "kml"):
            got = await http.get(PLAN + "/export", params={"format": fmt})
            assert got.status_code == 200
            again = await http.post(PLAN + "/import", params={"format": fmt}, content=got.content)
            assert again.status_code == 200, again.text
        assert json.loads((await http.get(PLAN + "/export", params={"format": "geojson"})).content)["features"]


async def test_absurd_plans_are_refused_with_a_clear_400(server: ServerProcess, subscriber: PytakReader) -> None:
    long_route = {"id": "long", "name": "Long", "waypoints": [{"lat": 0.0, "lon": i * 1e-5} for i in range(100_000)]}
    bow_tie = [{"lat": 0, "lon": 0}, {"lat": 1, "lon": 1}, {"lat": 1, "lon": 0}, {"lat": 0, "lon": 1}]
    airdrop = {"drop_zone": {"pi": [39.0, -120.0], "length_m": 800, "width_m": 400},
               "aircraft": {"altitude_agl_m": 300, "ground_speed_kt": 130},
               "load": {"rod_sl_mps": 7, "weight_kg": 500}}
    cases: list[tuple[object, str]] = [
        ({"routes": [long_route]}, "100000 waypoints, at most 2000"),
        ({"areas": [{"id": "a", "name": "A", "vertices": bow_tie}]}, "crosses itself"),
        ({"airdrops": [{"id": "d", "name": "D", "request": {
            **airdrop, "drop_zone": {**airdrop["drop_zone"], "elevation_m": -1e6}}}]}, "elevation_m"),
        ({"airdrops": [{"id": "d", "name": "D", "request": {
            **airdrop, "dispersion": {"samples": 10**9}}}]}, "samples"),
        ({"phases": [{"id": "a", "name": "A", "start_ms": 0, "end_ms": 1, "depends_on": ["b"]},
                     {"id": "b", "name": "B", "start_ms": 0, "end_ms": 1, "depends_on": ["a"]}]}, "cycle"),
    ]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.ports['http']}", timeout=30) as http:
        for plan, words in cases:
            resp = await http.put(PLAN, json={"plan": plan, "reason": "bad"})
            assert resp.status_code == 400, (words, resp.text[:300])
            assert resp.json()["error"] == "invalid_plan" and words in resp.json()["detail"], resp.text[:300]
        nan = await http.put(PLAN, content=b'{"reason": "x", "plan": {"objectives": [{"id": "o", "name": "O", '
                                           b'"point": {"lat": NaN, "lon": 0}}]}}',
                             headers={"content-type": "application/json"})
        assert nan.status_code == 400
        nested = b'{"reason": "x", "plan": {}, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        deep = await http.put(PLAN, content=nested, headers={"content-type": "application/json"})
        assert deep.status_code == 400 and "nested too deeply" in deep.json()["detail"]
        huge = await http.post(PLAN + "/revert", json={"version": 10**12, "reason": "x"})
        assert huge.status_code == 400 and "version" in huge.json()["detail"]
        negative = await http.put(PLAN, json={"plan": FIRST, "reason": "x", "base_version": -1})
        assert negative.status_code == 400 and "base_version" in negative.json()["detail"]
        no_reason = await http.put(PLAN, json={"plan": FIRST, "reason": " "})
        assert no_reason.status_code == 400 and "reason" in no_reason.json()["detail"]
        bad_kml = await http.post(PLAN + "/import", params={"format": "kml"},
                                  content=b'<!DOCTYPE kml [<!ENTITY x "y">]><kml/>')
        assert bad_kml.status_code == 400
        assert (await http.get(PLAN)).json()["version"] == 0
        metrics = (await http.get("/metrics")).text
        assert "rallypoint_plan_requests_refused" in metrics


async def test_an_airdrop_attached_to_the_plan_is_computed_and_drawn(
        server: ServerProcess, subscriber: PytakReader) -> None:
    drop = {"id": "drop-1", "name": "Supply drop", "request": {
        "drop_zone": {"pi": [39.01, -119.99], "length_m": 800, "width_m": 400, "axis_deg": 270},
        "aircraft": {"altitude_agl_m": 300, "ground_speed_kt": 130},
        "load": {"rod_sl_mps": 7, "weight_kg": 500},
        "winds": [{"bottom_m": 0, "top_m": 1000, "from_deg": 270, "speed_kt": 10}]},
        # A result sent by a client is not trusted: the server computes its own.
        "result": None}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.ports['http']}", timeout=30) as http:
        made = await http.patch(PLAN, json={"reason": "supply drop", "upsert": {"airdrops": [drop]}})
        assert made.status_code == 200, made.text
        result = made.json()["plan"]["airdrops"][0]["result"]
        assert result["carp"]["lat"] != 39.01 and result["advisory"]
        carp = await subscriber.wait_for(lambda e: e.get("uid", "").endswith(".drop-1.carp"))
        assert carp.get("type") == "b-m-p-s-m"
        assert float(carp.find("point").get("lat")) == pytest.approx(result["carp"]["lat"])  # type: ignore[union-attr]
        dz = await subscriber.wait_for(lambda e: e.get("uid", "").endswith(".drop-1.dz"))
        assert dz.get("type") == "u-d-f" and len(_detail(dz).findall("link")) == 5
        removed = await http.patch(PLAN, json={"reason": "drop cancelled", "remove": ["drop-1"]})
        assert removed.status_code == 200
        await subscriber.wait_for(lambda e: e.get("type") == "t-x-d-d"
                                  and _detail(e).find("link").get("uid") == dz.get("uid"))  # type: ignore[union-attr]


async def test_an_offline_subscriber_gets_the_changes_on_reconnect(
        server: ServerProcess, clients: list[object]) -> None:
    watcher = await CotClient.connect(server.ports["cot"])
    clients.append(watcher)
    device = await CotClient.connect(server.ports["cot"])
    await device.send(sa("ANDROID-away", "AWAY"))
    await watcher.wait_uid("ANDROID-away")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.ports['http']}", timeout=10) as http:
        assert (await http.post("/api/missions", json={"name": "Op"})).status_code == 201
        assert (await http.put("/api/missions/Op/subscription", json={"uid": "ANDROID-away"})).status_code == 200
        await device.close()
        # The departure notice proves the server saw the disconnect.
        await watcher.wait_for(lambda e: e.type == "t-x-d-d" and e.detail.link_uid == "ANDROID-away")
        assert (await http.put(PLAN, json={"plan": FIRST, "reason": "while away"})).status_code == 200
    back = await CotClient.connect(server.ports["cot"])
    clients.append(back)
    await back.send(sa("ANDROID-away", "AWAY"))
    area = await back.wait_for(lambda e: e.type == "u-d-f", timeout=10)
    assert area.uid.endswith(".sector-a")
    await back.wait_for(lambda e: e.type == "b-m-r", timeout=10)


async def test_the_plan_is_attached_to_the_mission_as_a_data_package(
        server: ServerProcess, subscriber: PytakReader) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.ports['http']}", timeout=10) as http:
        assert (await http.put(PLAN, json={"plan": FIRST, "reason": "draft"})).status_code == 200
        done = await http.post(PLAN + "/publish", params={"package": "true"})
        assert done.status_code == 200, done.text
        digest = done.json()["package"]
        assert done.json()["sent"] == 3 and len(digest) == 64
        change = await subscriber.wait_for(lambda e: e.get("type") == "t-x-m-c")
        assert digest in etree.tostring(change).decode()
        mission = (await http.get("/Marti/api/missions/Op")).json()["data"][0]
        assert [c["data"]["hash"] for c in mission["contents"]] == [digest]
        content = await http.get("/Marti/sync/content", params={"hash": digest})
        assert content.status_code == 200
        with zipfile.ZipFile(io.BytesIO(content.content)) as zf:
            assert {"MANIFEST/manifest.xml", "plan.json"} <= set(zf.namelist())
