"""Group-aware routing over real TLS: clients only see traffic from groups they share."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.certs import client_context
from tests.support.cot_client import CotClient, cot, sa
from tests.support.groups import serve_with_groups
from tests.support.server import ServerProcess


@pytest.fixture
def group_server(data_dir: Path) -> Iterator[ServerProcess]:
    groups = {"red1": ["Red"], "red2": ["Red"], "blue1": ["Blue"], "both": ["Red", "Blue"]}
    with serve_with_groups(data_dir, groups) as proc:
        yield proc


async def test_groups_isolate_traffic_over_tls(
    group_server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    port = group_server.ports["tls"]
    red1 = await CotClient.connect(port, ssl_context=client_context(group_server, "red1", tmp_path))
    red2 = await CotClient.connect(port, ssl_context=client_context(group_server, "red2", tmp_path))
    blue1 = await CotClient.connect(port, ssl_context=client_context(group_server, "blue1", tmp_path))
    both = await CotClient.connect(port, ssl_context=client_context(group_server, "both", tmp_path))
    anon = await CotClient.connect(group_server.ports["cot"])
    clients.extend([red1, red2, blue1, both, anon])

    await red1.send(sa("uid-red1", "RED1"))
    await red2.wait_uid("uid-red1")
    await both.wait_uid("uid-red1")
    await blue1.send(sa("uid-blue1", "BLUE1"))
    await both.wait_uid("uid-blue1")
    await anon.send(sa("uid-anon", "ANON"))

    # Explicitly addressed traffic is still filtered by group reachability.
    await red1.send(cot("red-to-blue", "b-m-p-s-m", detail='<marti><dest callsign="BLUE1"/></marti>'))
    # dest@group reaches every reader of that group the sender may write to.
    await both.send(cot("to-group-red", "b-m-p-s-m", detail='<marti><dest group="Red"/></marti>'))
    await red1.wait_uid("to-group-red")
    await red2.wait_uid("to-group-red")

    await blue1.barrier(both)
    await red2.barrier(red1)
    await anon.barrier(anon_peer := await CotClient.connect(group_server.ports["cot"]))
    clients.append(anon_peer)
    assert not blue1.has(lambda e: e.uid in ("uid-red1", "red-to-blue", "to-group-red", "uid-anon"))
    assert not red2.has(lambda e: e.uid in ("uid-blue1", "uid-anon"))
    assert not anon.has(lambda e: e.uid in ("uid-red1", "uid-blue1", "to-group-red"))
    # Late joiner in Blue sees Blue's picture only.
    blue2_ctx = client_context(group_server, "blue1", tmp_path / "again")
    blue_late = await CotClient.connect(port, ssl_context=blue2_ctx)
    clients.append(blue_late)
    await blue_late.wait_uid("uid-blue1")
    await blue_late.barrier(both)
    assert not blue_late.has(lambda e: e.uid in ("uid-red1", "uid-anon", "to-group-red"))


def _add_user(data_dir: Path, name: str, *groups: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "rallypoint.cli.main", "user", "add", name, *groups, "--data-dir", str(data_dir)],
        check=True, capture_output=True, text=True,
    )


async def test_write_and_read_groups_can_differ(data_dir: Path, tmp_path: Path, clients: list[object]) -> None:
    # TAK IN (write) and OUT (read) groups differ: "relay" writes to A but reads only B.
    _add_user(data_dir, "relay", "--in", "A", "--out", "B")
    _add_user(data_dir, "alpha", "--group", "A")
    _add_user(data_dir, "alpha2", "--group", "A")
    _add_user(data_dir, "bravo", "--group", "B")
    _add_user(data_dir, "bravo2", "--group", "B")
    server = ServerProcess(data_dir)
    server.start()
    try:
        port = server.ports["tls"]

        async def connect(name: str) -> CotClient:
            client = await CotClient.connect(port, ssl_context=client_context(server, name, tmp_path / name))
            clients.append(client)
            return client

        relay, alpha, alpha2, bravo, bravo2 = [
            await connect(n) for n in ("relay", "alpha", "alpha2", "bravo", "bravo2")
        ]

        # relay's SA reaches the A readers ...
        await relay.send(sa("uid-relay", "RELAY"))
        await alpha.wait_uid("uid-relay")
        await alpha2.wait_uid("uid-relay")
        # ... and not the B-only readers (routing of that event is done: alpha has it; bravo2's
        # marker, sent afterwards, reaches bravo after anything earlier would have).
        await bravo.barrier(bravo2)
        assert not bravo.has(lambda e: e.uid == "uid-relay")

        # relay receives B traffic ...
        await bravo.send(sa("uid-bravo", "BRAVO"))
        await relay.wait_uid("uid-bravo")
        # ... and not A-only traffic (alpha2 has alpha's SA, so it was routed; bravo's marker follows).
        await alpha.send(sa("uid-alpha", "ALPHA"))
        await alpha2.wait_uid("uid-alpha")
        await relay.barrier(bravo)
        assert not relay.has(lambda e: e.uid == "uid-alpha")
        # A readers never see B traffic either: the asymmetry is relay's alone.
        await alpha.barrier(alpha2)
        assert not alpha.has(lambda e: e.uid == "uid-bravo")
    finally:
        server.stop()
