"""A node that lost its federation queue file or restored an older one, and connection failures that say why.

Same two-server setup as ``test_federation.py`` (A listens, B dials A). B's ``federation.db`` is
deleted while it is stopped, as after a replaced disk: it numbers its messages from 1 again, under a
new queue epoch, and A must accept them rather than take them for retransmissions. Or it is replaced
by a copy taken earlier, as after a restore from an older backup: same epoch, older numbers; B learns
A's mark when the link comes up, starts a new epoch, and A again accepts every new message once.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from tests.integration.test_federation import Pair, get_json, make_ca, wait_link, write_config
from tests.support.cot_client import CotClient, chat
from tests.support.federation import copy_queue
from tests.support.poll import wait_until
from tests.support.server import ServerProcess


def _chats(client: CotClient, text: str) -> int:
    return sum(1 for e in client.events if e.type == "b-t-f" and f">{text}<".encode() in e.detail.xml)


async def _send_and_receive(sender: CotClient, receiver: CotClient, texts: list[str]) -> None:
    for text in texts:
        await sender.send(chat("uid-b1", "B1", to_uid=None, to_cs=None, text=text))
    for text in texts:
        await receiver.wait_for(lambda e, t=text: e.type == "b-t-f" and f">{t}<".encode() in e.detail.xml,
                                timeout=20)


async def _all_acknowledged(server: ServerProcess) -> None:
    await wait_until(lambda: get_json(server, "/api/links")["links"][0]["unacknowledged"] == 0,
                     "every message acknowledged", 20)


@pytest.mark.timeout(120)
async def test_after_the_sender_lost_its_queue_file_every_new_message_arrives_once(
    tmp_path: Path, clients: list[object]
) -> None:
    pair = Pair(tmp_path)
    pair.start_a()
    try:
        b = pair.start_b()
        wait_link(pair.a, "up")
        a1 = await CotClient.connect(pair.a.ports["cot"])
        clients.append(a1)
        b1 = await CotClient.connect(b.ports["cot"])
        old = [f"before-reset-{i}" for i in range(3)]
        await _send_and_receive(b1, a1, old)
        await _all_acknowledged(b)
        await b1.close()
        b.stop()
        wait_link(pair.a, "down")
        # The disk is replaced: B's queue, its sequence counters and its epoch are gone.
        for path in (pair.b_dir / "federation").glob("federation.db*"):
            path.unlink()
        b = pair.start_b()
        wait_link(pair.a, "up")
        b2 = await CotClient.connect(b.ports["cot"])
        clients.append(b2)
        new = [f"after-reset-{i}" for i in range(3)]
        await _send_and_receive(b2, a1, new)
        # Nothing is left to resend: any duplicate would already be here.
        await _all_acknowledged(b)
        for text in old + new:
            assert _chats(a1, text) == 1, text
        resets = [line for line in pair.a.lines if str(line.get("msg", "")).startswith("peer bravo queue reset")]
        assert len(resets) == 1 and resets[0]["level"] == "warning"
        assert resets[0]["msg"].startswith("peer bravo queue reset (new epoch ")
    finally:
        pair.stop()


async def _session(pair: Pair, a1: CotClient, texts: list[str]) -> None:
    """Start B, send ``texts`` from one of its clients, wait until A's client has them and B has their acks."""
    b = pair.start_b()
    wait_link(pair.a, "up")
    b1 = await CotClient.connect(b.ports["cot"])
    try:
        await _send_and_receive(b1, a1, texts)
        await _all_acknowledged(b)
    finally:
        await b1.close()


@pytest.mark.timeout(180)
async def test_after_the_sender_restored_an_older_queue_file_every_new_message_arrives_once(
    tmp_path: Path, clients: list[object]
) -> None:
    pair = Pair(tmp_path)
    pair.start_a()
    queue, backup = pair.b_dir / "federation", tmp_path / "backup"
    try:
        a1 = await CotClient.connect(pair.a.ports["cot"])
        clients.append(a1)
        first = [f"first-{i}" for i in range(2)]
        await _session(pair, a1, first)
        assert pair.b is not None
        pair.b.stop()
        wait_link(pair.a, "down")
        copy_queue(queue, backup)
        # Acknowledged after the backup was taken: A's mark for B's queue moves past the copy's numbers.
        later = [f"later-{i}" for i in range(3)]
        await _session(pair, a1, later)
        pair.b.stop()
        wait_link(pair.a, "down")
        copy_queue(backup, queue)
        new = [f"after-restore-{i}" for i in range(5)]
        await _session(pair, a1, new)
        for text in first + later + new:
            assert _chats(a1, text) == 1, text
        restored = [line for line in pair.b.lines
                    if str(line.get("msg", "")).startswith("federation queue for peer alpha restored")]
        assert len(restored) == 1 and restored[0]["level"] == "warning"
        match = re.fullmatch(
            r"federation queue for peer alpha restored from an older state "
            r"\(peer acknowledged (\d+), queue at (\d+)\); new epoch ([0-9a-f]{16})", restored[0]["msg"])
        assert match is not None, restored[0]["msg"]
        assert int(match[1]) > int(match[2])
        resets = [line["msg"] for line in pair.a.lines if str(line.get("msg", "")).startswith("peer bravo queue reset")]
        assert resets == [f"peer bravo queue reset (new epoch {match[3]})"]
    finally:
        pair.stop()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refused_connection_is_logged_with_its_cause(tmp_path: Path) -> None:
    peer_ca = make_ca(tmp_path / "peer")
    cfg = write_config(tmp_path / "n.toml", node_id="november", peer="nobody", peer_ca=peer_ca,
                       host="127.0.0.1", port=_closed_port())
    server = ServerProcess(tmp_path / "n", "--config", str(cfg))
    server.start()
    try:
        line = server.wait_for_log("federation connect failed", timeout=20, peer="nobody")
    finally:
        server.stop()
    assert line["reason"].startswith("AioRpcError: UNAVAILABLE: ")
    assert "Connection refused" in line["reason"]


def test_a_peer_with_an_untrusted_certificate_is_logged_with_its_cause(tmp_path: Path) -> None:
    # B trusts a CA that did not issue A's server certificate: the TLS handshake fails.
    pair = Pair(tmp_path)
    pair.a_ca = make_ca(tmp_path / "stranger")
    pair.start_a()
    try:
        b = pair.start_b()
        line = b.wait_for_log("federation connect failed", timeout=20, peer="alpha")
    finally:
        pair.stop()
    assert line["reason"].startswith("AioRpcError: UNAVAILABLE: ")
    assert "handshake failed" in line["reason"].lower()
