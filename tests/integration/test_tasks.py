"""Tasks against a real node: PyTAK clients over TCP, the native API over HTTP, a clock the test moves.

The node runs in this process (``build_node`` with a :class:`ManualClock`, real SQLite stores) and is
reached over real sockets. The assignee is a PyTAK client: it receives the task, moves it with the
status CoT or with a GeoChat reply, and receives a task sent while it was offline once it is back.
The overdue alert is checked by moving the node's clock and running the node's own check.
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import re
import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rallypoint.client.http import ApiError as ClientError
from rallypoint.client.http import AsyncRallypointClient
from rallypoint.clock import ManualClock, SystemClock
from rallypoint.config import Settings
from rallypoint.model.cot import CotEvent
from rallypoint.node.build import build_node
from rallypoint.node.core import Node
from rallypoint.services.tasks import TaskService
from rallypoint.services.tasks_cot import DESK_CALLSIGN, DESK_UID, MARKER_TYPE, STATUS_TYPE, TASK_TYPE, chat_text
from tests.support.cot_client import CotClient, chat
from tests.support.poll import wait_until

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pytak

PASSWORD = "alice passphrase 1"
ANON = "__ANON__"


@pytest.fixture
async def node(data_dir: Path) -> AsyncIterator[tuple[Node, ManualClock]]:
    clock = ManualClock(SystemClock().now_ms())
    settings = Settings(
        data_dir=str(data_dir), bind="127.0.0.1", plain_bind="127.0.0.1", ephemeral_ports=True, http_port=1,
        cot_port=1, tls_port=0, api_port=0, enroll_port=0, federation_port=0, udp_port=0,
    )
    node = build_node(settings, clock=clock)
    await node.users.add("alice", password=PASSWORD, groups_in={ANON}, groups_out={ANON})
    await node.users.add("mallory", password=PASSWORD, groups_in={"Other"}, groups_out={"Other"})
    running = asyncio.create_task(node.run())
    ready = asyncio.create_task(node.ready.wait())
    await asyncio.wait({running, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    assert node.ready.is_set(), "node did not start"
    try:
        yield node, clock
    finally:
        node.stop()
        ready.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


class Api(httpx.AsyncClient):
    """An HTTP client the ``clients`` fixture can close."""

    async def close(self) -> None:
        await self.aclose()


async def login(node: Node, name: str = "alice") -> Api:
    http = Api(base_url=f"http://127.0.0.1:{node.ports['http']}", timeout=10)
    answer = await http.post("/oauth/token", data={"grant_type": "password", "username": name,
                                                   "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
    return http


class PytakPeer(CotClient):
    """A PyTAK connection (``pytak.protocol_factory``) whose received events are collected like CotClient's."""

    @classmethod
    async def open(cls, port: int) -> PytakPeer:
        parser = configparser.ConfigParser()
        parser["peer"] = {"COT_URL": f"tcp://127.0.0.1:{port}"}
        peer = cls()
        peer._reader, peer._writer = await pytak.protocol_factory(parser["peer"])
        peer._task = asyncio.create_task(peer._read())
        await peer.wait_for(lambda e: e.type == "t-x-takp-v", timeout=10)
        return peer

    async def send_pytak(self, uid: str, cot_type: str, detail: str) -> None:
        """An event PyTAK built (``pytak.gen_cot``), with our detail in place of its own."""
        xml: bytes = pytak.gen_cot(lat=39.1, lon=-120.0, uid=uid, cot_type=cot_type, stale=3600)
        xml = re.sub(rb"<detail>.*</detail>", f"<detail>{detail}</detail>".encode(), xml, flags=re.S)
        await self.send(xml)

    async def announce(self, uid: str, callsign: str) -> None:
        await self.send_pytak(uid, "a-f-G-U-C", f'<contact callsign="{callsign}" endpoint="*:-1:stcp"/>'
                                                '<__group name="Cyan" role="Team Member"/>'
                                                '<takv platform="PyTAK" version="1" device="test" os="linux"/>')

    async def report(self, task_id: str, state: str, note: str = "") -> None:
        """The status CoT a TAK client sends (docs/tasks.md)."""
        await self.send_pytak(
            f"status-{uuid.uuid4()}", STATUS_TYPE,
            f'<__rallypoint_task_status id="{task_id}" state="{state}" note="{note}"/>'
            f'<marti><dest uid="{DESK_UID}"/></marti>',
        )


def task_attr(event: CotEvent, name: str) -> str | None:
    found = re.search(rf'<__rallypoint_task [^>]*\b{name}="([^"]*)"'.encode(), event.detail.xml)
    return found.group(1).decode() if found else None


def is_task(task_id: str, state: str) -> Any:
    return lambda e: e.type == TASK_TYPE and task_attr(e, "id") == task_id and task_attr(e, "state") == state


def desk_says(words: str) -> Any:
    return lambda e: e.type == "b-t-f" and e.detail.link_uid == DESK_UID and words in chat_text(e)


async def connected(node: Node, uid: str, callsign: str) -> PytakPeer:
    peer = await PytakPeer.open(node.ports["cot"])
    await peer.announce(uid, callsign)
    await wait_until(lambda: node.directory.by_callsign(callsign) is not None, f"{callsign} bound")
    return peer


def tasks_of(node: Node) -> TaskService:
    return next(f for f in node.features if isinstance(f, TaskService))


async def test_full_lifecycle_over_pytak_streams(node: tuple[Node, ManualClock], clients: list[object]) -> None:
    server, clock = node
    alpha = await connected(server, "pytak-alpha", "ALPHA")
    phone = await connected(server, "alice-phone", "ALICE")
    clients += [alpha, phone]
    http = await login(server)
    clients.append(http)
    answer = await http.post("/api/tasks", json={
        "what": "Sweep sector B", "assignee": {"callsign": "ALPHA"}, "where": {"lat": 39.2, "lon": -120.1},
        "due_ms": clock.now_ms() + 3_600_000, "notify_uid": "alice-phone"})
    assert answer.status_code == 201, answer.text
    task_id = answer.json()["id"]
    got = await alpha.wait_for(is_task(task_id, "assigned"))
    assert b"Sweep sector B" in got.detail.xml and got.point.lat == pytest.approx(39.2)
    marker = await alpha.wait_for(lambda e: e.type == MARKER_TYPE and e.uid == f"rp-task-{task_id}.marker")
    assert marker.detail.callsign == "Task: Sweep sector B"
    await alpha.wait_for(desk_says("Reply ack, start, done or fail"))
    for state in ("acknowledged", "in_progress", "done"):
        await alpha.report(task_id, state, note=f"now {state}")
        # The creator's device hears of every change.
        await phone.wait_for(is_task(task_id, state))
    shown = (await http.get(f"/api/tasks/{task_id}")).json()
    assert shown["state"] == "done"
    assert [(s["state"], s["by"], s["via"]) for s in shown["history"]] == [
        ("assigned", "alice", "api"), ("acknowledged", "ALPHA", "cot"), ("in_progress", "ALPHA", "cot"),
        ("done", "ALPHA", "cot")]
    await phone.wait_for(lambda e: e.type == MARKER_TYPE and e.detail.callsign == "Task: Sweep sector B [done]")
    # A final task moves no more; the list filters.
    await alpha.report(task_id, "failed")
    await alpha.wait_for(desk_says("cannot become failed"))
    listed = (await http.get("/api/tasks", params={"state": "done", "assignee": "ALPHA"})).json()
    assert [t["id"] for t in listed] == [task_id]


async def test_an_offline_assignee_gets_its_task_when_it_is_back(
        node: tuple[Node, ManualClock], clients: list[object]) -> None:
    server, _ = node
    bravo = await connected(server, "pytak-bravo", "BRAVO")
    await bravo.close()
    await wait_until(lambda: server.directory.by_callsign("BRAVO") is None, "BRAVO gone")
    http = await login(server)
    clients.append(http)
    answer = await http.post("/api/tasks", json={"what": "Check the bridge", "assignee": {"uid": "pytak-bravo"}})
    assert answer.status_code == 201, answer.text
    task_id = answer.json()["id"]
    back = await connected(server, "pytak-bravo", "BRAVO")
    clients.append(back)
    got = await back.wait_for(is_task(task_id, "assigned"), timeout=10)
    assert got.detail.link_uid == "pytak-bravo"
    await back.wait_for(desk_says("Check the bridge"))
    await back.report(task_id, "acknowledged")
    await wait_until(lambda: tasks_of(server).open_tasks()[0].state == "acknowledged", "acknowledged")


async def test_a_stock_client_answers_by_geochat(node: tuple[Node, ManualClock], clients: list[object]) -> None:
    server, _ = node
    charlie = await connected(server, "pytak-charlie", "CHARLIE")
    clients.append(charlie)
    http = await login(server)
    clients.append(http)
    first = (await http.post("/api/tasks", json={"what": "Fill sandbags", "assignee": {"callsign": "CHARLIE"}}
                             )).json()["id"]
    await charlie.wait_for(desk_says("Fill sandbags"))

    def reply(text: str) -> bytes:
        # What ATAK sends when its user answers the desk's message (uid0 the sender, uid1 the desk).
        return chat("pytak-charlie", "CHARLIE", to_uid=DESK_UID, to_cs=DESK_CALLSIGN, text=text)

    await charlie.send(reply("ack"))
    await charlie.wait_for(desk_says(f"Task {first[:8]} is now acknowledged"))
    second = (await http.post("/api/tasks", json={"what": "Clear the road", "assignee": {"callsign": "CHARLIE"}}
                              )).json()["id"]
    await charlie.wait_for(desk_says("Clear the road"))
    await charlie.send(reply("done"))
    await charlie.wait_for(desk_says("Which task? You have 2"))
    await charlie.send(reply(f"done {second[:8]} road is open"))
    await charlie.wait_for(desk_says(f"Task {second[:8]} is now done"))
    shown = (await http.get(f"/api/tasks/{second}")).json()
    assert shown["state"] == "done" and shown["history"][-1]["via"] == "chat"
    assert shown["history"][-1]["note"] == "road is open"
    # Answered by the desk: no delivery-failure notice for a chat to a desk nobody is connected as.
    assert not charlie.has(lambda e: e.type == "b-t-f-s")


async def test_an_overdue_task_alerts_its_creator_once(node: tuple[Node, ManualClock], clients: list[object]) -> None:
    server, clock = node
    phone = await connected(server, "alice-phone", "ALICE")
    clients.append(phone)
    http = await login(server)
    clients.append(http)
    task_id = (await http.post("/api/tasks", json={
        "what": "Report water level", "assignee": {"group": ANON}, "due_ms": clock.now_ms() + 60_000,
        "notify_uid": "alice-phone"})).json()["id"]
    service = tasks_of(server)
    assert await service.check_overdue() == 0
    clock.advance(61)
    assert await service.check_overdue() == 1
    alert = await phone.wait_for(desk_says("is overdue"))
    assert task_id[:8] in chat_text(alert)
    clock.advance(600)
    assert await service.check_overdue() == 0
    assert (await http.get(f"/api/tasks/{task_id}")).json()["overdue_alerted"] is True
    assert service.counts["alerts"] == 1


@pytest.mark.parametrize("body", [
    {"what": "x", "assignee": {"callsign": "A"}, "where": {"lat": -91, "lon": 0}},
    {"what": "x", "assignee": {"callsign": "A"}, "where": {"lat": 0, "lon": 0, "hae": -1e9}},
    {"what": "x", "assignee": {"callsign": "A"}, "due_ms": 10**15},
    {"what": "x", "assignee": {}},
    {"what": "x", "assignee": {"uid": "a", "group": "b"}},
    {"what": "\u0001", "assignee": {"callsign": "A"}},
    {"what": "   ", "assignee": {"callsign": "A"}},
    {"what": "x", "assignee": {"callsign": "A"}, "mission": "no-such-mission"},
])
async def test_absurd_tasks_get_a_clear_400(node: tuple[Node, ManualClock], clients: list[object],
                                            body: dict[str, Any]) -> None:
    server, _ = node
    http = await login(server)
    clients.append(http)
    answer = await http.post("/api/tasks", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["detail"]
    nan = await http.post("/api/tasks", content=b'{"what": "x", "assignee": {"uid": "a"}, '
                                                b'"where": {"lat": NaN, "lon": 0}}',
                          headers={"Content-Type": "application/json"})
    assert nan.status_code == 400
    assert (await http.get("/api/tasks")).json() == []


async def test_others_neither_see_nor_move_a_task(node: tuple[Node, ManualClock], clients: list[object]) -> None:
    server, _ = node
    alice, mallory = await login(server), await login(server, "mallory")
    clients += [alice, mallory]
    task_id = (await alice.post("/api/tasks", json={"what": "x", "assignee": {"callsign": "ZULU"}})).json()["id"]
    assert (await mallory.get(f"/api/tasks/{task_id}")).status_code == 404
    assert (await mallory.post(f"/api/tasks/{task_id}/status", json={"state": "done"})).status_code == 404
    assert (await mallory.delete(f"/api/tasks/{task_id}")).status_code == 404
    assert (await mallory.get("/api/tasks")).json() == []
    cancelled = await alice.delete(f"/api/tasks/{task_id}", params={"note": "not needed"})
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert (await alice.post(f"/api/tasks/{task_id}/status", json={"state": "done"})).status_code == 409


async def test_the_async_python_client_drives_a_task(node: tuple[Node, ManualClock]) -> None:
    server, clock = node
    async with AsyncRallypointClient(f"http://127.0.0.1:{server.ports['http']}", username="alice",
                                     password=PASSWORD) as client:
        task = await client.create_task("Count the cots", group=ANON, point=(39.1, -120.0),
                                        due_ms=clock.now_ms() + 60_000)
        assert task["assignee"] == {"uid": None, "callsign": None, "group": ANON}
        assert [t["id"] for t in await client.tasks(assignee=ANON, state="assigned")] == [task["id"]]
        moved = await client.set_task_status(task["id"], "in_progress", "counting")
        assert moved["history"][-1]["note"] == "counting"
        assert (await client.task(task["id"]))["state"] == "in_progress"
        assert (await client.cancel_task(task["id"], note="enough"))["state"] == "cancelled"
        with pytest.raises(ClientError) as refused:
            await client.set_task_status(task["id"], "done")
        assert refused.value.status == 409 and refused.value.error == "invalid_transition"
