"""Core Marti endpoints against the real server over HTTPS with client certificates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rallypoint import __version__
from tests.support.certs import client_context
from tests.support.cot_client import CotClient, cot, sa
from tests.support.groups import serve_with_groups
from tests.support.server import ServerProcess


@pytest.fixture
def group_server(data_dir: Path) -> Iterator[ServerProcess]:
    groups = {"red1": ["Red"], "blue1": ["Blue"], "blue2": ["Blue"], "both": ["Red", "Blue"]}
    with serve_with_groups(data_dir, groups) as proc:
        yield proc


def test_version_and_config(group_server: ServerProcess, tmp_path: Path) -> None:
    api = f"https://127.0.0.1:{group_server.ports['api']}"
    with httpx.Client(verify=client_context(group_server, "red1", tmp_path), timeout=10) as http:
        r = http.get(f"{api}/Marti/api/version")
        assert r.status_code == 200 and r.text == f"Rallypoint {__version__}"
        doc = http.get(f"{api}/Marti/api/version/config").json()
        assert doc["version"] == "3" and doc["type"] == "ServerConfig"
        assert doc["data"] == {"version": __version__, "api": "3", "hostname": "127.0.0.1"}
        assert doc["nodeId"]


async def test_endpoints_groups_and_activation(group_server: ServerProcess, tmp_path: Path,
                                               clients: list[object]) -> None:
    srv = group_server
    api = f"https://127.0.0.1:{srv.ports['api']}"
    ctx = {name: client_context(srv, name, tmp_path) for name in ("red1", "blue1", "blue2", "both")}
    red1 = await CotClient.connect(srv.ports["tls"], ssl_context=ctx["red1"])
    blue1 = await CotClient.connect(srv.ports["tls"], ssl_context=ctx["blue1"])
    blue2 = await CotClient.connect(srv.ports["tls"], ssl_context=ctx["blue2"])
    both = await CotClient.connect(srv.ports["tls"], ssl_context=ctx["both"])
    clients.extend([red1, blue1, blue2, both])
    await red1.send(sa("uid-red1", "RED1"))
    await blue1.send(sa("uid-blue1", "BLUE1"))
    await both.send(sa("uid-both", "BOTH"))
    await both.wait_uid("uid-red1")
    await both.wait_uid("uid-blue1")
    await red1.wait_uid("uid-both")

    async with httpx.AsyncClient(verify=ctx["red1"], timeout=10) as red_http:
        doc = (await red_http.get(f"{api}/Marti/api/clientEndPoints", params={"secAgo": "300"})).json()
        assert doc["type"] == "com.bbn.marti.remote.ClientEndpoint"
        seen = {e["uid"]: e for e in doc["data"]}
        assert set(seen) == {"uid-red1", "uid-both"}  # never the Blue-only client
        assert seen["uid-red1"]["callsign"] == "RED1" and seen["uid-red1"]["username"] == "red1"
        assert seen["uid-red1"]["lastStatus"] == "Connected"

        # cot/xml/{uid}: readable in the caller's groups only.
        await red1.send(cot("red-marker", "b-m-p-s-m", detail='<contact callsign="RM"/>'))
        await both.wait_uid("red-marker")
        r = await red_http.get(f"{api}/Marti/api/cot/xml/red-marker")
        assert r.status_code == 200 and b'uid="red-marker"' in r.content
    async with httpx.AsyncClient(verify=ctx["blue1"], timeout=10) as blue_http:
        assert (await blue_http.get(f"{api}/Marti/api/cot/xml/red-marker")).status_code == 404
        assert (await blue_http.get(f"{api}/Marti/api/cot/xml/uid-red1")).status_code == 404
        assert (await blue_http.get(f"{api}/Marti/api/cot/xml/uid-blue1")).status_code == 200

    async with httpx.AsyncClient(verify=ctx["both"], timeout=10) as http:
        groups = (await http.get(f"{api}/Marti/api/groups/all", params={"useCache": "true"})).json()["data"]
        assert {(g["name"], g["direction"], g["active"]) for g in groups} == {
            ("Red", "IN", True), ("Red", "OUT", True), ("Blue", "IN", True), ("Blue", "OUT", True)}
        # Switch Blue off for this client's stream.
        r = await http.put(f"{api}/Marti/api/groups/active", params={"clientUid": "uid-both"},
                     json=[{"name": "Blue", "direction": "OUT", "active": False},
                           {"name": "Red", "direction": "OUT", "active": True}])
        assert r.status_code == 200
        groups = (await http.get(f"{api}/Marti/api/groups/all")).json()["data"]
        assert {(g["name"], g["direction"]): g["active"] for g in groups}[("Blue", "OUT")] is False
    # Someone else's session cannot be changed.
    async with httpx.AsyncClient(verify=ctx["red1"], timeout=10) as red_http:
        r = await red_http.put(f"{api}/Marti/api/groups/active", params={"clientUid": "uid-both"},
                         json=[{"name": "Red", "direction": "OUT", "active": False}])
        assert r.status_code == 404

    await blue1.send(cot("blue-after", "a-h-G"))
    # blue2 got it, so it was routed; anything for `both` was written before red's next event.
    await blue2.wait_uid("blue-after")
    await red1.send(cot("red-after", "a-h-G"))
    await both.wait_uid("red-after")
    assert not both.has(lambda e: e.uid == "blue-after")

    async with httpx.AsyncClient(verify=ctx["both"], timeout=10) as http:
        r = await http.put(f"{api}/Marti/api/groups/active", params={"clientUid": "uid-both"},
                     json=[{"name": "Blue", "direction": "OUT", "active": True}])
        assert r.status_code == 200
    await blue1.send(cot("blue-again", "a-h-G"))
    await both.wait_uid("blue-again")
