"""A peer sending endless bad input is counted in full but cannot flood the server's log."""

from __future__ import annotations

import asyncio

from tests.support.cot_client import CotClient, sa
from tests.support.metrics import metric_value
from tests.support.server import ServerProcess

BAD = b'<event version="2.0" uid="x" type="a-f-G" time="not-a-time" start="x" stale="x"><point/></event>'


async def test_rejections_are_all_counted_but_logged_only_a_few_times(
    server: ServerProcess, clients: list[object]
) -> None:
    attacker = await CotClient.connect(server.ports["cot"])
    watcher = await CotClient.connect(server.ports["cot"])
    clients.extend([attacker, watcher])
    before = await asyncio.to_thread(metric_value, server, "rallypoint_events_rejected_total",
                                     reason="bad_time", transport="tcp")
    await attacker.send(BAD * 100)
    await attacker.send(sa("after-flood", "AFTER"))
    await watcher.wait_uid("after-flood")
    after = await asyncio.to_thread(metric_value, server, "rallypoint_events_rejected_total",
                                    reason="bad_time", transport="tcp")
    assert after - before == 100
    await asyncio.to_thread(server.wait_for_log, "further input rejections of this session are counted, not logged")
    logged = [line for line in server.lines if line.get("msg") == "input rejected"]
    assert 1 <= len(logged) <= 20
