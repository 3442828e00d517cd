"""Mission notices for offline subscribers and invitees wait in the mailbox until they reconnect."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from rallypoint.model.cot import CotEvent
from tests.support.certs import client_context
from tests.support.cot_client import CotClient, sa
from tests.support.groups import serve_with_groups
from tests.support.server import ServerProcess

API = "/Marti/api/missions"


@pytest.fixture
def group_server(data_dir: Path) -> Iterator[ServerProcess]:
    with serve_with_groups(data_dir, {"red1": ["Red"], "red2": ["Red"], "red3": ["Red"]}) as proc:
        yield proc


def _notice(cot_type: str, kind: str) -> Callable[[CotEvent], bool]:
    def match(event: CotEvent) -> bool:
        return event.type == cot_type and f'type="{kind}"'.encode() in event.detail.xml and b'name="Op"' in (
            event.detail.xml
        )
    return match


async def _departed(peer: CotClient, uid: str) -> None:
    # The departure notice proves the server processed the disconnect.
    await peer.wait_for(lambda e: e.type == "t-x-d-d" and e.detail.link_uid == uid)


async def test_offline_subscriber_and_invitee_get_mission_notices_on_reconnect(
    group_server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    tls = group_server.ports["tls"]
    contexts = {name: client_context(group_server, name, tmp_path) for name in ("red1", "red2", "red3")}
    red1 = await CotClient.connect(tls, ssl_context=contexts["red1"])
    clients.append(red1)
    await red1.send(sa("uid-red1", "RED1"))
    base = f"https://127.0.0.1:{group_server.ports['api']}"
    async with (
        httpx.AsyncClient(base_url=base, verify=contexts["red1"], timeout=10) as http1,
        httpx.AsyncClient(base_url=base, verify=contexts["red2"], timeout=10) as http2,
    ):
        created = await http1.put(f"{API}/Op", params={"creatorUid": "uid-red1"})
        assert created.status_code == 201, created.text
        # red2 subscribes while connected; red3 is only known (it connected once). Both then go offline.
        for name in ("red2", "red3"):
            stream = await CotClient.connect(tls, ssl_context=contexts[name])
            await stream.send(sa(f"uid-{name}", name.upper()))
            await red1.wait_uid(f"uid-{name}")
            if name == "red2":
                sub = await http2.put(f"{API}/Op/subscription", params={"uid": "uid-red2"})
                assert sub.status_code == 201, sub.text
            await stream.close()
            await _departed(red1, f"uid-{name}")

        added = await http1.put(f"{API}/Op/contents", params={"creatorUid": "uid-red1"}, json={"uids": ["uid-red1"]})
        assert added.status_code == 200, added.text
        invited = await http1.put(f"{API}/Op/invite/clientUid/uid-red3", params={"creatorUid": "uid-red1"})
        assert invited.status_code == 200, invited.text
        after_ms = int(time.time() * 1000)

    red2 = await CotClient.connect(tls, ssl_context=contexts["red2"])
    clients.append(red2)
    change = await red2.wait_for(_notice("t-x-m-c", "CHANGE"))
    assert b"<type>ADD_CONTENT</type>" in change.detail.xml and b"<contentUid>uid-red1</contentUid>" in (
        change.detail.xml
    )
    # The kept copy is valid while it is kept, not only for the notice's own short lifetime.
    assert change.stale > after_ms + 60_000
    await red2.barrier(red1)
    assert sum(1 for e in red2.events if _notice("t-x-m-c", "CHANGE")(e)) == 1
    # Not for a subscriber that is not the invitee.
    assert not red2.has(lambda e: e.type == "t-x-m-i")

    red3 = await CotClient.connect(tls, ssl_context=contexts["red3"])
    clients.append(red3)
    await red3.wait_for(_notice("t-x-m-i", "INVITE"))
    assert not red3.has(lambda e: e.type == "t-x-m-c")  # not subscribed

    # Delivered once: the next connection of red2 gets the picture but not the notice again.
    await red2.close()
    await _departed(red1, "uid-red2")
    again = await CotClient.connect(tls, ssl_context=contexts["red2"])
    clients.append(again)
    await again.wait_uid("uid-red1")
    await again.barrier(red1)
    assert not again.has(lambda e: e.type.startswith("t-x-m"))
