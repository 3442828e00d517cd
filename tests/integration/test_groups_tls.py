"""Group-aware routing over real TLS: clients only see traffic from groups they share."""

from __future__ import annotations

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
