"""Identity binding over real sockets: device SA binds, markers and gateway units flow, impersonation is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rallypoint.model.cot import CotEvent
from tests.support.certs import client_context
from tests.support.cot_client import CotClient, chat, cot, sa
from tests.support.metrics import metric_value
from tests.support.poll import wait_until
from tests.support.samples import current_sample
from tests.support.server import ServerProcess

GATEWAY = "adsb-gw"
CLIENT_UIDS = {GATEWAY: ["*"], "carol": ["ANDROID-carol"]}
ATAK_MARKERS = {  # uid -> sample: what ATAK and iTAK send when a user drops a marker
    "a0c524c6-0422-4382-9981-e39d1dc71730": "20_atak_export_Marker_2525.xml",
    "9405e320-9356-41c4-8449-f46990aa17f8": "20_atak_export_Marker_Spot.xml",
    "EB77220E-6299-4CA3-95FC-0200BD9FE78A": "03_marker_itak_empty_marti_taky_fixture.xml",
}


@pytest.fixture
def server(data_dir: Path) -> Iterator[ServerProcess]:
    """A server where ``adsb-gw`` is a gateway and ``carol`` may only speak as ``ANDROID-carol``."""
    proc = ServerProcess(data_dir, env={"RALLYPOINT_CLIENT_UIDS": json.dumps(CLIENT_UIDS)})
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def rejected(server: ServerProcess, reason: str) -> float:
    return metric_value(server, "rallypoint_events_rejected_total", reason=reason)


async def refusal_logged(server: ServerProcess, reason: str, text: str) -> dict[str, Any]:
    """The server's log line for a refusal of ``reason`` whose detail says ``text``."""
    def find() -> dict[str, Any] | None:
        return next((line for line in list(server.lines) if line.get("msg") == "input rejected"
                     and line.get("reason") == reason and text in str(line.get("detail", ""))), None)
    found = await wait_until(find, f"a logged {reason} refusal saying {text!r}")
    assert found is not None
    return found


def unit(uid: str, callsign: str, *, lat: float = 39.1) -> bytes:
    """A relayed device as mesh and feed gateways send it: its own callsign, endpoint and takv."""
    detail = (f'<contact callsign="{callsign}" endpoint="*:-1:stcp"/>'
              '<takv platform="Meshtastic" version="2.3" device="T-Beam" os="ESP32"/>')
    return cot(uid, "a-f-G-U-C", detail=detail, lat=lat)


def deleted(uid: str) -> Any:
    return lambda e: e.type == "t-x-d-d" and e.detail.link_uid == uid


async def connections(server: ServerProcess, transport: str, count: int) -> None:
    await wait_until(lambda: metric_value(server, "rallypoint_connections", transport=transport) == count,
                     f"{count} open {transport} connections")


async def test_pytak_gateway_over_plain_tcp_delivers_fifty_units(
    server: ServerProcess, clients: list[object]
) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pytak

    receiver = await CotClient.connect(server.ports["cot"])
    clients.append(receiver)
    gateway = await CotClient.connect(server.ports["cot"])
    clients.append(gateway)
    uids = [f"ICAO-{i:06X}" for i in range(50)]
    for i, uid in enumerate(uids):
        await gateway.send(pytak.gen_cot(lat=39.0 + i / 100, lon=-120.0, uid=uid, cot_type="a-n-A-C-F",
                                         callsign=f"N{i}", stale=600))
    for uid in uids:
        await receiver.wait_uid(uid)
    assert rejected(server, "spoofed_uid") == 0
    # The units are not the gateway itself: they stay in the picture when it leaves.
    await gateway.close()
    await connections(server, "tcp", 1)
    late = await CotClient.connect(server.ports["cot"])
    clients.append(late)
    for uid in uids:
        await late.wait_uid(uid)
    assert not receiver.has(lambda e: e.type == "t-x-d-d")


async def test_atak_client_markers_are_delivered_and_survive_its_disconnect(
    server: ServerProcess, clients: list[object]
) -> None:
    receiver = await CotClient.connect(server.ports["cot"])
    clients.append(receiver)
    atak = await CotClient.connect(server.ports["cot"])
    clients.append(atak)
    # A unit dropped before the first own report (a callsign, no link, no takv, no endpoint) is not the client.
    await atak.send(cot("dropped-first", "a-h-G", detail='<contact callsign="HOSTILE-1"/>'))
    await atak.send(current_sample("01_sa_pli_atak_civ_taky_fixture.xml"))
    for name in ATAK_MARKERS.values():
        await atak.send(current_sample(name))
    for uid in ("dropped-first", "ANDROID-deadbeef", *ATAK_MARKERS):
        await receiver.wait_uid(uid)

    await atak.close()
    await receiver.wait_for(deleted("ANDROID-deadbeef"))
    late = await CotClient.connect(server.ports["cot"])
    clients.append(late)
    for uid in ("dropped-first", *ATAK_MARKERS):
        await late.wait_uid(uid)
    assert not late.has(lambda e: e.uid == "ANDROID-deadbeef")
    assert not receiver.has(lambda e: e.type == "t-x-d-d" and e.detail.link_uid != "ANDROID-deadbeef")


async def test_impersonation_and_second_devices_are_refused_with_their_own_reasons(
    server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    alice = await CotClient.connect(server.ports["tls"], ssl_context=client_context(server, "alice", tmp_path))
    mallory = await CotClient.connect(server.ports["tls"], ssl_context=client_context(server, "mallory", tmp_path))
    bob = await CotClient.connect(server.ports["tls"], ssl_context=client_context(server, "bob", tmp_path))
    clients.extend([alice, mallory, bob])
    await alice.send(sa("ANDROID-alice", "ALICE"))
    await bob.wait_uid("ANDROID-alice")
    await mallory.send(sa("ANDROID-mallory", "MALLORY"))
    await bob.wait_uid("ANDROID-mallory")

    # Alice's uid is held by her principal: neither her SA nor anything else under it from Mallory.
    await mallory.send(sa("ANDROID-alice", "ALICE", lat=1.0))
    await mallory.send(cot("ANDROID-alice", "b-m-p-s-m"))
    # A second device identity on Mallory's connection (she is no gateway).
    await mallory.send(sa("ANDROID-other", "OTHER"))
    # Markers and units nobody holds are fine, before and after.
    await mallory.send(cot("mallory-marker", "b-m-p-s-m", detail='<contact callsign="M1"/>'))
    await bob.barrier(mallory)
    assert bob.has(lambda e: e.uid == "mallory-marker")
    assert not bob.has(lambda e: e.uid == "ANDROID-alice" and (e.point.lat == 1.0 or e.type == "b-m-p-s-m"))
    assert not bob.has(lambda e: e.uid == "ANDROID-other")
    assert rejected(server, "spoofed_uid") == 2
    assert rejected(server, "second_device_uid") == 1
    held = await refusal_logged(server, "spoofed_uid", "held by another principal")
    assert "bound to another client" not in held["detail"]
    await refusal_logged(server, "second_device_uid", "second device identity")

    # Carol's certificate may only speak as the uid configured for it.
    carol = await CotClient.connect(server.ports["tls"], ssl_context=client_context(server, "carol", tmp_path))
    clients.append(carol)
    await carol.send(sa("ANDROID-not-carol", "CAROL"))
    await carol.send(sa("ANDROID-carol", "CAROL"))
    await bob.wait_uid("ANDROID-carol")
    assert not bob.has(lambda e: e.uid == "ANDROID-not-carol")
    assert rejected(server, "unbound_uid") == 1

    # Alice reconnects with her own certificate and keeps her uid.
    await alice.close()
    alice2 = await CotClient.connect(server.ports["tls"], ssl_context=client_context(server, "alice", tmp_path / "2"))
    clients.append(alice2)
    await alice2.send(sa("ANDROID-alice", "ALICE", lat=2.0))
    await bob.wait_for(lambda e: e.uid == "ANDROID-alice" and e.point.lat == 2.0)


async def test_gateway_certificate_relays_fifty_devices_it_does_not_hold(
    server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    gateway = await CotClient.connect(server.ports["tls"], ssl_context=client_context(server, GATEWAY, tmp_path))
    receiver = await CotClient.connect(server.ports["tls"], ssl_context=client_context(server, "rx", tmp_path))
    clients.extend([gateway, receiver])
    await receiver.send(sa("ANDROID-rx", "RX"))
    uids = [f"MESH-{i:02d}" for i in range(50)]
    for i, uid in enumerate(uids):
        await gateway.send(unit(uid, f"NODE{i:02d}"))
    for uid in uids:
        await receiver.wait_uid(uid)
    assert rejected(server, "second_device_uid") == 0 and rejected(server, "spoofed_uid") == 0

    # Chat to a relayed device reaches the gateway that speaks for it.
    await receiver.send(chat("ANDROID-rx", "RX", to_uid="MESH-07", to_cs="NODE07", text="hello mesh"))
    msg: CotEvent = await gateway.wait_for(lambda e: e.type == "b-t-f")
    assert msg.detail.chat is not None and msg.detail.chat.chat_id == "MESH-07"

    # The gateway holds none of them: the real device connects with its own certificate and binds
    # its uid, after which the gateway may no longer report under it.
    node = await CotClient.connect(server.ports["tls"], ssl_context=client_context(server, "node7", tmp_path))
    clients.append(node)
    await node.send(unit("MESH-07", "NODE07", lat=45.0))
    await receiver.wait_for(lambda e: e.uid == "MESH-07" and e.point.lat == 45.0)
    await gateway.send(unit("MESH-07", "NODE07", lat=46.0))
    await gateway.send(unit("MESH-08", "NODE08", lat=46.0))
    await receiver.wait_for(lambda e: e.uid == "MESH-08" and e.point.lat == 46.0)
    assert not receiver.has(lambda e: e.uid == "MESH-07" and e.point.lat == 46.0)
    assert rejected(server, "spoofed_uid") == 1

    # Relayed devices stay in the picture when the gateway leaves; only bound devices get a delete.
    await gateway.close()
    await node.close()
    await receiver.wait_for(deleted("MESH-07"))
    await connections(server, "tls", 1)
    late = await CotClient.connect(server.ports["tls"], ssl_context=client_context(server, "late", tmp_path))
    clients.append(late)
    for uid in uids:
        if uid != "MESH-07":
            await late.wait_uid(uid)
    assert not receiver.has(lambda e: e.type == "t-x-d-d" and e.detail.link_uid != "MESH-07")
