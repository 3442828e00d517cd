"""Identity binding over TLS: a client cannot publish SA for a uid bound to someone else."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.support.certs import client_context
from tests.support.cot_client import CotClient, cot, sa
from tests.support.server import ServerProcess


def _spoofs(server: ServerProcess) -> float:
    text = httpx.get(f"http://127.0.0.1:{server.ports['http']}/metrics", timeout=5).text
    pattern = r'rallypoint_events_rejected_total\{reason="spoofed_uid"[^}]*\} (\S+)'
    return sum(float(v) for v in re.findall(pattern, text))


async def test_spoofed_uids_are_rejected_and_counted(
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

    # Mallory impersonates Alice (same uid), and tries a second self-SA under a new uid.
    await mallory.send(sa("ANDROID-alice", "ALICE", lat=1.0))
    await mallory.send(sa("ANDROID-other", "OTHER"))
    # Nor may she publish anything else under Alice's uid.
    await mallory.send(cot("ANDROID-alice", "b-m-p-s-m"))
    await mallory.send(cot("mallory-marker", "b-m-p-s-m"))  # her own items are fine
    await bob.wait_uid("mallory-marker")
    assert not bob.has(lambda e: e.uid == "ANDROID-alice" and e.point.lat == 1.0)
    assert not bob.has(lambda e: e.uid == "ANDROID-other")
    assert not bob.has(lambda e: e.uid == "ANDROID-alice" and e.type == "b-m-p-s-m")
    assert _spoofs(server) >= 3

    # Alice reconnects with her own certificate and keeps her uid.
    await alice.close()
    alice2 = await CotClient.connect(server.ports["tls"], ssl_context=client_context(server, "alice", tmp_path / "2"))
    clients.append(alice2)
    await alice2.send(sa("ANDROID-alice", "ALICE", lat=2.0))
    await bob.wait_for(lambda e: e.uid == "ANDROID-alice" and e.point.lat == 2.0)
