"""10,000 mixed events among clients in disjoint groups: none crosses a group boundary on any path
(live delivery, addressed delivery, chat, emergencies and their repeats, late-joiner snapshots), nor
on any read path afterwards: the native API, the Marti API and the ``/api/live`` WebSocket feed."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.certs import client_context
from tests.support.cot_client import CotClient, chat, cot, sa
from tests.support.groups import serve_with_groups
from tests.support.live import LiveClient
from tests.support.metrics import metric_value
from tests.support.poll import wait_until
from tests.support.server import ServerProcess

GROUPS = ("Red", "Blue", "Green")
PER_GROUP = 2
TOTAL = 10_000


@pytest.fixture
def group_server(data_dir: Path) -> Iterator[ServerProcess]:
    mapping = {f"{g.lower()}{i}": [g] for g in GROUPS for i in range(PER_GROUP)}
    unlimited = {"RALLYPOINT_MAX_EVENTS_PER_S": "0", "RALLYPOINT_IP_EVENTS_PER_S": "0"}
    with serve_with_groups(data_dir, mapping, env=unlimited) as proc:
        yield proc


def _group_of_uid(uid: str) -> str | None:
    for g in GROUPS:
        if uid.startswith(g.lower()) or f".{g.lower()}" in uid:
            return g
    return None


async def test_ten_thousand_mixed_events_never_cross_groups(
    group_server: ServerProcess, tmp_path: Path, clients: list[object]
) -> None:
    rng = random.Random(1234)
    members: dict[str, list[tuple[str, CotClient]]] = {}
    for g in GROUPS:
        for i in range(PER_GROUP):
            name = f"{g.lower()}{i}"
            ctx = client_context(group_server, name, tmp_path)
            c = await CotClient.connect(group_server.ports["tls"], ssl_context=ctx)
            clients.append(c)
            members.setdefault(g, []).append((name, c))
            await c.send(sa(f"{name}-self", name.upper()))
    everyone = [(g, name, c) for g, lst in members.items() for name, c in lst]
    # One live map feed per group, authenticated by a client certificate on the HTTPS port.
    feeds: dict[str, LiveClient] = {}
    for g in GROUPS:
        feed_ctx = client_context(group_server, f"{g.lower()}0", tmp_path / "live")
        feeds[g] = await LiveClient.connect(group_server.ports["api"], ssl_context=feed_ctx)
        clients.append(feeds[g])
    # Let identities bind (each client sees its group mates' SA).
    for g, name, c in everyone:
        for other, _ in members[g]:
            if other != name:
                await c.wait_uid(f"{other}-self")

    sent = 0
    batches: dict[str, list[bytes]] = {name: [] for _, name, _ in everyone}
    # Broadcast map items by group: the other groups must not be able to fetch them by uid.
    items: dict[str, list[str]] = {g: [] for g in GROUPS}
    while sent < TOTAL:
        g, name, _ = rng.choice(everyone)
        other_g = rng.choice([x for x in GROUPS if x != g])
        victim = rng.choice(members[other_g])[0]
        uid = f"{name}-{sent}"
        kind = rng.randrange(9)
        if kind == 0:
            data = cot(uid, "b-m-p-s-m")
            items[g].append(uid)
        elif kind == 1:
            data = cot(uid, "u-d-r")
            items[g].append(uid)
        elif kind == 2:  # addressed across the boundary by callsign
            data = cot(uid, "b-m-p-s-m", detail=f'<marti><dest callsign="{victim.upper()}"/></marti>')
        elif kind == 3:  # by uid
            data = cot(uid, "b-m-p-s-m", detail=f'<marti><dest uid="{victim}-self"/></marti>')
        elif kind == 4:  # to the other group
            data = cot(uid, "b-m-p-s-m", detail=f'<marti><dest group="{other_g}"/></marti>')
        elif kind == 5:
            data = chat(f"{name}-self", name.upper(), to_uid=None, to_cs=None, text=f"all {sent}")
        elif kind == 6:
            data = chat(f"{name}-self", name.upper(), to_uid=f"{victim}-self", to_cs=victim.upper(), text="psst")
        elif kind == 7:
            data = cot(uid, "t-x-d-d", detail=f'<link uid="{victim}-self" relation="p-p" type="a-f-G-U-C"/>')
        else:
            data = cot(f"{name}-9-1-1-{sent}", "b-a-o-tbl", stale_s=10,
                       detail=f'<link uid="{name}-self" type="a-f-G-U-C" relation="p-p"/>'
                       f'<emergency type="911 Alert">{name}</emergency>')
        batches[name].append(data)
        sent += 1
    for _g, name, c in everyone:
        await c.send(b"".join(batches[name]))
    # Everything routed: each client's last own event reached its group mate.
    for g, name, c in everyone:
        mate = next(m for n, m in members[g] if n != name)
        await _barrier(mate, c, g)
    # Late joiners in each group get their group's snapshot only.
    for g in GROUPS:
        late_ctx = client_context(group_server, f"{g.lower()}0", tmp_path / "late")
        late = await CotClient.connect(group_server.ports["tls"], ssl_context=late_ctx)
        clients.append(late)
        await _barrier(late, members[g][1][1], g)
        everyone.append((g, "late", late))

    received = 0
    for g, name, c in everyone:
        for event in c.events:
            if event.type in ("t-x-takp-v", "t-x-c-t-r", "b-t-f-s"):
                continue
            received += 1
            origin = _group_of_uid(event.uid)
            if event.type == "b-t-f" and event.detail.chat is not None:
                origin = _group_of_uid(event.detail.chat.members[0] if event.detail.chat.members else "")
            if event.type == "t-x-d-d" and origin is None:
                origin = _group_of_uid(event.detail.link_uid or "")
            assert origin == g, f"{name} in {g} received {event.type} {event.uid} from {origin}"
    assert received > TOTAL / 2, f"only {received} deliveries checked"

    await _check_live_feeds(group_server, members, feeds)
    for g in GROUPS:
        http_ctx = client_context(group_server, f"{g.lower()}1", tmp_path / "http")
        async with httpx.AsyncClient(
            base_url=f"https://127.0.0.1:{group_server.ports['api']}", verify=http_ctx, timeout=30
        ) as http:
            await _check_read_paths(http, g, items)


async def _barrier(receiver: CotClient, sender: CotClient, group: str) -> None:
    """Everything ``sender`` sent before now has been routed: its later marker reached ``receiver``.

    The marker is an ordinary broadcast of ``group``, named so that every read path can attribute it.
    """
    marker = f"{group.lower()}-barrier-{uuid.uuid4()}"
    await sender.send(cot(marker, "a-f-G-U-C"))
    await receiver.wait_uid(marker, timeout=30)


def _origins(uids: list[str]) -> set[str | None]:
    return {_group_of_uid(uid) for uid in uids}


async def _check_live_feeds(
    server: ServerProcess, members: dict[str, list[tuple[str, CotClient]]], feeds: dict[str, LiveClient]
) -> None:
    """Each group's feed (snapshot, features, deletes) carried that group's events only."""
    for g, feed in feeds.items():
        await members[g][0][1].send(cot(f"{g.lower()}0-live-marker", "b-m-p-s-m"))
        await feed.wait_uid(f"{g.lower()}0-live-marker", timeout=30)
    # The marker overtakes queued positions (it is more urgent): wait until the feeds' queues are empty.
    await wait_until(lambda: metric_value(server, "rallypoint_live_queued") == 0, "live feeds drained", 30)
    for g, feed in feeds.items():
        uids: list[str] = []
        for message in feed.messages:
            if message["type"] == "FeatureCollection":
                uids.extend(f["id"] for f in message["features"])
            elif message["type"] == "Feature":
                uids.append(message["id"])
            elif message["type"] == "Chat":  # a GeoChat its readers may read
                uids.append(message["uid"])
            elif message["type"] == "Emergencies":  # the active alerts its readers may read
                uids.extend(e["uid"] for e in message["emergencies"])
            else:  # a delete names the uid it removes; the delete itself is an event of its sender
                assert message["type"] == "Delete", message
                uids.append(message["properties"]["event_uid"])
        assert len(uids) > 500, f"feed of {g} carried only {len(uids)} uids"
        assert _origins(uids) == {g}, f"feed of {g}: {[u for u in uids if _group_of_uid(u) != g][:5]}"


async def _check_read_paths(http: httpx.AsyncClient, g: str, items: dict[str, list[str]]) -> None:
    """Every HTTP read of the picture, for a reader of ``g``, shows ``g`` only."""

    async def get(path: str) -> Any:
        answer = await http.get(path)
        assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text[:200]}"
        return answer.json()

    tracks = [t["uid"] for t in await get("/api/tracks")]
    geo = [f["id"] for f in (await get("/api/tracks?format=geojson"))["features"]]
    clients = [c["uid"] for c in await get("/api/clients")]
    for name, uids in (("tracks", tracks), ("geojson", geo), ("clients", clients)):
        assert uids and _origins(uids) == {g}, f"/api/{name} for {g}: {_origins(uids)}"
    history = (await get("/api/history?limit=5000&order=desc"))["events"]
    rows = [row for row in history if row["type"] != "b-t-f-s"]
    assert len(rows) > 1000, f"history for {g} has only {len(rows)} rows"
    assert _origins([row["uid"] for row in rows]) == {g}, f"history for {g}"
    assert {grp for row in history for grp in row["groups"]} == {g}
    endpoints = (await get("/Marti/api/clientEndPoints"))["data"]
    assert endpoints and _origins([e["uid"] for e in endpoints]) == {g}
    assert {grp for e in endpoints for grp in e["groups"]} == {g}
    contacts = await get("/Marti/api/contacts/all")
    assert contacts and _origins([c["uid"] for c in contacts]) == {g}
    # By uid: the group's own items are there, nobody else's (clients' own SA included).
    own = (await http.get(f"/Marti/api/cot/xml/{items[g][0]}"))
    assert own.status_code == 200 and items[g][0].encode() in own.content
    for other in GROUPS:
        if other == g:
            continue
        sample = items[other][:: max(1, len(items[other]) // 25)]
        for uid in [f"{other.lower()}{i}-self" for i in range(PER_GROUP)] + sample:
            answer = await http.get(f"/Marti/api/cot/xml/{uid}")
            assert answer.status_code == 404, f"{g} fetched {uid} of {other}: {answer.status_code}"
