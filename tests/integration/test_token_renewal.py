"""Token lifetime, renewal and revocation against a real node whose clock the test moves.

The node runs in this process (``build_node`` with a :class:`ManualClock`) and is reached over real
sockets; only its clock is the test's. A renewed session outlives its first token and keeps its live
feed open; an idle token lapses; revocation still closes the feed within its re-check.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from rallypoint.clock import ManualClock, SystemClock
from rallypoint.config import Settings
from rallypoint.node.build import build_node
from rallypoint.node.core import Node
from tests.support.live import LiveClient
from tests.support.poll import wait_until

TTL_S = 60
PASSWORD = "alice passphrase 1"
PAGE = {"X-Requested-With": "rallypoint-map"}


@pytest.fixture
async def node(data_dir: Path) -> AsyncIterator[tuple[Node, ManualClock]]:
    clock = ManualClock(SystemClock().now_ms())
    settings = Settings(
        data_dir=str(data_dir), bind="127.0.0.1", plain_bind="127.0.0.1", ephemeral_ports=True, http_port=1,
        cot_port=0, tls_port=0, api_port=0, enroll_port=0, federation_port=0, udp_port=0, token_ttl_s=TTL_S,
    )
    node = build_node(settings, clock=clock)
    await node.users.add("alice", password=PASSWORD, groups_in={"A"}, groups_out={"A"})
    running = asyncio.create_task(node.run())
    ready = asyncio.create_task(node.ready.wait())
    await asyncio.wait({running, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    assert node.ready.is_set(), "node did not start"
    try:
        yield node, clock
    finally:
        node.stop()
        ready.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def _login(http: httpx.AsyncClient) -> str:
    answer = await http.post("/oauth/token", data={"grant_type": "password", "username": "alice",
                                                   "password": PASSWORD}, headers=PAGE)
    assert answer.status_code == 200, answer.text
    assert answer.json()["expires_in"] == TTL_S
    return str(answer.json()["access_token"])


async def _renew(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post("/api/auth/token/renew", headers={**PAGE, "Authorization": f"Bearer {token}"})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_renewed_session_outlives_its_first_token_and_keeps_its_feed(
    node: tuple[Node, ManualClock], clients: list[object]
) -> None:
    server, clock = node
    port = server.ports["http"]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        first = await _login(http)
        idle = await _login(http)  # a second page that nobody uses: never renewed
        kept = await LiveClient.connect(port, token=first, via_subprotocol=True)
        lapsing = await LiveClient.connect(port, token=idle, via_subprotocol=True)
        clients.extend([kept, lapsing])
        await kept.wait_for(lambda c: bool(c.messages))
        await lapsing.wait_for(lambda c: bool(c.messages))

        clock.advance(TTL_S * 2 / 3)
        renewed = await _renew(http, first)
        assert renewed.status_code == 200 and renewed.json()["expires_in"] == TTL_S
        second = renewed.json()["access_token"]
        assert second != first
        await kept.ws.send(json.dumps({"type": "token", "token": second}))
        await kept.wait_for(lambda c: any(m.get("type") == "Renewed" for m in c.messages))

        clock.advance(TTL_S / 2)  # past the first tokens' expiry, within the renewed one
        assert (await http.get("/api/clients", headers=_bearer(first))).status_code == 401
        assert (await http.get("/api/clients", headers=_bearer(second))).status_code == 200
        assert (await _renew(http, idle)).status_code == 401  # an expired token renews nothing
        # The unrenewed feed closes at its next re-check; the renewed one (checked first) stays open.
        assert await lapsing.wait_closed(timeout=15) == 4401
        assert kept.close_code is None

        # Logging out revokes the whole session: the renewed token and the feed riding on it.
        assert (await http.delete("/api/auth/token", headers=_bearer(second))).status_code == 204
        assert await kept.wait_closed(timeout=15) == 4401
        assert (await _renew(http, second)).status_code == 401


async def test_a_feed_ignores_a_token_of_someone_else(node: tuple[Node, ManualClock], clients: list[object]) -> None:
    server, clock = node
    await server.users.add("bob", password=PASSWORD, groups_in={"B"}, groups_out={"B"})
    port = server.ports["http"]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        alice = await _login(http)
        bob = (await http.post("/oauth/token", data={"grant_type": "password", "username": "bob",
                                                     "password": PASSWORD})).json()["access_token"]
        feed = await LiveClient.connect(port, token=alice)
        clients.append(feed)
        await feed.wait_for(lambda c: bool(c.messages))
        await feed.ws.send(json.dumps({"type": "token", "token": bob}))
        await feed.ws.send(json.dumps({"type": "token", "token": "garbage"}))
        # Refused renewals are counted; the feed keeps alice's token and closes when it lapses.
        refused = 'rallypoint_events_rejected_total{reason="live_bad_token",transport="http"} 2.0'
        await wait_until(lambda: refused in httpx.get(f"http://127.0.0.1:{port}/metrics").text,
                         "both refused renewals counted")
        assert not any(m.get("type") == "Renewed" for m in feed.messages)
        clock.advance(TTL_S + 1)
        assert await feed.wait_closed(timeout=15) == 4401
