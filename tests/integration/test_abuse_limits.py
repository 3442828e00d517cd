"""Abuse limits on a real server with tight settings: each limit is enforced, counted, and local."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.certs import client_context
from tests.support.cot_client import CotClient, cot, sa
from tests.support.poll import wait_until
from tests.support.server import ServerProcess

LIMITS = {
    "RALLYPOINT_MAX_EVENTS_PER_S": "5",
    "RALLYPOINT_EVENTS_BURST": "10",
    "RALLYPOINT_MAX_CONNECTIONS_PER_IP": "6",
    "RALLYPOINT_MAX_CONNECTIONS_PER_IDENTITY": "1",
    "RALLYPOINT_IDLE_TIMEOUT_S": "3",
    "RALLYPOINT_FRAME_TIMEOUT_S": "1",
    "RALLYPOINT_TLS_HANDSHAKE_TIMEOUT_S": "1",
}


@pytest.fixture
def tight(data_dir: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(data_dir, env=LIMITS)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _closed_total(server: ServerProcess, reason: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{server.ports['http']}/metrics", timeout=5).text
    m = re.search(rf'rallypoint_sessions_closed_total\{{reason="{reason}"\}} (\S+)', text)
    return float(m.group(1)) if m else 0.0


def _rejected_total(server: ServerProcess, reason: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{server.ports['http']}/metrics", timeout=5).text
    pattern = rf'rallypoint_events_rejected_total\{{reason="{reason}"[^}}]*\}} (\S+)'
    return sum(float(v) for v in re.findall(pattern, text))


async def test_message_rate_limit_drops_then_disconnects_a_flood(tight: ServerProcess, clients: list[object]) -> None:
    sender = await CotClient.connect(tight.ports["cot"])
    witness = await CotClient.connect(tight.ports["cot"])
    clients.extend([sender, witness])
    await sender.send(b"".join(cot(f"burst-{i}", "b-m-p-s-m") for i in range(15)))
    await witness.wait_uid("burst-9")
    assert _rejected_total(tight, "rate_limited") >= 1
    # A flood far past the burst closes that session only.
    await sender.send(b"".join(cot(f"flood-{i}", "b-m-p-s-m") for i in range(200)))
    await asyncio.wait_for(sender.closed.wait(), timeout=10)
    assert _closed_total(tight, "rate_limit") == 1
    other = await CotClient.connect(tight.ports["cot"])
    clients.append(other)
    await other.send(sa("still-ok", "OK"))
    await witness.wait_uid("still-ok")


async def test_connections_per_address_are_capped(tight: ServerProcess, clients: list[object]) -> None:
    opened = [await CotClient.connect(tight.ports["cot"]) for _ in range(6)]
    clients.extend(opened)
    extra = await CotClient.connect(tight.ports["cot"], wait_registered=False)
    clients.append(extra)
    await asyncio.wait_for(extra.closed.wait(), timeout=10)
    assert _closed_total(tight, "address_connections") == 1
    await opened[0].close()
    # A slot frees up when a connection ends.
    again = await CotClient.connect(tight.ports["cot"])
    clients.append(again)


async def test_connections_per_identity_are_capped(tight: ServerProcess, tmp_path: Path, clients: list[object]) -> None:
    ctx = client_context(tight, "dup", tmp_path)
    first = await CotClient.connect(tight.ports["tls"], ssl_context=ctx)
    clients.append(first)
    second = await CotClient.connect(tight.ports["tls"], ssl_context=ctx, wait_registered=False)
    clients.append(second)
    await asyncio.wait_for(second.closed.wait(), timeout=10)
    assert not first.closed.is_set()
    assert _closed_total(tight, "identity_connections") == 1
    # A refused connection must not free the slot the first one holds.
    third = await CotClient.connect(tight.ports["tls"], ssl_context=ctx, wait_registered=False)
    clients.append(third)
    await asyncio.wait_for(third.closed.wait(), timeout=10)
    assert _closed_total(tight, "identity_connections") == 2


async def test_idle_and_slow_loris_and_handshake_timeouts(tight: ServerProcess, clients: list[object]) -> None:
    idle = await CotClient.connect(tight.ports["cot"])
    pinger = await CotClient.connect(tight.ports["cot"])
    loris = await CotClient.connect(tight.ports["cot"])
    clients.extend([idle, pinger, loris])
    await loris.send(b'<event version="2.0" uid="slow" type="a-f-G" ')  # and never finish
    reader, writer = await asyncio.open_connection("127.0.0.1", tight.ports["tls"])  # no TLS handshake
    try:
        await asyncio.wait_for(loris.closed.wait(), timeout=10)
        assert not pinger.closed.is_set()
        # The pinger keeps its session alive past the idle timeout; the silent client is closed.
        for _ in range(8):
            await pinger.send(cot("pinger-ping", "t-x-c-t", stale_s=10))
            if idle.closed.is_set():
                break
            await asyncio.wait_for(pinger.wait_for(lambda e: e.type == "t-x-c-t-r"), timeout=5)
            try:
                await asyncio.wait_for(asyncio.shield(idle.closed.wait()), timeout=0.8)
            except TimeoutError:
                continue
        await asyncio.wait_for(idle.closed.wait(), timeout=10)
        assert not pinger.closed.is_set()
        assert await asyncio.wait_for(reader.read(), timeout=10) == b""
    finally:
        writer.close()
    assert _closed_total(tight, "slow_frame") == 1
    assert _closed_total(tight, "idle_timeout") >= 1


def _health(server: ServerProcess) -> dict[str, object]:
    doc: dict[str, object] = httpx.get(f"http://127.0.0.1:{server.ports['http']}/api/health", timeout=5).json()
    return doc


async def test_connections_refused_at_capacity_hold_no_slots(
    data_dir: Path, tmp_path: Path, clients: list[object]
) -> None:
    proc = ServerProcess(data_dir, env={
        "RALLYPOINT_MAX_CONNECTIONS": "2", "RALLYPOINT_MAX_CONNECTIONS_PER_IDENTITY": "2",
        "RALLYPOINT_MAX_CONNECTIONS_PER_IP": "4",
    })
    proc.start()
    try:
        ctx = client_context(proc, "late", tmp_path)
        fillers = [await CotClient.connect(proc.ports["cot"]) for _ in range(2)]
        clients.extend(fillers)
        # More refused attempts than the identity and address limits allow: each must give back
        # what it took, or the identity would stay locked out once capacity frees up.
        for _ in range(5):
            refused = await CotClient.connect(proc.ports["tls"], ssl_context=ctx, wait_registered=False)
            clients.append(refused)
            await asyncio.wait_for(refused.closed.wait(), timeout=10)
            assert not refused.has(lambda e: e.type == "t-x-takp-v")
        assert await asyncio.to_thread(_closed_total, proc, "max_connections") == 5
        for filler in fillers:
            await filler.close()
        await wait_until(lambda: _health(proc)["connections"] == 0, "sessions released")
        # Both identity slots are free again.
        first = await CotClient.connect(proc.ports["tls"], ssl_context=ctx)
        second = await CotClient.connect(proc.ports["tls"], ssl_context=ctx)
        clients.extend([first, second])
        assert await asyncio.to_thread(_closed_total, proc, "identity_connections") == 0
        assert await asyncio.to_thread(_closed_total, proc, "address_connections") == 0
        assert await asyncio.to_thread(proc.terminate) == 0
    finally:
        proc.stop()
    listing = subprocess.run(
        [sys.executable, "-m", "rallypoint.cli.main", "audit", "list", "--json", "--data-dir", str(data_dir)],
        capture_output=True, text=True, check=True,
    ).stdout
    logins = [e for e in json.loads(listing) if e["action"] == "login.ok" and e["actor"] == "late"]
    assert len(logins) == 2  # only the accepted sessions


def _counter(server: ServerProcess, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{server.ports['http']}/metrics", timeout=5).text
    m = re.search(rf"^{name}_total (\S+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server ends the connection (it never answers a request it never got)."""
    try:
        return await asyncio.wait_for(reader.read(), timeout=15) == b""
    except ConnectionResetError:
        return True


async def test_slow_http_clients_are_disconnected_and_counted(data_dir: Path) -> None:
    proc = ServerProcess(data_dir, env={"RALLYPOINT_HTTP_HEADER_TIMEOUT_S": "1", "RALLYPOINT_HTTP_BODY_TIMEOUT_S": "1"})
    proc.start()
    opened: list[asyncio.StreamWriter] = []
    try:
        subprocess.run(
            [sys.executable, "-m", "rallypoint.cli.main", "user", "add", "slow", "--password-stdin",
             "--data-dir", str(data_dir)],
            input="a slow but right password\n", capture_output=True, text=True, check=True,
        )
        http, enroll = proc.ports["http"], proc.ports["enroll"]
        # Half a request line, then nothing.
        loris_r, loris_w = await asyncio.open_connection("127.0.0.1", http)
        loris_w.write(b"GET /api/hea")
        # Connected, never a byte.
        mute_r, mute_w = await asyncio.open_connection("127.0.0.1", http)
        # On TLS (the enrollment port) the deadline starts after the handshake.
        tls = ssl.create_default_context(cafile=str(data_dir / "ca" / "ca.pem"))
        tls_r, tls_w = await asyncio.open_connection("127.0.0.1", enroll, ssl=tls, server_hostname="localhost")
        tls_w.write(b"GET /Marti/api/tls/con")
        # A head, then a body that stops half way (signing reads the body once the password is checked).
        body_r, body_w = await asyncio.open_connection("127.0.0.1", enroll, ssl=tls, server_hostname="localhost")
        body_w.write(
            b"POST /Marti/api/tls/signClient/v2?clientUid=x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
            b"Authorization: Basic " + base64.b64encode(b"slow:a slow but right password") + b"\r\n\r\n" + b"x" * 10
        )
        opened.extend([loris_w, mute_w, body_w, tls_w])
        # A normal client is served meanwhile.
        health = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{http}/api/health", timeout=5)
        assert health.status_code == 200
        for reader in (loris_r, mute_r, body_r, tls_r):
            assert await _closed_by_server(reader)
        assert await asyncio.to_thread(_counter, proc, "rallypoint_http_header_timeouts") == 3
        assert await asyncio.to_thread(_counter, proc, "rallypoint_http_body_timeouts") == 1
        # A request that arrives in pieces, each well within the deadline, is still answered.
        r, w = await asyncio.open_connection("127.0.0.1", http)
        opened.append(w)
        for piece in (b"GET /api/health HTTP/1.1\r\n", b"Host: x\r\n", b"Connection: close\r\n\r\n"):
            w.write(piece)
            await w.drain()
        assert (await asyncio.wait_for(r.read(), timeout=10)).startswith(b"HTTP/1.1 200")
        # Body limit hits are counted too.
        big = await asyncio.to_thread(
            httpx.post, f"http://127.0.0.1:{http}/api/health", content=b"x" * (65 * 1024), timeout=5
        )
        assert big.status_code == 413
        assert await asyncio.to_thread(_counter, proc, "rallypoint_http_body_too_large") == 1
    finally:
        for w in opened:
            w.close()
        proc.stop()
