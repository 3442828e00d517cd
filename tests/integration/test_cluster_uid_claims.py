"""Two principals claiming one device uid at the same moment on two nodes: exactly one keeps it, everywhere.

Three real nodes on one nats-server. For each of several uids, alice (on node A) and mallory (on
node B) send their first device SA for it at once, so both nodes may accept their own client before
either hears of the other. The cluster's decision (the first key created in ``rp_rallypoint_uids``)
then holds on every node: the other principal is refused ``spoofed_uid`` (its session closed, or its
SA refused), none of its reports reaches a receiver on any node (not even the first one, which its
node held while the claim was undecided), and a third node refuses it too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.js.errors
import pytest

from rallypoint.bus.latest import key_of
from tests.support.certs import client_context
from tests.support.cot_client import CotClient, sa
from tests.support.nodes import Cluster, running_cluster
from tests.support.poll import wait_until, wait_until_async
from tests.support.server import ServerProcess

TIMEOUT_S = 20.0
UIDS = [f"ANDROID-contested-{i}" for i in range(4)]
CALLSIGNS = {"alice": "ALICE", "mallory": "MALLORY"}


@pytest.fixture
def cluster(tmp_path: Path, ca_template: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path / "cluster", ca_template) as running:
        yield running


def _held_and_dropped(node: ServerProcess, uid: str) -> int:
    """How many reports of ``uid`` ``node`` held for its claim and dropped when the claim was lost."""
    return sum(
        int(line.get("held_reports_dropped", 0))
        for line in list(node.lines)
        if line.get("msg") == "uid held by another principal in the cluster" and line.get("uid") == uid
    )


def _refused(node: ServerProcess, uid: str) -> bool:
    return any(
        line.get("msg") == "input rejected"
        and line.get("reason") == "spoofed_uid"
        and f"uid {uid!r} is held by another principal" in str(line.get("detail", ""))
        for line in list(node.lines)
    )


async def _holders(url: str) -> dict[str, str]:
    nc = await nats.connect(url)
    try:
        kv = await nc.jetstream().key_value("rp_rallypoint_uids")
        return {uid: (await kv.get(key_of(uid))).value.decode() for uid in UIDS}  # type: ignore[union-attr]
    finally:
        await nc.close()


async def _send_quietly(client: CotClient, data: bytes) -> None:
    """Send unless the server closed the connection (a loser's session may be gone already)."""
    try:
        await client.send(data)
    except (ConnectionError, OSError):
        pass


async def test_simultaneous_claims_of_one_uid_on_two_nodes_leave_exactly_one_holder(
    cluster: Cluster,
    tmp_path: Path,
    clients: list[object],
) -> None:
    async def tls(node: int, name: str, tag: str) -> CotClient:
        ctx = client_context(cluster.dirs[node], name, tmp_path / f"{name}-{node}-{tag}")
        client = await CotClient.connect(cluster.port(node, "tls"), ssl_context=ctx)
        clients.append(client)
        return client

    # A receiver on every node: the loser's node, the holder's node and a third one.
    watchers = [await tls(node, "watcher", f"w{node}") for node in range(3)]
    watcher = watchers[2]
    # One connection per uid and principal: a session binds one device uid.
    conns = {(uid, name): await tls(node, name, uid) for uid in UIDS for node, name in ((0, "alice"), (1, "mallory"))}
    home = {"alice": cluster.nodes[0], "mallory": cluster.nodes[1]}
    await asyncio.gather(*(client.send(sa(uid, f"{CALLSIGNS[name]}-1")) for (uid, name), client in conns.items()))

    # The cluster records one holder per uid; the other principal's node refuses it (closing its
    # session if it had accepted it before the decision, or refusing its SA if it heard first).
    holders = await _wait_holders(cluster.nats.url)
    losers = {uid: "mallory" if holder == "alice" else "alice" for uid, holder in holders.items()}
    assert set(holders.values()) <= {"alice", "mallory"}
    for uid, loser in losers.items():
        await wait_until(
            lambda uid=uid, loser=loser: _refused(home[loser], uid),  # type: ignore[misc]
            f"{loser}'s node refusing {uid}",
            timeout=TIMEOUT_S,
        )
        assert not _refused(home[holders[uid]], uid), f"the holder of {uid} was refused too"

    # The holder's first report was held until its claim was won, then released to every node.
    for uid in UIDS:
        first = f"{CALLSIGNS[holders[uid]]}-1"
        for w in watchers:
            await w.wait_for(lambda e, uid=uid, first=first: e.uid == uid and e.detail.callsign == first, TIMEOUT_S)

    # The loser's first report never reached anyone. Proof of arrival order: a position sent after the
    # decision through the loser's node, on the same path (core NATS from that node, in order), has
    # reached every receiver, so the loser's report would have reached them before it.
    for uid in UIDS:
        loser = losers[uid]
        relay = await tls(0 if loser == "alice" else 1, "watcher", f"relay-{uid}")
        for w in watchers:
            await w.barrier(relay, TIMEOUT_S)
            assert not w.has(
                lambda e, uid=uid, loser=loser: e.uid == uid and e.detail.callsign == f"{CALLSIGNS[loser]}-1"
            ), f"{loser}'s first report of {uid} reached a receiver"
    # The race this test is about happened: some loser's node accepted its client's first report before
    # the decision (and held it); the others heard the holder first and refused it outright.
    assert any(_held_and_dropped(home[losers[uid]], uid) for uid in UIDS), "no loser's report was held"

    # From now on only the holder is heard: the loser's next report reaches nobody.
    for uid in UIDS:
        winner, loser = conns[(uid, holders[uid])], conns[(uid, losers[uid])]
        await _send_quietly(loser, sa(uid, f"{CALLSIGNS[losers[uid]]}-2"))
        if not loser.closed.is_set():
            await watcher.barrier(loser, TIMEOUT_S)  # the refused SA was processed before this
        await winner.send(sa(uid, f"{CALLSIGNS[holders[uid]]}-2"))
        await watcher.wait_for(
            lambda e, uid=uid: e.uid == uid and e.detail.callsign == f"{CALLSIGNS[holders[uid]]}-2", TIMEOUT_S
        )
        assert not watcher.has(lambda e, uid=uid: e.uid == uid and e.detail.callsign == f"{CALLSIGNS[losers[uid]]}-2")

    # The third node agrees: the loser is refused there as well.
    for uid in UIDS:
        again = await tls(2, losers[uid], f"{uid}-again")
        await again.send(sa(uid, "AGAIN"))
        await wait_until(
            lambda uid=uid: _refused(cluster.nodes[2], uid),
            f"node C refusing {uid}",  # type: ignore[misc]
            timeout=TIMEOUT_S,
        )
    assert not watcher.has(lambda e: e.detail.callsign == "AGAIN")


async def _wait_holders(url: str) -> dict[str, str]:
    """Every contested uid's holder once each has one (the claims are written within a round trip)."""

    async def holders() -> dict[str, str] | None:
        try:
            return await _holders(url)
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.NotFoundError):
            return None

    return await wait_until_async(holders, "every contested uid's holder", timeout=TIMEOUT_S, interval=0.1)


async def test_with_nats_away_a_new_clients_reports_wait_two_seconds_then_the_node_serves_them(
    cluster: Cluster,
    tmp_path: Path,
    clients: list[object],
) -> None:
    async def tls(name: str, tag: str) -> CotClient:
        client = await CotClient.connect(
            cluster.port(0, "tls"), ssl_context=client_context(cluster.dirs[0], name, tmp_path / f"{name}-{tag}")
        )
        clients.append(client)
        return client

    uid = "ANDROID-offline"
    watcher, alice = await tls("watcher", "w"), await tls("alice", "a")
    await asyncio.to_thread(cluster.nats.stop)
    try:
        sent = time.monotonic()
        await alice.send(sa(uid, "ALICE-OFF"))
        await watcher.wait_for(lambda e: e.uid == uid, TIMEOUT_S)
        # Held while the claim could not be decided, then released: the node decides alone and goes on.
        assert time.monotonic() - sent >= 1.9, "released before the hold's 2 s were up"
        assert any(
            line.get("msg") == "uid claim undecided: its reports released, this node decides alone"
            and line.get("uid") == uid
            for line in list(cluster.nodes[0].lines)
        )
        await alice.send(sa(uid, "ALICE-OFF-2"))  # undecided and released: not held any more
        await watcher.wait_for(lambda e: e.detail.callsign == "ALICE-OFF-2", TIMEOUT_S)
    finally:
        await asyncio.to_thread(cluster.nats.start)

    # NATS back: the claim that waited is recorded for alice.
    async def holder() -> str | None:
        try:
            nc = await nats.connect(cluster.nats.url)
        except (nats.errors.Error, OSError):
            return None  # NATS still starting
        try:
            entry = await (await nc.jetstream().key_value("rp_rallypoint_uids")).get(key_of(uid))
            return entry.value.decode() if entry.value else None
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.NotFoundError, nats.errors.Error):
            return None
        finally:
            await nc.close()

    assert await wait_until_async(holder, "alice's claim recorded", timeout=TIMEOUT_S, interval=0.2) == "alice"
