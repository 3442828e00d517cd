"""A receiver that stops reading, on the real server: cut off by policy, everyone else unaffected."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_native_api import alogin, tls_context
from tests.support.accounts import PASSWORDS, run_cli
from tests.support.cot_client import CotClient, chat, sa
from tests.support.server import ServerProcess

SENDERS = 4
REPORTS = 300
# Large reports fill a stalled socket's buffers after a few hundred kilobytes.
PADDING = "<remarks>" + "x" * 3000 + "</remarks>"
ENV = {
    "RALLYPOINT_SLOW_RECEIVER_TIMEOUT_S": "5",
    "RALLYPOINT_WRITE_BUFFER_HIGH": "16384",
    # The senders blast on purpose: the per-session input rate limit is not under test here.
    "RALLYPOINT_MAX_EVENTS_PER_S": "100000",
    "RALLYPOINT_EVENTS_BURST": "100000",
}
CUT_OFF = {"disconnecting receiver that stopped reading", "disconnecting slow receiver"}


@pytest.fixture
def slow_server(data_dir: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(data_dir, env=ENV)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def metrics(server: ServerProcess) -> dict[str, float]:
    """``name{labels}`` -> value from one scrape of ``/metrics``."""
    text = httpx.get(f"http://127.0.0.1:{server.ports['http']}/metrics", timeout=5).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


async def until(predicate: Any, what: str, timeout: float = 20.0) -> None:
    """Poll ``predicate`` (run in a thread: it may scrape metrics) until true, with a deadline."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        assert time.monotonic() < deadline, f"{what}: not reached within {timeout}s"
        await asyncio.sleep(0.05)


def stalled_socket(port: int, wrap: ssl.SSLContext | None = None) -> socket.socket:
    """A connected client with a tiny receive buffer that will never read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    if wrap is not None:
        sock = wrap.wrap_socket(sock, server_hostname="127.0.0.1")
    return sock


def closed_by_peer(sock: socket.socket, timeout: float = 15.0) -> bool:
    """Read what is buffered until the server's close shows (EOF or reset); False at the deadline."""
    sock.settimeout(0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return True
        except TimeoutError:
            continue
    return False


def lat_of(i: int) -> float:
    return round(10.0 + i * 0.001, 6)


async def test_a_receiver_that_stops_reading_is_cut_off_and_the_others_get_everything(
    slow_server: ServerProcess, clients: list[object]
) -> None:
    port = slow_server.ports["cot"]
    stalled = await asyncio.to_thread(stalled_socket, port)
    try:
        await until(lambda: metrics(slow_server).get('rallypoint_connections{transport="tcp"}') == 1.0,
                    "stalled client registered")
        senders = [await CotClient.connect(port) for _ in range(SENDERS)]
        listeners = [await CotClient.connect(port) for _ in range(2)]
        clients.extend(senders + listeners)
        # First fill the stalled client's socket buffers, until the server pauses writing to it.
        deadline = time.monotonic() + 30
        while not await asyncio.to_thread(lambda: metrics(slow_server)["rallypoint_sessions_paused"] >= 1):
            assert time.monotonic() < deadline, "the stalled client's socket never filled"
            for _ in range(20):
                for n, sender in enumerate(senders):
                    await sender.send(sa(f"snd-{n}", f"S{n}", extra=PADDING, lat=lat_of(0)))
        chats: list[str] = []
        for i in range(REPORTS):
            for n, sender in enumerate(senders):
                await sender.send(sa(f"snd-{n}", f"S{n}", extra=PADDING, lat=lat_of(i)))
                if i % 100 == 50:
                    data = chat(f"snd-{n}", f"S{n}", to_uid=None, to_cs=None, text=f"chat {i} from {n}")
                    chats.append(re.search(rb'uid="([^"]+)"', data).group(1).decode())  # type: ignore[union-attr]
                    await sender.send(data)
        # Healthy receivers get every chat and each sender's latest position.
        last = lat_of(REPORTS - 1)
        for receiver in listeners:
            for n in range(SENDERS):
                await receiver.wait_for(lambda e, n=n: e.uid == f"snd-{n}" and e.point.lat == last, timeout=30)
            for uid in chats:
                await receiver.wait_uid(uid, timeout=30)
        for k, receiver in enumerate(senders):
            for n in range(SENDERS):
                if n != k:
                    await receiver.wait_for(lambda e, n=n: e.uid == f"snd-{n}" and e.point.lat == last, timeout=30)
            for uid in chats:
                if not uid.startswith(f"GeoChat.snd-{k}."):
                    await receiver.wait_uid(uid, timeout=30)
        # The stalled receiver is cut off by policy: a log line, a metric, and its socket is closed.
        await until(lambda: any(line.get("msg") in CUT_OFF for line in slow_server.lines), "slow receiver log line")
        assert await asyncio.to_thread(closed_by_peer, stalled)
        m = await asyncio.to_thread(metrics, slow_server)
        assert m['rallypoint_sessions_closed_total{reason="slow_receiver"}'] == 1.0
        # Its outbox coalesced positions while it was paused, instead of growing.
        assert m["rallypoint_outbox_coalesced_total"] > 0
        assert m["rallypoint_backpressure_pauses_total"] >= 1
        # Everyone else is still connected and served.
        assert m['rallypoint_connections{transport="tcp"}'] == float(SENDERS + 2)
        for receiver in listeners:
            await receiver.barrier(senders[0])
            assert not receiver.closed.is_set()
        assert not any(s.closed.is_set() for s in senders)
    finally:
        stalled.close()


@pytest.fixture
def admin_server(data_dir: Path) -> Iterator[ServerProcess]:
    """Long slow-receiver timeout (the stalled client stays); ``alice`` and admin ``opsa`` both in group A."""
    run_cli(data_dir, "user", "add", "alice", "--group", "A", "--password-stdin", stdin=PASSWORDS["alice"] + "\n")
    run_cli(data_dir, "user", "add", "root", "--group", "A", "--role", "admin", "--password-stdin",
            stdin=PASSWORDS["root"] + "\n")
    proc = ServerProcess(data_dir, env={**ENV, "RALLYPOINT_SLOW_RECEIVER_TIMEOUT_S": "600"})
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


async def test_a_stalled_receiver_shows_in_metrics_and_in_the_admin_client_list(
    admin_server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    server = admin_server
    context = tls_context(server, "alice", tmp_path)
    stalled = await asyncio.to_thread(stalled_socket, server.ports["tls"], context)
    try:
        stalled.sendall(sa("uid-stalled", "STALLED", group="A"))
        sender = await CotClient.connect(server.ports["tls"], ssl_context=tls_context(server, "alice", tmp_path))
        clients.append(sender)
        await sender.wait_uid("uid-stalled")  # the stalled client's report is routed: it is in the picture
        i = 0

        def stalled_is_paused() -> bool:
            m = metrics(server)
            return m["rallypoint_sessions_paused"] >= 1 and m["rallypoint_outbox_deepest"] > 0

        # Keep sending until the stalled client's socket is paused and its outbox holds something (the kernel's
        # buffers fill first; on a machine busy with other work that takes a while).
        deadline = time.monotonic() + 75
        while not await asyncio.to_thread(stalled_is_paused):
            assert time.monotonic() < deadline, "the stalled client never paused"
            for _ in range(50):
                i += 1
                await sender.send(sa(f"pos-{i % 20}", "P", group="A", extra=PADDING, lat=lat_of(i)))
        m = await asyncio.to_thread(metrics, server)
        assert m["rallypoint_outbox_deepest_bytes"] > 0
        assert m["rallypoint_sessions_thinning"] == 0  # no budget configured
        base = f"http://127.0.0.1:{server.ports['http']}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            admin = await alogin(http, "root")
            member = await alogin(http, "alice")
            listed = {c["uid"]: c for c in (await http.get("/api/clients", headers=admin)).json()}
            delivery = listed["uid-stalled"]["delivery"]
            assert delivery["paused"] is True and delivery["queued"] > 0 and delivery["queued_bytes"] > 0
            assert delivery["budget_bytes_per_s"] == 0 and delivery["thinning"] is False
            assert ":tls-" in delivery["session"]
            # Members see the same clients, without the delivery internals.
            seen = {c["uid"]: c for c in (await http.get("/api/clients", headers=member)).json()}
            assert "uid-stalled" in seen and seen["uid-stalled"]["delivery"] is None
    finally:
        stalled.close()
