"""A mesh configured for one group, against a real server with client certificates in two groups.

What the mesh says (a plugin PLI, a whole event in a ``TAKPacket`` detail, a ``TAKPacketV2`` raw
detail) enters only the mesh's group: its users read it over the Marti API, another group's users
get 404. Server to mesh: only traffic of the mesh's send groups crosses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from meshtastic.protobuf import atak_pb2, portnums_pb2

from rallypoint.connectors.meshtastic.dictionaries import bundled
from rallypoint.connectors.meshtastic.tak import Kind, TakCodec, TakMessage
from tests.support.certs import client_context
from tests.support.cot_client import CotClient, chat, sa
from tests.support.groups import client_groups_lines
from tests.support.meshtastic import SimulatedNode, packet
from tests.support.poll import wait_until
from tests.support.server import ServerProcess

TAK = TakCodec(bundled())
SENDER = 0x11223344


@pytest.fixture
async def node() -> AsyncIterator[SimulatedNode]:
    sim = SimulatedNode(users={SENDER: ("Ridge Relay", "RR")})
    await sim.start()
    yield sim
    await sim.stop()


def _http(srv: ServerProcess, name: str, tmp_path: Path) -> httpx.Client:
    return httpx.Client(base_url=f"https://127.0.0.1:{srv.ports['api']}",
                        verify=client_context(srv, name, tmp_path), timeout=10)


def _on_mesh(node: SimulatedNode) -> list[TakMessage]:
    return [TAK.decode_v1(p.decoded.payload) for p in node.sent if p.decoded.portnum == portnums_pb2.ATAK_PLUGIN]


async def test_mesh_traffic_enters_only_its_groups_and_only_their_traffic_crosses(
    data_dir: Path, tmp_path: Path, node: SimulatedNode, clients: list[object],
) -> None:
    config = data_dir.parent / "mesh-groups.toml"
    config.write_text("\n".join([
        *client_groups_lines({"field1": ["Field"], "other1": ["Other"]}),
        "[[rallypoint.meshtastic]]", f'url = "meshtastic+tcp://127.0.0.1:{node.port}"', 'name = "valley"',
        'groups = ["Field"]', "bytes_per_s = 400.0",
    ]) + "\n")
    with ServerProcess(data_dir, "--config", str(config)) as srv:
        srv.wait_for_log("meshtastic connected", mesh="valley")
        await wait_until(lambda: node.configured >= 1 and node.writers, "the gateway's session with the node")
        pli = TakMessage(kind=Kind.PLI, uid="ANDROID-ridge", callsign="RIDGE", team="Green", role="RTO",
                         lat=46.5, lon=7.9)
        now = datetime.now(UTC)
        t, stale = (f"{d:%Y-%m-%dT%H:%M:%SZ}" for d in (now, now + timedelta(minutes=30)))
        whole = (f'<event uid="trip-3" type="a-u-G" how="h-e" time="{t}" start="{t}" stale="{stale}">'
                 '<point lat="46.51" lon="7.91" hae="0"/><detail><contact callsign="Trip 3"/></detail>'
                 "</event>").encode()
        raw = atak_pb2.TAKPacketV2(uid="sensor-12", callsign="Gate sensor", cot_type_str="a-u-G-E-S",
                                   latitude_i=465_200_000, longitude_i=79_200_000, stale_seconds=600)
        raw.raw_detail = b'<sensor fov="60" range="200" azimuth="90"/>'
        payloads = (
            (portnums_pb2.ATAK_PLUGIN, TAK.encode_v1(pli, compress=True)),
            (portnums_pb2.ATAK_PLUGIN, TAK.encode_v1(TakMessage(kind=Kind.DETAIL, uid="", callsign="", detail=whole))),
            (portnums_pb2.ATAK_PLUGIN_V2, TAK.pack_v2(raw)),
        )
        for port, payload in payloads:
            assert len(payload) <= 237  # one LoRa packet, or the gateway drops it as oversize
            await node.inject(packet(SENDER, port, payload, node.next_id()))

        with _http(srv, "field1", tmp_path) as field, _http(srv, "other1", tmp_path) as other:
            def read(client: httpx.Client, uid: str) -> httpx.Response:
                return client.get(f"/Marti/api/cot/xml/{uid}")

            seen = {}
            for uid in ("ANDROID-ridge", "trip-3", "sensor-12"):
                answer = await wait_until(lambda uid=uid: (r := read(field, uid)).status_code == 200 and r,  # type: ignore[misc]
                                          f"{uid} in the Field picture")
                seen[uid] = answer.text
            assert 'callsign="RIDGE"' in seen["ANDROID-ridge"] and 'role="RTO"' in seen["ANDROID-ridge"]
            assert 'type="a-u-G"' in seen["trip-3"] and 'callsign="Trip 3"' in seen["trip-3"]
            assert '<sensor fov="60" range="200" azimuth="90"/>' in seen["sensor-12"]
            assert 'callsign="Gate sensor"' in seen["sensor-12"]
            # Another group cannot read any of it (and cannot tell it exists).
            for uid in seen:
                assert read(other, uid).status_code == 404

            # Server to mesh: an Other user's SA and chat stay off the mesh; a Field user's cross.
            outsider = await CotClient.connect(srv.ports["tls"], ssl_context=client_context(srv, "other1", tmp_path))
            insider = await CotClient.connect(srv.ports["tls"], ssl_context=client_context(srv, "field1", tmp_path))
            clients.extend([outsider, insider])
            await outsider.send(chat("ANDROID-out", "OUTSIDER", to_uid=None, to_cs=None, text="not for the mesh")
                                + sa("ANDROID-out", "OUTSIDER"))
            # Its SA is in the picture, so the chat sent before it went through ingest (and its hooks).
            await wait_until(lambda: read(other, "ANDROID-out").status_code == 200, "the outsider's SA routed")
            await insider.send(chat("ANDROID-in", "INSIDER", to_uid=None, to_cs=None, text="for the valley")
                               + sa("ANDROID-in", "INSIDER"))
            await wait_until(lambda: any(m.kind is Kind.CHAT and m.message == "for the valley" for m in _on_mesh(node))
                             and any(m.kind is Kind.PLI and m.uid == "ANDROID-in" for m in _on_mesh(node)),
                             "the Field user's chat and position on the mesh", timeout=30)
            # Queued earlier in the same lanes, the outsider's would have gone first: it never crossed.
            assert not [m for m in _on_mesh(node) if "OUTSIDER" in m.callsign or m.uid == "ANDROID-out"]
            # Nothing the mesh said went back into it.
            assert not [m for m in _on_mesh(node) if m.uid in seen or m.callsign in ("RIDGE", "Trip 3")]
