"""Three federated servers: loop prevention and de-duplication end to end.

Each server has its own CA and data dir; server ``i`` dials every neighbour started before it and
listens for the later ones. A chain (alpha - bravo - charlie) makes an event cross two links; a
triangle gives every event two paths to each other server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_federation import get_json, get_text, make_ca
from tests.support.cot_client import CotClient, chat, sa
from tests.support.poll import wait_until
from tests.support.server import ServerProcess

NAMES = ("alpha", "bravo", "charlie")
# Only a guard against a hang: three server starts (up to 30 s each when the machine is busy) come first.
HANG_GUARD_S = 150
GROUPS = '{ "__ANON__" = "__ANON__" }'


class Mesh:
    """Servers started in order along ``edges`` (pairs of indexes into :data:`NAMES`)."""

    def __init__(self, root: Path, edges: list[tuple[int, int]]) -> None:
        self.root = root
        self.cas = [make_ca(root / name) for name in NAMES]
        self.servers: list[ServerProcess] = []
        for i, name in enumerate(NAMES):
            neighbours = sorted({b if a == i else a for a, b in edges if i in (a, b)})
            lines = ["[rallypoint]", f'node_id = "{name}"', "federation_enabled = true"]
            for j in neighbours:
                lines += ["[[rallypoint.federation_peers]]", f'name = "{NAMES[j]}"', f'ca = "{self.cas[j]}"',
                          f"groups_out = {GROUPS}", f"groups_in = {GROUPS}"]
                if j < i:  # started earlier: we dial it
                    lines += ['host = "127.0.0.1"', f"port = {self.servers[j].ports['federation']}"]
            cfg = root / f"{name}.toml"
            cfg.write_text("\n".join(lines) + "\n")
            server = ServerProcess(root / name, "--config", str(cfg), "--federation-port", "1")
            self.servers.append(server)
            server.start()

    def all_links_up(self) -> bool:
        return all(link["state"] == "up" for s in self.servers for link in get_json(s, "/api/links")["links"])

    def all_links_idle(self) -> bool:
        return all(link["queue_depth"] == 0 and link["unacknowledged"] == 0
                   for s in self.servers for link in get_json(s, "/api/links")["links"])

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()


@pytest.fixture
def mesh_factory(tmp_path: Path) -> Iterator[Any]:
    made: list[Mesh] = []

    def make(edges: list[tuple[int, int]]) -> Mesh:
        made.append(Mesh(tmp_path, edges))
        return made[-1]

    try:
        yield make
    finally:
        for mesh in made:
            mesh.stop()


async def _clients(mesh: Mesh, clients: list[object]) -> list[CotClient]:
    await wait_until(mesh.all_links_up, "every link up", 30)
    out = [await CotClient.connect(s.ports["cot"]) for s in mesh.servers]
    clients.extend(out)
    return out


def _chats(client: CotClient, text: str) -> int:
    return sum(1 for e in client.events if e.type == "b-t-f" and f">{text}<".encode() in e.detail.xml)


def _duplicates(server: ServerProcess) -> float:
    found = re.search(r"^rallypoint_federation_duplicates_total ([0-9.e+]+)$", get_text(server, "/metrics"), re.M)
    assert found, "duplicates counter missing"
    return float(found.group(1))


@pytest.mark.timeout(HANG_GUARD_S)
async def test_chain_carries_an_event_two_hops_once_and_never_back(mesh_factory: Any, clients: list[object]) -> None:
    mesh = mesh_factory([(0, 1), (1, 2)])
    a1, b1, c1 = await _clients(mesh, clients)
    await a1.send(sa("uid-a1", "A1", lat=1.0))
    await a1.send(chat("uid-a1", "A1", to_uid=None, to_cs=None, text="from-alpha"))
    got = await c1.wait_uid("uid-a1", timeout=15)
    # Flow tags name both servers it passed: loop prevention and the hop count rest on them.
    assert b"alpha=" in got.detail.xml and b"bravo=" in got.detail.xml and b"charlie=" not in got.detail.xml
    await c1.wait_for(lambda e: b">from-alpha<" in e.detail.xml, timeout=15)
    # The way back: charlie's chat reaches alpha after anything charlie or bravo could have echoed.
    await c1.send(sa("uid-c1", "C1"))
    await c1.send(chat("uid-c1", "C1", to_uid=None, to_cs=None, text="from-charlie"))
    await a1.wait_for(lambda e: b">from-charlie<" in e.detail.xml, timeout=15)
    await b1.wait_for(lambda e: b">from-charlie<" in e.detail.xml, timeout=15)
    assert not a1.has(lambda e: e.uid == "uid-a1"), "alpha's own SA came back"
    assert _chats(a1, "from-alpha") == 0
    for client in (b1, c1):
        assert _chats(client, "from-alpha") == 1
        assert sum(1 for e in client.events if e.uid == "uid-a1") == 1
    assert _chats(a1, "from-charlie") == 1 and _chats(c1, "from-charlie") == 0


@pytest.mark.timeout(HANG_GUARD_S)
async def test_triangle_delivers_each_event_once_by_either_path(mesh_factory: Any, clients: list[object]) -> None:
    mesh = mesh_factory([(0, 1), (0, 2), (1, 2)])
    a1, b1, c1 = await _clients(mesh, clients)
    texts = [f"tri-{i}" for i in range(5)]
    for i, text in enumerate(texts):
        await a1.send(sa("uid-a1", "A1", lat=1.0 + i))
        await a1.send(chat("uid-a1", "A1", to_uid=None, to_cs=None, text=text))
    for client in (b1, c1):
        for text in texts:
            await client.wait_for(lambda e, t=text: f">{t}<".encode() in e.detail.xml, timeout=15)
        await client.wait_for(lambda e: e.uid == "uid-a1" and e.point.lat == 5.0, timeout=15)
    # Every copy bravo and charlie forwarded to each other has been handled: once nothing waits in any
    # queue, a chat sent afterwards on the same streams arrives after everything sent before it.
    await wait_until(mesh.all_links_idle, "federation queues drained", 15)
    await b1.send(chat("uid-b-end", "B", to_uid=None, to_cs=None, text="b-end"))
    await c1.send(chat("uid-c-end", "C", to_uid=None, to_cs=None, text="c-end"))
    for receiver, text in ((c1, "b-end"), (a1, "b-end"), (b1, "c-end"), (a1, "c-end")):
        await receiver.wait_for(lambda e, t=text: f">{t}<".encode() in e.detail.xml, timeout=15)
    for client in (b1, c1):
        assert [_chats(client, t) for t in texts] == [1] * len(texts)
        lats = [e.point.lat for e in client.events if e.uid == "uid-a1"]
        assert len(lats) == len(set(lats)), f"a position arrived twice: {lats}"
    assert _chats(c1, "b-end") == 1 and _chats(b1, "c-end") == 1
    assert _chats(a1, "b-end") == 1 and _chats(a1, "c-end") == 1
    assert not a1.has(lambda e: e.uid == "uid-a1") and all(_chats(a1, t) == 0 for t in texts)
    # The second path was taken and its copies dropped on arrival (not merely never sent).
    assert _duplicates(mesh.servers[1]) + _duplicates(mesh.servers[2]) > 0


def _one_time(messages: list[bytes]) -> list[bytes]:
    """``messages`` with the ``time`` and ``start`` of the first (a client sending faster than its clock ticks)."""
    out = messages
    for attr in (rb"time", rb"start"):
        pattern = rb" " + attr + rb'="[^"]*"'
        found = re.search(pattern, messages[0])
        assert found is not None
        out = [re.sub(pattern, found.group(0), m, count=1) for m in out]
    return out


@pytest.mark.timeout(HANG_GUARD_S)
async def test_triangle_ends_on_the_last_of_positions_sharing_one_time(
    mesh_factory: Any, clients: list[object],
) -> None:
    mesh = mesh_factory([(0, 1), (0, 2), (1, 2)])
    a1, b1, c1 = await _clients(mesh, clients)
    for message in _one_time([sa("uid-a1", "A1", lat=1.0 + i) for i in range(5)]):
        await a1.send(message)
    for client in (b1, c1):
        await client.wait_for(lambda e: e.uid == "uid-a1" and e.point.lat == 5.0, timeout=15)
    await wait_until(mesh.all_links_idle, "federation queues drained", 15)
    # Whatever each path skipped or delayed, a receiver's reports of uid-a1 only move forward.
    await b1.send(chat("uid-b-end", "B", to_uid=None, to_cs=None, text="b-end"))
    await c1.send(chat("uid-c-end", "C", to_uid=None, to_cs=None, text="c-end"))
    await c1.wait_for(lambda e: b">b-end<" in e.detail.xml, timeout=15)
    await b1.wait_for(lambda e: b">c-end<" in e.detail.xml, timeout=15)
    for client in (b1, c1):
        lats = [e.point.lat for e in client.events if e.uid == "uid-a1"]
        assert lats == sorted(set(lats)) and lats[-1] == 5.0, lats
