"""Operations: health, metrics, persistence + history CLI, SIGTERM drain, emergencies, UDP, protobuf."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time

import httpx

from tests.support.cot_client import CotClient, chat, cot, sa
from tests.support.server import ServerProcess


def _http(server: ServerProcess, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{server.ports['http']}{path}", timeout=5)


def _samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value for every sample of a Prometheus text scrape."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


async def test_health_and_metrics(server: ServerProcess, clients: list[object]) -> None:
    health = _http(server, "/api/health")
    assert health.status_code == 200
    assert health.json()["ready"] is True
    a = await CotClient.connect(server.ports["cot"])
    b = await CotClient.connect(server.ports["cot"])
    clients.extend([a, b])
    await a.send(sa("uid-metrics", "M"))
    await b.wait_uid("uid-metrics")
    await b.send(sa("uid-metrics-b", "MB"))
    await a.wait_uid("uid-metrics-b")
    await a.send(chat("uid-metrics", "M", to_uid="uid-metrics-b", to_cs="MB", text="hello"))
    await b.wait_for(lambda e: e.type == "b-t-f")
    await a.send(chat("uid-metrics", "M", to_uid="uid-ghost", to_cs="GHOST", text="anyone?"))
    await a.wait_for(lambda e: e.type == "b-t-f-s")
    await a.send(b"<event><broken")  # rejected, counted
    await a.send(b"</event>")
    await b.barrier(a)
    text = _http(server, "/metrics").text
    m = _samples(text)
    assert m['rallypoint_connections{transport="tcp"}'] == 2.0
    assert m['rallypoint_events_in_total{type="position"}'] >= 2
    assert m['rallypoint_events_in_total{type="chat"}'] == 2
    assert "rallypoint_events_rejected_total" in text
    assert "rallypoint_route_seconds_bucket" in text
    # Events out, per type class: each SA and the chat reached the other client, and the
    # delivery-failure notice (a b-t-f-s chat, delivered through the bus like any event) reached
    # the sender of the chat nobody could receive.
    assert m['rallypoint_events_out_total{type="position"}'] >= 2
    assert m['rallypoint_events_out_total{type="chat"}'] == 2
    assert m['rallypoint_events_out_total{type="emergency"}'] == 0
    # Scraped in one loop iteration: the per-type counts add up to the total.
    out = sum(v for k, v in m.items() if k.startswith("rallypoint_events_out_total{"))
    assert out == m["rallypoint_events_delivered_total"]
    # One drop family covering every reason; the old per-component names stay.
    assert m['rallypoint_drops_total{reason="chat_unreachable"}'] == 1
    assert m['rallypoint_drops_total{reason="rejected_input"}'] >= 1
    for reason in ("outbox", "storage", "mailbox_expired", "mailbox_overflow"):
        assert m[f'rallypoint_drops_total{{reason="{reason}"}}'] == 0, reason
    assert "rallypoint_outbox_dropped_total" in m and "rallypoint_storage_dropped_total" in m
    # Queue depths: both clients keep up and storage writes in batches, so queues are (near) empty.
    for gauge in ("rallypoint_outbox_queued", "rallypoint_outbox_queued_bytes", "rallypoint_storage_pending",
                  "rallypoint_mailbox_pending"):
        assert 0 <= m[gauge] < 100, gauge
    deadline = time.monotonic() + 10
    while _samples(_http(server, "/metrics").text)["rallypoint_storage_written_total"] < 3:
        assert time.monotonic() < deadline, "accepted events never reached storage"
        await asyncio.sleep(0.05)


async def test_emergency_repeats_until_cancelled_and_late_joiner_sees_it(
    server: ServerProcess, clients: list[object]
) -> None:
    a = await CotClient.connect(server.ports["cot"])
    b = await CotClient.connect(server.ports["cot"])
    clients.extend([a, b])
    alert = cot(
        "phone-9-1-1", "b-a-o-tbl", stale_s=10,
        detail='<link uid="uid-E" type="a-f-G-U-C" relation="p-p"/><contact callsign="E-Alert"/>'
        '<emergency type="911 Alert">E</emergency>',
    )
    await a.send(alert)
    await b.wait_uid("phone-9-1-1")
    # The server repeats it (every 3 s by default): a second copy arrives without the sender resending.
    deadline = time.monotonic() + 10
    while sum(e.uid == "phone-9-1-1" for e in b.events) < 2:
        assert time.monotonic() < deadline, "emergency was not repeated"
        await b.wait_for(lambda e: sum(x.uid == "phone-9-1-1" for x in b.events) >= 2, timeout=10)
    late = await CotClient.connect(server.ports["cot"])
    clients.append(late)
    await late.wait_uid("phone-9-1-1")
    cancel = cot("phone-9-1-1", "b-a-o-can", stale_s=10,
                 detail='<link uid="uid-E" type="a-f-G-U-C" relation="p-p"/><emergency cancel="true">E</emergency>')
    await a.send(cancel)
    await b.wait_for(lambda e: e.type == "b-a-o-can")
    later = await CotClient.connect(server.ports["cot"])
    clients.append(later)
    await later.barrier(a)
    assert not later.has(lambda e: e.uid == "phone-9-1-1")


async def test_udp_mesh_accepts_xml_and_protobuf(server: ServerProcess, clients: list[object]) -> None:
    from rallypoint.protocol.limits import Limits
    from rallypoint.protocol.wire import encode_mesh
    from rallypoint.protocol.xml_codec import parse_event

    b = await CotClient.connect(server.ports["cot"])
    clients.append(b)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.sendto(b'<?xml version="1.0"?>\n' + sa("udp-xml", "UDPX"), ("127.0.0.1", server.ports["udp"]))
        mesh = encode_mesh(parse_event(sa("udp-proto", "UDPP"), Limits()))
        assert mesh[:3] == b"\xbf\x01\xbf"
        sock.sendto(mesh, ("127.0.0.1", server.ports["udp"]))
        sock.sendto(b"\xbf\x01\xbfgarbage", ("127.0.0.1", server.ports["udp"]))
    finally:
        sock.close()
    await b.wait_uid("udp-xml")
    got = await b.wait_uid("udp-proto")
    assert got.detail.callsign == "UDPP"


async def test_persistence_history_cli_and_sigterm(server: ServerProcess, clients: list[object]) -> None:
    a = await CotClient.connect(server.ports["cot"])
    b = await CotClient.connect(server.ports["cot"])
    clients.extend([a, b])
    for i in range(20):
        await a.send(cot(f"hist-{i}", "b-m-p-s-m", lat=10.0 + i, lon=20.0 + i))
    await b.wait_uid("hist-19")
    code = await asyncio.to_thread(server.terminate)
    assert code == 0, server.tail()
    server.wait_for_log("stopped")
    out = subprocess.run(
        [sys.executable, "-m", "rallypoint.cli.main", "history", "query", "--data-dir", str(server.data_dir),
         "--type", "b-m-p", "--bbox", "19.5,9.5,25.5,15.5", "--format", "json"],
        capture_output=True, text=True, check=True,
    )
    rows = json.loads(out.stdout)
    uids = sorted(r["uid"] for r in rows)
    assert uids == sorted(f"hist-{i}" for i in range(6)), uids


async def test_markers_survive_restart(data_dir, clients: list[object]) -> None:  # type: ignore[no-untyped-def]
    first = ServerProcess(data_dir)
    first.start()
    try:
        a = await CotClient.connect(first.ports["cot"])
        b = await CotClient.connect(first.ports["cot"])
        clients.extend([a, b])
        await a.send(cot("keep-me", "b-m-p-s-m", stale_s=3600))
        await b.wait_uid("keep-me")
        assert await asyncio.to_thread(first.terminate) == 0
    finally:
        first.stop()
    second = ServerProcess(data_dir)
    second.start()
    try:
        late = await CotClient.connect(second.ports["cot"])
        clients.append(late)
        got = await late.wait_uid("keep-me")
        assert got.type == "b-m-p-s-m"
    finally:
        second.stop()
