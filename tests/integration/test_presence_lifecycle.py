"""What a late joiner is given over real sockets: routes and shapes, not items that went stale or were deleted."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import parse_event
from tests.conftest import SAMPLES
from tests.support.certs import client_context
from tests.support.cot_client import CotClient, cot, iso
from tests.support.groups import serve_with_groups
from tests.support.metrics import metric_value
from tests.support.samples import fresh
from tests.support.server import ServerProcess

SHAPES = ("Drawing_Shapes_Circle", "Drawing_Shapes_Rectangle", "Drawing_Shapes_Free_Form")
RANGE_AND_BEARING = ("Range_and_Bearing_Line", "Range_and_Bearing_Circle")


@pytest.fixture
def server(data_dir: Path) -> Iterator[ServerProcess]:
    """A server whose upkeep sweep runs every 0.5 s (a quarter of the shortest session timeout)."""
    proc = ServerProcess(data_dir, env={"RALLYPOINT_FRAME_TIMEOUT_S": "2"})
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def sample(name: str, stale_s: float = 3600.0) -> tuple[str, bytes]:
    """An ATAK export (``20_atak_export_<name>.xml``) and its uid."""
    data = (SAMPLES / f"20_atak_export_{name}.xml").read_bytes()
    return parse_event(data, Limits()).uid, fresh(data, stale_s)


def route(uid: str, *, stale_s: float = 3600.0) -> bytes:
    """A route (``b-m-r``) with two check points, shaped like ATAK's."""
    detail = (
        f'<link uid="{uid}-cp1" callsign="CP1" type="b-m-p-w" point="39.10,-120.00" relation="c"/>'
        f'<link uid="{uid}-cp2" callsign="CP2" type="b-m-p-c" point="39.12,-120.02" relation="c"/>'
        '<link_attr color="-1" method="Driving" direction="Infil" routetype="Primary" order="Ascending Check Points"/>'
        f'<contact callsign="{uid}"/><archive/>'
    )
    return cot(uid, "b-m-r", detail=detail, how="h-e", stale_s=stale_s)


def delete(target: str, target_type: str) -> bytes:
    """TAK Server's delete seed (sample 10b) filled in as the server fills it: uid, times, link target."""
    seed = (SAMPLES / "10b_delete_t-x-d-d_takserver_seed_TEMPLATE.xml").read_bytes()
    now = datetime.now(UTC)
    out = seed.replace(
        b"version='2.0' ",
        f"version='2.0' uid='{uuid.uuid4()}' time='{iso(now)}' start='{iso(now)}' "
        f"stale='{iso(now + timedelta(seconds=20))}'".encode(),
    )
    link = f"<link relation='p-p' uid='{target}' type='{target_type}' />"
    out = out.replace(b"<link relation='p-p' />", link.encode())
    assert target.encode() in out
    return out


def picture_items(server: ServerProcess) -> float:
    text = httpx.get(f"http://127.0.0.1:{server.ports['http']}/metrics", timeout=5).text
    match = re.search(r"^rallypoint_picture_items (\S+)$", text, re.M)
    assert match is not None, "rallypoint_picture_items missing from /metrics"
    return float(match.group(1))


async def _join(port: int, clients: list[object]) -> CotClient:
    client = await CotClient.connect(port)
    clients.append(client)
    return client


async def test_late_joiner_gets_routes_and_shapes(server: ServerProcess, clients: list[object]) -> None:
    a = await _join(server.ports["cot"], clients)
    b = await _join(server.ports["cot"], clients)
    uids = []
    for name in (*SHAPES, *RANGE_AND_BEARING):
        uid, data = sample(name)
        await a.send(data)
        uids.append(uid)
    await a.send(route("route-1"))
    uids.append("route-1")
    await b.barrier(a)
    late = await _join(server.ports["cot"], clients)
    for uid in uids:
        await late.wait_uid(uid)
    got = {e.uid: e.type for e in late.events}
    assert got["route-1"] == "b-m-r"
    assert {got[u] for u in uids} >= {"u-d-c-c", "u-d-r", "u-d-f", "u-rb-a", "u-r-b-c-c"}


async def test_item_that_goes_stale_after_acceptance_is_not_given(server: ServerProcess, clients: list[object]) -> None:
    a = await _join(server.ports["cot"], clients)
    b = await _join(server.ports["cot"], clients)
    circle, circle_data = sample("Drawing_Shapes_Circle", stale_s=2)
    await a.send(circle_data)
    await a.send(route("route-short", stale_s=2))
    await a.send(route("route-long"))
    await b.barrier(a)
    # While fresh, both short-lived items are part of the picture a new client is given.
    early = await _join(server.ports["cot"], clients)
    await early.wait_uid(circle)
    await early.wait_uid("route-short")
    # The upkeep sweep drops both from the picture once their stale time has passed.
    held = picture_items(server)
    deadline = time.monotonic() + 15
    while picture_items(server) > held - 2:
        assert time.monotonic() < deadline, "stale items were never expired from the picture"
        await asyncio.sleep(0.1)
    later = await _join(server.ports["cot"], clients)
    await later.wait_uid("route-long")
    await later.barrier(a)
    assert not later.has(lambda e: e.uid in (circle, "route-short")), "a stale item was given to a late joiner"


async def test_deleted_items_are_not_given_even_after_restart(data_dir: Path, clients: list[object]) -> None:
    first = ServerProcess(data_dir)
    first.start()
    try:
        a = await _join(first.ports["cot"], clients)
        b = await _join(first.ports["cot"], clients)
        rect, rect_data = sample("Drawing_Shapes_Rectangle")
        await a.send(rect_data)
        await a.send(route("route-gone"))
        await a.send(route("route-kept"))
        await b.barrier(a)
        await a.send(delete(rect, "u-d-r"))
        await a.send(delete("route-gone", "b-m-r"))
        gone = await b.wait_for(lambda e: e.type == "t-x-d-d" and e.detail.link_uid == "route-gone")
        assert gone.detail.link_type == "b-m-r"
        await b.wait_for(lambda e: e.type == "t-x-d-d" and e.detail.link_uid == rect)
        late = await _join(first.ports["cot"], clients)
        await late.wait_uid("route-kept")
        await late.barrier(a)
        assert not late.has(lambda e: e.uid in (rect, "route-gone")), "a deleted item was given to a late joiner"
        assert await asyncio.to_thread(first.terminate) == 0
    finally:
        first.stop()
    second = ServerProcess(data_dir)
    second.start()
    try:
        c = await _join(second.ports["cot"], clients)
        after = await _join(second.ports["cot"], clients)
        await after.wait_uid("route-kept")
        await after.barrier(c)
        assert not after.has(lambda e: e.uid in (rect, "route-gone")), "a deleted item came back after a restart"
    finally:
        second.stop()


async def test_a_client_outside_an_items_groups_cannot_delete_or_replace_it(
    data_dir: Path, tmp_path: Path, clients: list[object]
) -> None:
    groups = {"red1": ["Red"], "red2": ["Red"], "blue1": ["Blue"]}
    with serve_with_groups(data_dir, groups) as server:
        port = server.ports["tls"]
        red1, red2, blue1 = [
            await CotClient.connect(port, ssl_context=client_context(server, name, tmp_path)) for name in groups
        ]
        clients.extend([red1, red2, blue1])
        await red1.send(route("route-red"))
        await red1.send(route("route-red-2"))
        await red2.wait_uid("route-red-2")
        # Blue never saw these routes; its delete and its own item under the same uid stay in Blue.
        await blue1.send(delete("route-red", "b-m-r"))
        await blue1.send(cot("route-red-2", "b-m-p-s-m"))
        await blue1.send(cot(f"{uuid.uuid4()}-ping", "t-x-c-t", stale_s=10))
        await blue1.wait_for(lambda e: e.type == "t-x-c-t-r")
        late = await CotClient.connect(port, ssl_context=client_context(server, "red2", tmp_path / "late"))
        clients.append(late)
        await late.wait_uid("route-red")
        got = await late.wait_uid("route-red-2")
        assert got.type == "b-m-r", "a Blue client replaced a Red route in the picture"
        assert metric_value(server, "rallypoint_picture_refused_total") == 2
