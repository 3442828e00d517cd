"""``/api/live`` on the real server: group isolation in the snapshot and live, deletes, token
revocation while connected, and a feed that stops reading never holds up streaming clients."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidHandshake, InvalidStatus

from tests.support.certs import client_context
from tests.support.cot_client import CotClient, cot, sa
from tests.support.live import LiveClient
from tests.support.server import ServerProcess

PASSWORDS = {"alice": "alice passphrase 1", "bob": "bob passphrase 22"}


def _cli(data_dir: Path, *args: str, stdin: str) -> None:
    subprocess.run([sys.executable, "-m", "rallypoint.cli.main", *args, "--data-dir", str(data_dir)],
                   input=stdin, capture_output=True, text=True, check=True)


@pytest.fixture
def live_server(data_dir: Path) -> Iterator[ServerProcess]:
    """alice reads and writes group A, bob group B."""
    _cli(data_dir, "user", "add", "alice", "--group", "A", "--password-stdin", stdin=PASSWORDS["alice"] + "\n")
    _cli(data_dir, "user", "add", "bob", "--group", "B", "--password-stdin", stdin=PASSWORDS["bob"] + "\n")
    # Bursts of thousands of events from one client must not be rate-limited away.
    proc = ServerProcess(data_dir, env={"RALLYPOINT_MAX_EVENTS_PER_S": "0", "RALLYPOINT_IP_EVENTS_PER_S": "0"})
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


async def _token(http: httpx.AsyncClient, name: str) -> str:
    answer = await http.post("/api/auth/token", auth=(name, PASSWORDS[name]))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _uids(feed: LiveClient) -> set[str]:
    """Every uid a feed was told about, in any message."""
    out: set[str] = set()
    for m in feed.messages:
        if m["type"] == "FeatureCollection":
            out.update(f["id"] for f in m["features"])
        elif m["type"] in ("Feature", "Delete"):
            out.add(m["id"])
    return out


async def test_each_feed_sees_only_its_groups_snapshot_and_live(
    live_server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    tls = live_server.ports["tls"]
    alice_dev = await CotClient.connect(tls, ssl_context=client_context(live_server, "alice", tmp_path))
    alice_mate = await CotClient.connect(tls, ssl_context=client_context(live_server, "alice", tmp_path / "m"))
    bob_dev = await CotClient.connect(tls, ssl_context=client_context(live_server, "bob", tmp_path))
    bob_mate = await CotClient.connect(tls, ssl_context=client_context(live_server, "bob", tmp_path / "m"))
    clients.extend([alice_dev, alice_mate, bob_dev, bob_mate])
    await alice_dev.send(sa("a-sa", "ALPHA", lat=48.1, lon=11.5) + cot("a-early", "b-m-p-s-m", lat=48.2, lon=11.6))
    await bob_dev.send(sa("b-sa", "BRAVO", lat=40.1, lon=-3.7) + cot("b-early", "b-m-p-s-m", lat=40.2, lon=-3.6))
    await alice_mate.wait_uid("a-early")
    await bob_mate.wait_uid("b-early")

    http_port = live_server.ports["http"]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=10) as http:
        assert (await http.get("/map")).headers["location"] == "/"  # the picture's former address
        page = await http.get("/map/map.html")
        assert page.status_code == 200 and "/map/map.js" in page.text
        script = await http.get("/map/map.js")
        assert script.status_code == 200 and "/api/live" in script.text
        assert (await http.get("/map/nothing.js")).status_code == 404
        alice_token, bob_token = await _token(http, "alice"), await _token(http, "bob")

    alice = await LiveClient.connect(http_port, token=alice_token)
    bob = await LiveClient.connect(http_port, token=bob_token, via_subprotocol=True)
    clients.extend([alice, bob])
    assert alice.ws.subprotocol == "rallypoint.live.v1"
    await alice.wait_for(lambda c: bool(c.messages))
    await bob.wait_for(lambda c: bool(c.messages))
    first_a, first_b = alice.messages[0], bob.messages[0]
    assert first_a["type"] == first_b["type"] == "FeatureCollection"
    assert {f["id"] for f in first_a["features"]} == {"a-sa", "a-early"}
    assert {f["id"] for f in first_b["features"]} == {"b-sa", "b-early"}
    early = next(f for f in first_a["features"] if f["id"] == "a-sa")
    assert early["geometry"]["coordinates"][:2] == [11.5, 48.1]
    assert early["properties"]["callsign"] == "ALPHA" and early["properties"]["kind"] == "client"

    # Live: positions and items of each group reach that group's feed only.
    for i in range(20):
        await alice_dev.send(sa("a-sa", "ALPHA", lat=48.1 + i / 1000, lon=11.5) + cot(f"a-item-{i}", "u-d-r"))
        await bob_dev.send(sa("b-sa", "BRAVO", lat=40.1 + i / 1000, lon=-3.7) + cot(f"b-item-{i}", "u-d-r"))
    await alice.wait_uid("a-item-19")
    await bob.wait_uid("b-item-19")
    await alice.wait_for(lambda c: c.features["a-sa"]["geometry"]["coordinates"][1] == pytest.approx(48.119))
    item = alice.features["a-item-7"]
    assert item["properties"]["type"] == "u-d-r" and item["properties"]["kind"] == "item"
    assert item["properties"]["stale_ms"] > item["properties"]["time_ms"]

    # A deletion reaches the feed and takes the item off its picture.
    await alice_dev.send(cot("a-del-1", "t-x-d-d", detail='<link uid="a-item-3" relation="p-p" type="u-d-r"/>'))
    await alice.wait_for(lambda c: "a-item-3" not in c.features)
    delete = next(m for m in alice.received("Delete") if m["id"] == "a-item-3")
    assert delete["properties"]["event_uid"] == "a-del-1"

    # Everything sent so far has been delivered: a last marker from each side arrived after it.
    await alice_dev.send(cot("a-last", "b-m-p-s-m"))
    await bob_dev.send(cot("b-last", "b-m-p-s-m"))
    await alice.wait_uid("a-last")
    await bob.wait_uid("b-last")
    assert _uids(alice) and all(uid.startswith("a-") for uid in _uids(alice)), _uids(alice)
    assert _uids(bob) and all(uid.startswith("b-") for uid in _uids(bob)), _uids(bob)
    assert not any(m["type"] == "Feature" and m["properties"]["type"] == "b-t-f" for m in alice.messages)


async def _silent_feed(port: int, token: str | None = None) -> asyncio.StreamWriter:
    """A browser that completes the handshake and then never reads: tiny receive buffer, reads stopped."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=raw, limit=1024)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    writer.write(
        f"GET /api/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{auth}\r\n".encode()
    )
    status = await asyncio.wait_for(reader.readline(), timeout=10)
    assert b" 101 " in status
    return writer


async def _metric(http: httpx.AsyncClient, name: str) -> float:
    text = (await http.get("/metrics")).text
    return float(next(line for line in text.splitlines() if line.startswith(name + " ")).split()[1])


async def test_feed_is_refused_without_live_credentials(live_server: ServerProcess) -> None:
    port = live_server.ports["http"]
    for kwargs in ({"token": "not-a-token"}, {"token": "not-a-token", "via_subprotocol": True}):
        with pytest.raises(InvalidStatus) as refused:
            await LiveClient.connect(port, **kwargs)  # type: ignore[arg-type]
        assert refused.value.response.status_code == 401
    # The HTTPS port requires a client certificate before any WebSocket is spoken.
    with pytest.raises((OSError, InvalidHandshake)):
        bare = ssl.create_default_context(cafile=str(live_server.data_dir / "ca" / "ca.pem"))
        await LiveClient.connect(live_server.ports["api"], ssl_context=bare)


async def test_revoked_token_closes_open_feed(live_server: ServerProcess, clients: list[object]) -> None:
    port = live_server.ports["http"]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        token = await _token(http, "alice")
        feed = await LiveClient.connect(port, token=token)
        clients.append(feed)
        await feed.wait_for(lambda c: bool(c.messages))
        revoked = await http.delete("/api/auth/token", headers={"Authorization": f"Bearer {token}"})
        assert revoked.status_code == 204
        assert await feed.wait_closed(timeout=15) == 4401
        metrics = (await http.get("/metrics")).text
    assert "rallypoint_live_closed_auth_total 1.0" in metrics


async def test_feed_that_stops_reading_does_not_hold_up_stream_clients(
    live_server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    port = live_server.ports["http"]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        token = await _token(http, "alice")
    writer = await _silent_feed(port, token)
    try:
        tls = live_server.ports["tls"]
        sender = await CotClient.connect(tls, ssl_context=client_context(live_server, "alice", tmp_path))
        receiver = await CotClient.connect(tls, ssl_context=client_context(live_server, "alice", tmp_path / "r"))
        clients.extend([sender, receiver])
        total = 4000
        burst = b"".join(
            cot(f"u-{i % 200}", "a-f-G-U-C", lat=10 + i / 10_000, lon=20.0, detail="<remarks>" + "x" * 400
                + "</remarks>")
            if i % 2 else cot(f"item-{i}", "b-m-p-s-m")
            for i in range(total)
        )
        await sender.send(burst)
        await receiver.barrier(sender, timeout=30)
        items = {e.uid for e in receiver.events if e.uid.startswith("item-")}
        assert items == {f"item-{i}" for i in range(0, total, 2)}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            metrics = (await http.get("/metrics")).text
        offered = next(line for line in metrics.splitlines() if line.startswith("rallypoint_live_offered_total"))
        assert float(offered.split()[1]) >= total / 2, offered
    finally:
        writer.close()


async def test_feed_follows_group_changes_and_closes_for_disabled_account(
    live_server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    bob_ctx = client_context(live_server, "bob", tmp_path)
    bob_dev = await CotClient.connect(live_server.ports["tls"], ssl_context=bob_ctx)
    clients.append(bob_dev)
    await bob_dev.send(sa("b-sa", "BRAVO") + cot("b-item", "b-m-p-s-m"))
    port = live_server.ports["http"]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        token = await _token(http, "alice")
        bob_token = await _token(http, "bob")
        bob_feed = await LiveClient.connect(port, token=bob_token)
        clients.append(bob_feed)
        await bob_feed.wait_uid("b-item")  # routed before alice's feed opens
        feed = await LiveClient.connect(port, token=token)
        clients.append(feed)
        await feed.wait_for(lambda c: bool(c.messages))
        assert feed.messages[0]["features"] == []

        # Moved to group B by an operator (another process): the feed re-sends B's picture, then B's changes.
        _cli(live_server.data_dir, "user", "groups", "alice", "--group", "B", stdin="")
        await feed.wait_for(lambda c: len(c.received("FeatureCollection")) == 2, timeout=15)
        assert {f["id"] for f in feed.received("FeatureCollection")[1]["features"]} == {"b-sa", "b-item"}
        await bob_dev.send(cot("b-after", "u-d-r"))
        await feed.wait_uid("b-after")

        _cli(live_server.data_dir, "user", "disable", "alice", stdin="")
        assert await feed.wait_closed(timeout=15) == 4401
        # The other feed is untouched.
        await bob_dev.send(cot("b-later", "u-d-r"))
        await bob_feed.wait_uid("b-later")


async def test_feed_that_never_reads_is_closed_and_its_queue_bounded(
    data_dir: Path, clients: list[object]
) -> None:
    # The feed must still be open when the last of the items is offered to it, or the items left
    # over are never queued and nothing overflows: the slow-receiver timeout has to outlast the
    # sender's burst even on a loaded machine (the test then waits that long for the close).
    env = {"RALLYPOINT_MAX_EVENTS_PER_S": "0", "RALLYPOINT_IP_EVENTS_PER_S": "0",
           "RALLYPOINT_SLOW_RECEIVER_TIMEOUT_S": "15"}
    proc = ServerProcess(data_dir, env=env)
    proc.start()
    try:
        port = proc.ports["http"]
        writer = await _silent_feed(port)  # anonymous: plain HTTP on loopback reads __ANON__
        sender = await CotClient.connect(proc.ports["cot"])
        receiver = await CotClient.connect(proc.ports["cot"])
        clients.extend([sender, receiver])
        # Far more distinct items than the feed's queue and the socket buffers hold (~9 MB as GeoJSON).
        total = 8_000
        await sender.send(b"".join(
            cot(f"item-{i}", "b-m-p-s-m", detail=f"<contact callsign='{'M' * 900}{i}'/>") for i in range(total)
        ))
        await receiver.barrier(sender, timeout=60)
        assert len({e.uid for e in receiver.events if e.uid.startswith("item-")}) == total
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            deadline = time.monotonic() + 60
            while await _metric(http, "rallypoint_live_closed_slow_total") < 1:
                assert time.monotonic() < deadline, "the feed that never reads was not closed"
                await asyncio.sleep(0.1)
            assert await _metric(http, "rallypoint_live_feeds") == 0
            assert await _metric(http, "rallypoint_live_dropped_total") > 0  # its queue stayed bounded
        writer.close()
    finally:
        proc.stop()
    assert proc.proc is not None and proc.proc.returncode == 0  # the stuck socket did not hold up shutdown
