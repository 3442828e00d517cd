"""Federation over an impaired link built in userspace: the stand-in for kernel netem where it is unavailable.

``test_federation_netem`` applies ``tc netem loss 30% delay 500ms`` between two network namespaces,
and skips where the kernel has no netem qdisc (or namespaces are unavailable). This test runs the
same scenario everywhere on loopback: server B dials server A's federation port through
``tests.support.impair.ImpairedLink``, which delivers every chunk 500 ms late (order kept per
direction) and, since single TLS bytes cannot be dropped, emulates loss by resetting the link at
random moments so it is unusable about 30% of the time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rallypoint.model.cot import CotEvent
from tests.integration.test_federation import Pair, get_json, wait_link, write_config
from tests.support.cot_client import CotClient, chat, sa
from tests.support.impair import ImpairedLink
from tests.support.poll import wait_until
from tests.support.server import ServerProcess

# B's reconnect backoff is capped so that a run of failed handshakes (each reset during a 1 s
# round trip) does not push the next attempt past the test's deadline.
B_EXTRA = "federation_backoff_max_s = 2.0"
SEED = 20261125


class ProxiedPair(Pair):
    """A :class:`Pair` whose server B dials A's federation port through an impairment proxy."""

    def start_b_via(self, port: int) -> ServerProcess:
        """Start B with its peer ``alpha`` at ``127.0.0.1:port`` (the proxy) instead of A itself."""
        groups = {"__ANON__": "__ANON__", "Blue": "Blue"}
        cfg = write_config(
            self.root / "b.toml", node_id="bravo", peer="alpha", peer_ca=self.a_ca, host=self.host, port=port,
            groups_out=groups, groups_in=groups, extra=self.b_extra, compression=self.compression,
        )
        self.b = ServerProcess(self.b_dir, "--config", str(cfg))
        self.b.start()
        return self.b


def count(client: CotClient, text: str) -> int:
    return sum(1 for e in client.events if e.type == "b-t-f" and f">{text}<".encode() in e.detail.xml)


def carries(text: str) -> Callable[[CotEvent], bool]:
    """A predicate: the event carries chat ``text``."""
    return lambda e: f">{text}<".encode() in e.detail.xml


async def chat_from(client: CotClient, text: str) -> None:
    await client.send(chat("uid-a1", "A1", to_uid=None, to_cs=None, text=text))


@pytest.mark.timeout(180)
async def test_impaired_link_delivers_every_chat_once_and_latest_position(
    tmp_path: Path, clients: list[object]
) -> None:
    pair = ProxiedPair(tmp_path, b_extra=B_EXTRA)
    link: ImpairedLink | None = None
    try:
        await asyncio.to_thread(pair.start_a)
        link = ImpairedLink("127.0.0.1", pair.a.ports["federation"], delay_s=0.5, outage_p=0.3,
                            outage_s=(0.5, 2.0), seed=SEED)
        port = await link.start()
        b = await asyncio.to_thread(pair.start_b_via, port)
        # wait_link blocks: run it off the loop so the proxy keeps forwarding meanwhile.
        await asyncio.to_thread(wait_link, pair.a, "up", 30.0)
        a1 = await CotClient.connect(pair.a.ports["cot"])
        b1 = await CotClient.connect(b.ports["cot"])
        clients += [a1, b1]

        # Delay only: one chat's end-to-end time shows the proxy's 500 ms is on the path.
        sent = time.monotonic()
        await chat_from(a1, "impaired-probe")
        await b1.wait_for(lambda e: b">impaired-probe<" in e.detail.xml, timeout=20)
        probe_latency = time.monotonic() - sent

        texts = [f"impaired-{i}" for i in range(30)]
        link.impair_on()
        try:
            for i, text in enumerate(texts):
                await chat_from(a1, text)
                await a1.send(sa("uid-a1", "A1", lat=10.0 + i / 10))
                await asyncio.sleep(0.1)  # ~10 updates/s spread over several outages, not a synchronisation
            for text in texts:
                await b1.wait_for(carries(text), timeout=60)
            await b1.wait_for(lambda e: e.uid == "uid-a1" and e.point.lat == pytest.approx(12.9), timeout=60)
        finally:
            await link.impair_off()

        # Nothing left for A to resend, then a marker: any duplicate would have arrived before it.
        await wait_until(lambda: get_json(pair.a, "/api/links")["links"][0]["unacknowledged"] == 0,
                   "A's queue for B acknowledged", 30)
        await chat_from(a1, "impaired-end")
        await b1.wait_for(lambda e: b">impaired-end<" in e.detail.xml, timeout=20)

        assert [count(b1, t) for t in texts] == [1] * len(texts)
        assert count(b1, "impaired-probe") == 1
        counters = link.counters
        assert counters.outages >= 1 and counters.resets >= 1, counters
        assert counters.connections >= 2, f"B never reconnected through the proxy: {counters}"
        assert counters.min_delay_s is not None and counters.min_delay_s >= 0.5, counters
        assert probe_latency >= 0.5, probe_latency
    finally:
        if link is not None:
            await link.close()
        await asyncio.to_thread(pair.stop)
