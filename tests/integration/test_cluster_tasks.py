"""Tasks across two nodes sharing PostgreSQL and NATS: created on one, answered on the other."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from rallypoint.model.cot import CotEvent
from rallypoint.services.tasks_cot import DESK_UID, STATUS_TYPE, TASK_TYPE
from tests.support.certs import client_context
from tests.support.cot_client import CotClient, cot, sa
from tests.support.nodes import Cluster, running_cluster
from tests.support.postgres import PostgresDatabase

TIMEOUT_S = 15.0


@pytest.fixture
async def shared_cluster(
    tmp_path: Path, ca_template: Path, postgres_database: PostgresDatabase
) -> AsyncIterator[Cluster]:
    dsn = await postgres_database.fresh()
    with running_cluster(tmp_path, ca_template, size=2, extra=("--storage", dsn),
                         groups={"red1": ["Red"], "red2": ["Red"]}) as cluster:
        yield cluster


def state_of(event: CotEvent, task_id: str) -> str | None:
    if event.type != TASK_TYPE or f'id="{task_id}"'.encode() not in event.detail.xml:
        return None
    found = re.search(rb'<__rallypoint_task [^>]*\bstate="([^"]*)"', event.detail.xml)
    return found.group(1).decode() if found else None


async def test_a_task_created_on_one_node_is_answered_on_the_other(shared_cluster: Cluster, tmp_path: Path) -> None:
    ctx1, ctx2 = client_context(shared_cluster.dirs[0], "red1", tmp_path), client_context(
        shared_cluster.dirs[1], "red2", tmp_path)
    red1 = await CotClient.connect(shared_cluster.port(0, "tls"), ssl_context=ctx1)
    red2 = await CotClient.connect(shared_cluster.port(1, "tls"), ssl_context=ctx2)
    http1 = httpx.AsyncClient(base_url=f"https://127.0.0.1:{shared_cluster.port(0, 'api')}", verify=ctx1, timeout=10)
    http2 = httpx.AsyncClient(base_url=f"https://127.0.0.1:{shared_cluster.port(1, 'api')}", verify=ctx2, timeout=10)
    try:
        await red1.send(sa("uid-red1", "RED1"))
        await red2.send(sa("uid-red2", "RED2"))
        await red1.wait_uid("uid-red2", TIMEOUT_S)
        await red2.wait_uid("uid-red1", TIMEOUT_S)
        # No notify_uid: red1's own stream (same certificate) is the creator's device.
        answer = await http1.post("/api/tasks", json={"what": "Open the shelter", "assignee": {"callsign": "RED2"}})
        assert answer.status_code == 201, answer.text
        task_id = answer.json()["id"]
        assert answer.json()["creator_uid"] == "uid-red1"
        # The assignee is on the other node: the task crosses the bus.
        await red2.wait_for(lambda e: state_of(e, task_id) == "assigned", TIMEOUT_S)
        # Its answer is acted on by its node, written to the shared store, and heard on the creator's node.
        await red2.send(cot(f"status-{uuid.uuid4()}", STATUS_TYPE, how="h-g-i-g-o",
                            detail=f'<__rallypoint_task_status id="{task_id}" state="done" note="open"/>'
                                   f'<marti><dest uid="{DESK_UID}"/></marti>'))
        await red1.wait_for(lambda e: state_of(e, task_id) == "done", TIMEOUT_S)
        shown = (await http1.get(f"/api/tasks/{task_id}")).json()
        assert shown["state"] == "done" and shown["history"][-1]["by"] == "RED2"
        # The assignee's own node answers for it over the API as well.
        assert (await http2.get(f"/api/tasks/{task_id}")).json()["state"] == "done"
        # Both nodes now refuse the same second move: the store decides, not a node's memory.
        for http in (http1, http2):
            refused = await http.post(f"/api/tasks/{task_id}/status", json={"state": "failed"})
            assert refused.status_code == 409, refused.text
    finally:
        for client in (http1, http2):
            await client.aclose()
        await asyncio.gather(red1.close(), red2.close())
