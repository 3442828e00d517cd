"""Two real Rallypoint servers federated over gRPC + mutual TLS on loopback.

Server A listens for federation; server B dials A (so B can be killed and restarted while A keeps
its queue for B). Each has its own data dir and CA; each trusts the other's CA for federation only.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.certs import client_context
from tests.support.cot_client import CotClient, chat, sa
from tests.support.groups import client_groups_lines
from tests.support.poll import wait_until, wait_until_sync
from tests.support.server import ServerProcess


def make_ca(data_dir: Path) -> Path:
    """A fresh CA (and server certificate) in ``data_dir/ca``; returns the CA certificate path."""
    from rallypoint.clock import SystemClock
    from rallypoint.security.ca import CertificateAuthority

    data_dir.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority.load_or_create(data_dir / "ca", clock=SystemClock(),
                                             server_names=["localhost", "127.0.0.1"])
    return ca.ca_path


def write_config(
    path: Path, *, node_id: str, peer: str, peer_ca: Path, host: str = "", port: int = 0,
    groups_out: dict[str, str] | None = None, groups_in: dict[str, str] | None = None,
    client_groups: dict[str, list[str]] | None = None, extra: str = "", compression: str = "none",
) -> Path:
    """A TOML config federating with one peer (``host`` empty: the peer dials in)."""
    out = groups_out if groups_out is not None else {"__ANON__": "__ANON__"}
    inn = groups_in if groups_in is not None else {"__ANON__": "__ANON__"}
    lines = [
        "[rallypoint]", f'node_id = "{node_id}"', "federation_enabled = true", "federation_contact_timeout_s = 3.0",
        extra,
    ]
    if client_groups:
        lines += client_groups_lines(client_groups)
    lines += ["[[rallypoint.federation_peers]]", f'name = "{peer}"', f'ca = "{peer_ca}"',
              f'compression = "{compression}"']
    if host:
        lines += [f'host = "{host}"', f"port = {port}"]
    lines.append("groups_out = {" + ", ".join(f'"{k}" = "{v}"' for k, v in out.items()) + "}")
    lines.append("groups_in = {" + ", ".join(f'"{k}" = "{v}"' for k, v in inn.items()) + "}")
    path.write_text("\n".join(lines) + "\n")
    return path


def get_json(server: ServerProcess, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.ports['http']}{path}", timeout=5) as resp:
        return json.loads(resp.read())


def get_text(server: ServerProcess, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.ports['http']}{path}", timeout=5) as resp:
        return str(resp.read().decode())


def wait_link(server: ServerProcess, state: str, timeout: float = 20.0) -> dict[str, Any]:
    """Poll ``/api/links`` until the (only) link reaches ``state``."""
    def reached() -> dict[str, Any] | None:
        links = get_json(server, "/api/links")["links"]
        return links[0] if links and links[0]["state"] == state else None

    return wait_until_sync(reached, f"link {state}", timeout)


class Pair:
    def __init__(self, root: Path, *, b_extra: str = "", host: str = "127.0.0.1", compression: str = "none") -> None:
        self.compression = compression
        self.a_dir, self.b_dir = root / "a", root / "b"
        a_ca, b_ca = make_ca(self.a_dir), make_ca(self.b_dir)
        groups = {"__ANON__": "__ANON__", "Blue": "Blue"}
        self.a_cfg = write_config(
            root / "a.toml", node_id="alpha", peer="bravo", peer_ca=b_ca, groups_out=groups, groups_in=groups,
            client_groups={"red1": ["Red"], "blue1": ["Blue"]}, compression=compression,
        )
        self.b_ca, self.a_ca, self.host, self.b_extra, self.root = b_ca, a_ca, host, b_extra, root
        self.a = ServerProcess(self.a_dir, "--config", str(self.a_cfg), "--federation-port", "1")
        self.b: ServerProcess | None = None

    def start_a(self) -> None:
        self.a.start()

    def start_b(self) -> ServerProcess:
        groups = {"__ANON__": "__ANON__", "Blue": "Blue"}
        cfg = write_config(
            self.root / "b.toml", node_id="bravo", peer="alpha", peer_ca=self.a_ca, host=self.host,
            port=self.a.ports["federation"], groups_out=groups, groups_in=groups,
            client_groups={"red2": ["Red"], "blue2": ["Blue"]}, extra=self.b_extra, compression=self.compression,
        )
        self.b = ServerProcess(self.b_dir, "--config", str(cfg))
        self.b.start()
        return self.b

    def stop(self) -> None:
        for proc in (self.b, self.a):
            if proc is not None:
                proc.stop()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    p = Pair(tmp_path)
    p.start_a()
    p.start_b()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def gzip_pair(tmp_path: Path) -> Iterator[Pair]:
    """Two servers whose link compresses every message both ways (standard gRPC gzip)."""
    p = Pair(tmp_path, compression="gzip")
    p.start_a()
    p.start_b()
    try:
        yield p
    finally:
        p.stop()


def _chats(client: CotClient, text: str) -> int:
    return sum(1 for raw in client.raw if text.encode() in raw and b'type="b-t-f"' in raw)


async def test_sa_and_chat_cross_both_ways_without_echo(pair: Pair, clients: list[object]) -> None:
    assert pair.b is not None
    wait_link(pair.a, "up")
    wait_link(pair.b, "up")
    a1 = await CotClient.connect(pair.a.ports["cot"])
    b1 = await CotClient.connect(pair.b.ports["cot"])
    clients += [a1, b1]
    await a1.send(sa("uid-a1", "A1"))
    got = await b1.wait_uid("uid-a1", timeout=10)
    assert got.detail.callsign == "A1"
    assert b"_flow-tags_" in got.detail.xml and b"alpha=" in got.detail.xml
    await b1.send(sa("uid-b1", "B1"))
    await a1.wait_uid("uid-b1", timeout=10)
    await a1.send(chat("uid-a1", "A1", to_uid=None, to_cs=None, text="hello-from-a"))
    await b1.wait_for(lambda e: e.type == "b-t-f" and b"hello-from-a" in e.detail.xml, timeout=10)
    await b1.send(chat("uid-b1", "B1", to_uid=None, to_cs=None, text="hello-from-b"))
    await a1.wait_for(lambda e: e.type == "b-t-f" and b"hello-from-b" in e.detail.xml, timeout=10)
    # A marker that went A -> B -> back: if anything echoed, it arrived before this round trip ended.
    await a1.send(sa("uid-a1", "A1", lat=40.0))
    await b1.wait_for(lambda e: e.uid == "uid-a1" and e.point.lat == 40.0, timeout=10)
    await b1.send(chat("uid-b1", "B1", to_uid=None, to_cs=None, text="round-trip-end"))
    await a1.wait_for(lambda e: b"round-trip-end" in e.detail.xml, timeout=10)
    assert not a1.has(lambda e: e.uid == "uid-a1"), "A's own SA echoed back from B"
    assert _chats(a1, "hello-from-a") == 0
    assert _chats(b1, "hello-from-a") == 1
    links = get_json(pair.a, "/api/links")["links"]
    assert links[0]["name"] == "bravo" and links[0]["state"] == "up"
    assert links[0]["bytes_sent"] > 0 and links[0]["bytes_received"] > 0
    assert links[0]["thinning"] is False
    metrics = get_text(pair.a, "/metrics")
    assert 'rallypoint_federation_link_state{link="bravo",state="up"} 1.0' in metrics
    assert 'rallypoint_federation_link_state{link="bravo",state="down"} 0.0' in metrics
    assert 'rallypoint_federation_link_thinning{link="bravo"} 0.0' in metrics
    sent = re.search(r'rallypoint_federation_link_bytes_sent_total\{link="bravo"\} ([0-9.e+]+)', metrics)
    assert sent and float(sent.group(1)) > 0
    assert re.search(r'rallypoint_federation_link_last_contact_age_seconds\{link="bravo"\} [0-9.e+]+', metrics)


async def test_directed_chat_reaches_each_remote_contact(gzip_pair: Pair, clients: list[object]) -> None:
    pair = gzip_pair
    assert pair.b is not None
    wait_link(pair.a, "up")
    wait_link(pair.b, "up")
    a1 = await CotClient.connect(pair.a.ports["cot"])
    b1 = await CotClient.connect(pair.b.ports["cot"])
    b2 = await CotClient.connect(pair.b.ports["cot"])
    clients += [a1, b1, b2]
    await b1.send(sa("uid-b1", "B1"))
    await b2.send(sa("uid-b2", "B2"))
    await a1.wait_uid("uid-b1", timeout=10)
    await a1.wait_uid("uid-b2", timeout=10)
    await a1.send(sa("uid-a1", "A1"))
    # Addressed by callsign and by uid to two different clients behind the same link.
    await a1.send(chat("uid-a1", "A1", to_uid="uid-b2", to_cs="B2", text="to-b2-by-callsign"))
    await a1.send(chat("uid-a1", "A1", to_uid="uid-b1", to_cs="B1", text="to-b1-by-uid", marti=False))
    await b2.wait_for(lambda e: e.type == "b-t-f" and b"to-b2-by-callsign" in e.detail.xml, timeout=10)
    await b1.wait_for(lambda e: e.type == "b-t-f" and b"to-b1-by-uid" in e.detail.xml, timeout=10)
    assert not a1.has(lambda e: e.type == "b-t-f-s"), "remote contacts must not look unreachable"


async def test_group_mapping_limits_what_crosses(pair: Pair, clients: list[object]) -> None:
    assert pair.b is not None
    wait_link(pair.b, "up")
    red1 = await CotClient.connect(pair.a.ports["tls"], ssl_context=client_context(pair.a_dir, "red1", pair.root))
    blue1 = await CotClient.connect(pair.a.ports["tls"], ssl_context=client_context(pair.a_dir, "blue1", pair.root))
    red2 = await CotClient.connect(pair.b.ports["tls"], ssl_context=client_context(pair.b_dir, "red2", pair.root))
    blue2 = await CotClient.connect(pair.b.ports["tls"], ssl_context=client_context(pair.b_dir, "blue2", pair.root))
    clients += [red1, blue1, red2, blue2]
    await red1.send(sa("uid-red1", "RED1"))
    await blue1.send(sa("uid-blue1", "BLUE1"))
    await blue2.wait_uid("uid-blue1", timeout=10)
    # Red is not mapped: the Blue SA sent after it crossed, so Red's had its chance and did not.
    assert not red2.has(lambda e: e.uid == "uid-red1")
    assert not blue2.has(lambda e: e.uid == "uid-red1")
    assert not red2.has(lambda e: e.uid == "uid-blue1")


async def test_chat_sent_while_peer_down_arrives_once_after_restart(tmp_path: Path, clients: list[object]) -> None:
    pair = Pair(tmp_path, b_extra="federation_connect_delay_s = 2.0")
    pair.start_a()
    try:
        b = pair.start_b()
        wait_link(pair.a, "up")
        a1 = await CotClient.connect(pair.a.ports["cot"])
        clients.append(a1)
        b1 = await CotClient.connect(b.ports["cot"])
        await a1.send(sa("uid-a1", "A1", lat=1.0))
        await b1.wait_uid("uid-a1", timeout=10)
        await b1.close()
        assert b.proc is not None
        b.proc.kill()  # kill -9: no goodbye, no flush
        b.proc.wait()
        wait_link(pair.a, "down")
        texts = [f"while-down-{i}" for i in range(5)]
        for text in texts:
            await a1.send(chat("uid-a1", "A1", to_uid=None, to_cs=None, text=text))
        for lat in (2.0, 3.0, 4.0):
            await a1.send(sa("uid-a1", "A1", lat=lat))
        await wait_until(lambda: get_json(pair.a, "/api/links")["links"][0]["queue_depth"] >= len(texts),
                         "chats queued for the peer")
        b = pair.start_b()
        b2 = await CotClient.connect(b.ports["cot"])
        clients.append(b2)
        for text in texts:
            await b2.wait_for(lambda e, t=text: b"%s<" % t.encode() in e.detail.xml, timeout=20)
        await b2.wait_for(lambda e: e.uid == "uid-a1" and e.point.lat == 4.0, timeout=20)
        # Everything acknowledged: nothing left to resend, so no duplicates can still be on the way.
        await wait_until(lambda: get_json(pair.a, "/api/links")["links"][0]["unacknowledged"] == 0,
                         "everything acknowledged")
        await a1.send(chat("uid-a1", "A1", to_uid=None, to_cs=None, text="after-restart"))
        await b2.wait_for(lambda e: b"after-restart" in e.detail.xml, timeout=10)
        for text in texts:
            assert sum(1 for e in b2.events if b"%s<" % text.encode() in e.detail.xml) == 1, text
    finally:
        pair.stop()
