"""Federation over an impaired link: two servers in two network namespaces joined by a veth pair.

Server A (``ns1``) listens for federation on the veth address; server B (``ns2``) dials it. Clients
and API calls reach each server on its namespace's loopback. Needs root and iproute2; the lossy
scenario with ``tc netem`` is skipped where the kernel has no netem, and a link that flaps (down
about 30% of the time) stands in for packet loss everywhere.

The partition lasts 60 s (longer than every keepalive and backoff, as in a real outage);
``RALLYPOINT_SHORT_PARTITION=1`` shortens it to 20 s for quick local runs.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_federation import make_ca, write_config
from tests.support.cot_client import CotClient, chat, cot, sa
from tests.support.netns import NsServerProcess, VethLink, connect_in, get_json_in, unavailable_reason
from tests.support.poll import wait_until

REASON = unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"network namespaces unavailable: {REASON}")

PARTITION_S = 20.0 if os.environ.get("RALLYPOINT_SHORT_PARTITION") == "1" else 60.0
# Explicit per-test timeouts, well above the default 120 s where a test's own deadlines add up past it:
# about 65 s for the partition test on an idle machine, several times that is still a pass under load.
PARTITION_TIMEOUT_S = int(PARTITION_S) + 180
GROUPS = {"__ANON__": "__ANON__"}


class NsPair:
    """Server A in ``ns1`` (listens), server B in ``ns2`` (dials A over the veth link)."""

    def __init__(self, root: Path, net: VethLink, *, a_extra: str = "", b_extra: str = "") -> None:
        self.net, self.root = net, root
        a_dir, self.b_dir = root / "a", root / "b"
        a_ca, b_ca = make_ca(a_dir), make_ca(self.b_dir)
        a_cfg = write_config(root / "a.toml", node_id="alpha", peer="bravo", peer_ca=b_ca, groups_out=GROUPS,
                             groups_in=GROUPS, extra=a_extra)
        self.a = NsServerProcess(net.ns1, a_dir, "--config", str(a_cfg), "--federation-port", "1")
        self.a.start()
        b_cfg = write_config(root / "b.toml", node_id="bravo", peer="alpha", peer_ca=a_ca, host=net.addr1,
                             port=self.a.ports["federation"], groups_out=GROUPS, groups_in=GROUPS, extra=b_extra)
        # A's certificate names localhost; B reaches it by its veth address.
        b_cfg.write_text(b_cfg.read_text() + 'tls_name = "localhost"\n')
        self.b_args = ("--config", str(b_cfg))
        self.b = self.start_b()

    def start_b(self) -> NsServerProcess:
        self.b = NsServerProcess(self.net.ns2, self.b_dir, *self.b_args)
        self.b.start()
        return self.b

    def links(self, server: NsServerProcess) -> dict[str, Any]:
        return dict(get_json_in(server.ns, server.ports["http"], "/api/links")["links"][0])

    def stop(self) -> None:
        for proc in (self.b, self.a):
            proc.stop()


@pytest.fixture
def net() -> Iterator[VethLink]:
    with VethLink() as link:
        yield link


@pytest.fixture
def pair_factory(tmp_path: Path, net: VethLink) -> Iterator[Any]:
    made: list[NsPair] = []

    def make(**kw: str) -> NsPair:
        made.append(NsPair(tmp_path, net, **kw))
        return made[-1]

    try:
        yield make
    finally:
        for p in made:
            p.stop()


async def client_in(server: NsServerProcess) -> CotClient:
    """A CotClient connected to ``server``'s plain CoT port from inside its namespace."""
    sock = await asyncio.to_thread(connect_in, server.ns, "127.0.0.1", server.ports["cot"])
    client = CotClient()
    client._reader, client._writer = await asyncio.open_connection(sock=sock)
    client._task = asyncio.create_task(client._read())
    await client.wait_for(lambda e: e.type == "t-x-takp-v", timeout=10)
    return client


async def link_state(pair: NsPair, server: NsServerProcess, state: str, timeout: float = 30.0) -> None:
    await wait_until(lambda: pair.links(server)["state"] == state, f"link {state} on {server.ns}", timeout)


async def settled(pair: NsPair, timeout: float) -> None:
    """Every priority message A queued for B was acknowledged: no resend can still be on its way."""
    await wait_until(lambda: pair.links(pair.a)["unacknowledged"] == 0, "A's queue for B acknowledged", timeout)


def count(client: CotClient, text: str) -> int:
    return sum(1 for e in client.events if e.type == "b-t-f" and f">{text}<".encode() in e.detail.xml)


async def chat_from(client: CotClient, text: str) -> None:
    await client.send(chat("uid-a1", "A1", to_uid=None, to_cs=None, text=text))


class Flapper:
    """Takes the link down for short random windows, about 30% of the time (packet loss without netem)."""

    def __init__(self, net: VethLink, seed: int = 7) -> None:
        self._net, self._rng = net, random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            down = self._rng.uniform(0.1, 0.5)
            self._net.set_up(False)
            self._stop.wait(down)
            self._net.set_up(True)
            self._stop.wait(down * 7 / 3)

    def __enter__(self) -> Flapper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._net.set_up(True)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("impairment", ["netem", "flap"])
async def test_lossy_link_delivers_every_chat_once_and_latest_position(
    impairment: str, net: VethLink, pair_factory: Any, clients: list[object]
) -> None:
    if impairment == "netem" and not net.netem_available():
        pytest.skip("the kernel has no netem qdisc (tc qdisc add ... netem: unknown qdisc kind)")
    pair = pair_factory()
    await link_state(pair, pair.a, "up")
    a1, b1 = await client_in(pair.a), await client_in(pair.b)
    clients += [a1, b1]
    texts = [f"lossy-{i}" for i in range(30)]
    if impairment == "netem":
        net.netem("loss", "30%", "delay", "500ms")
        impaired: Any = None
    else:
        impaired = Flapper(net).__enter__()
    try:
        for i, text in enumerate(texts):
            await chat_from(a1, text)
            await a1.send(sa("uid-a1", "A1", lat=10.0 + i / 10))
            await asyncio.sleep(0.1)  # spread the traffic over several loss episodes, not a synchronisation
        for text in texts:
            await b1.wait_for(lambda e, t=text: f">{t}<".encode() in e.detail.xml, timeout=60)
        await b1.wait_for(lambda e: e.uid == "uid-a1" and e.point.lat == pytest.approx(12.9), timeout=60)
    finally:
        if impaired is not None:
            impaired.__exit__()
        net.clear()
    await settled(pair, 30)
    await chat_from(a1, "lossy-end")
    await b1.wait_for(lambda e: b">lossy-end<" in e.detail.xml, timeout=20)
    assert [count(b1, t) for t in texts] == [1] * len(texts)


@pytest.mark.timeout(PARTITION_TIMEOUT_S)
async def test_partition_then_heal_delivers_once_and_drops_what_expired(
    net: VethLink, pair_factory: Any, clients: list[object]
) -> None:
    pair = pair_factory()
    await link_state(pair, pair.a, "up")
    a1, b1 = await client_in(pair.a), await client_in(pair.b)
    clients += [a1, b1]
    await chat_from(a1, "before-partition")
    await b1.wait_for(lambda e: b">before-partition<" in e.detail.xml, timeout=20)
    net.set_up(False)
    started = time.monotonic()
    texts = [f"partition-{i}" for i in range(10)]
    for i, text in enumerate(texts):
        await chat_from(a1, text)
        await a1.send(sa("uid-a1", "A1", lat=20.0 + i))
    # A priority event whose stale passes long before the link heals.
    short = cot("GeoChat.uid-a1.short-lived", "b-t-f", how="h-g-i-g-o", lat=0.0, lon=0.0, stale_s=3.0,
                detail='<link uid="uid-a1" type="a-f-G-U-C" relation="p-p"/><remarks>short-lived</remarks>')
    await a1.send(short)
    await link_state(pair, pair.a, "down", timeout=PARTITION_S + 10)
    await asyncio.sleep(max(0.0, PARTITION_S - (time.monotonic() - started)))  # the outage itself, not a sync
    net.set_up(True)
    await link_state(pair, pair.a, "up", timeout=60)
    for text in texts:
        await b1.wait_for(lambda e, t=text: f">{t}<".encode() in e.detail.xml, timeout=30)
    await b1.wait_for(lambda e: e.uid == "uid-a1" and e.point.lat == 29.0, timeout=30)
    await settled(pair, 30)
    await chat_from(a1, "after-heal")
    await b1.wait_for(lambda e: b">after-heal<" in e.detail.xml, timeout=20)
    assert [count(b1, t) for t in texts] == [1] * len(texts)
    assert count(b1, "before-partition") == 1
    assert count(b1, "short-lived") == 0, "an event that expired during the partition was delivered"


@pytest.mark.timeout(180)
async def test_peer_killed_mid_traffic_gets_priority_messages_once_after_restart(
    net: VethLink, pair_factory: Any, clients: list[object]
) -> None:
    pair = pair_factory(b_extra="federation_connect_delay_s = 2.0")
    await link_state(pair, pair.a, "up")
    a1, b1 = await client_in(pair.a), await client_in(pair.b)
    clients += [a1, b1]
    texts = [f"kill-{i}" for i in range(40)]
    for text in texts[:20]:
        await chat_from(a1, text)
    await b1.wait_for(lambda e: b">kill-5<" in e.detail.xml, timeout=20)
    pair.b.kill()
    for i, text in enumerate(texts[20:]):
        await chat_from(a1, text)
        await a1.send(sa("uid-a1", "A1", lat=30.0 + i / 10))
    await link_state(pair, pair.a, "down", timeout=30)
    b = pair.start_b()
    b2 = await client_in(b)
    clients.append(b2)
    # Everything sent after the kill reaches the restarted server's client, once.
    for text in texts[20:]:
        await b2.wait_for(lambda e, t=text: f">{t}<".encode() in e.detail.xml, timeout=40)
    await b2.wait_for(lambda e: e.uid == "uid-a1" and e.point.lat == pytest.approx(31.9), timeout=30)
    await settled(pair, 30)
    await chat_from(a1, "after-restart")
    await b2.wait_for(lambda e: b">after-restart<" in e.detail.xml, timeout=20)
    for text in texts:
        # Each message reaches B's clients at most once in all, and none twice on either side of the kill.
        assert count(b1, text) + count(b2, text) <= 1, text
    assert [count(b2, t) for t in texts[20:]] == [1] * 20
    # Everything B accepted before the crash was acknowledged, so A did not send it again.
    assert all(count(b2, t) == 0 for t in texts[:20] if count(b1, t))


@pytest.mark.timeout(180)
async def test_budget_thins_positions_keeps_chats_and_bytes_stay_within_bound(
    pair_factory: Any, clients: list[object]
) -> None:
    rate = 2000.0
    pair = pair_factory(a_extra=f"federation_budget_bytes_per_s = {rate}\nmax_event_bytes = 4096")
    await link_state(pair, pair.a, "up")
    snap = pair.links(pair.a)
    assert snap.get("budget_bytes_per_s") == rate, f"the link does not apply federation_budget_bytes_per_s: {snap}"
    burst = int(snap["budget_burst_bytes"])
    a1, b1 = await client_in(pair.a), await client_in(pair.b)
    clients += [a1, b1]
    samples: list[tuple[float, float, int]] = []  # (request sent, answer read, bytes_sent)
    saw_thinning = False

    def sample() -> None:
        nonlocal saw_thinning
        before = time.monotonic()
        links = pair.links(pair.a)
        samples.append((before, time.monotonic(), int(links["bytes_sent"])))
        saw_thinning |= bool(links["thinning"])

    await asyncio.to_thread(sample)
    texts = [f"budget-{i}" for i in range(10)]
    sent_positions = 0
    for step in range(200):  # 20 Hz for 10 s: several times what 2000 B/s carries
        await a1.send(sa("uid-a1", "A1", lat=40.0 + step / 1000, extra="<remarks>" + "p" * 300 + "</remarks>"))
        sent_positions += 1
        if step % 20 == 0:
            await chat_from(a1, texts[step // 20])
        if step % 5 == 0:
            await asyncio.to_thread(sample)
        await asyncio.sleep(0.05)  # the traffic's own pace, not a synchronisation
    for text in texts:
        await b1.wait_for(lambda e, t=text: f">{t}<".encode() in e.detail.xml, timeout=40)
    await b1.wait_for(lambda e: e.uid == "uid-a1" and e.point.lat == pytest.approx(40.199), timeout=60)
    await asyncio.to_thread(sample)
    received = sum(1 for e in b1.events if e.uid == "uid-a1")
    assert received < sent_positions, "positions were not thinned"
    assert saw_thinning
    assert [count(b1, t) for t in texts] == [1] * len(texts)
    for i, (start_i, _, sent_i) in enumerate(samples):
        for _, end_j, sent_j in samples[i + 1:]:
            # The server's two readings lie inside [start_i, end_j], so this bounds its true window.
            assert sent_j - sent_i <= burst + rate * (end_j - start_i), (sent_i, sent_j, end_j - start_i)
