"""10,000 mixed events among clients in disjoint groups: none crosses a group boundary on any path
(live delivery, addressed delivery, chat, emergencies and their repeats, late-joiner snapshots)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.certs import client_context
from tests.support.cot_client import CotClient, chat, cot, sa
from tests.support.groups import serve_with_groups
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
    # Let identities bind (each client sees its group mates' SA).
    for g, name, c in everyone:
        for other, _ in members[g]:
            if other != name:
                await c.wait_uid(f"{other}-self")

    sent = 0
    batches: dict[str, list[bytes]] = {name: [] for _, name, _ in everyone}
    while sent < TOTAL:
        g, name, _ = rng.choice(everyone)
        other_g = rng.choice([x for x in GROUPS if x != g])
        victim = rng.choice(members[other_g])[0]
        uid = f"{name}-{sent}"
        kind = rng.randrange(9)
        if kind == 0:
            data = cot(uid, "b-m-p-s-m")
        elif kind == 1:
            data = cot(uid, "u-d-r")
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
        await mate.barrier(c, timeout=30)
    # Late joiners in each group get their group's snapshot only.
    for g in GROUPS:
        late_ctx = client_context(group_server, f"{g.lower()}0", tmp_path / "late")
        late = await CotClient.connect(group_server.ports["tls"], ssl_context=late_ctx)
        clients.append(late)
        await late.barrier(members[g][1][1], timeout=30)
        everyone.append((g, "late", late))

    received = 0
    for g, name, c in everyone:
        for event in c.events:
            if event.type in ("t-x-takp-v", "t-x-c-t-r", "b-t-f-s") or event.uid.startswith("barrier-"):
                continue
            received += 1
            origin = _group_of_uid(event.uid)
            if event.type == "b-t-f" and event.detail.chat is not None:
                origin = _group_of_uid(event.detail.chat.members[0] if event.detail.chat.members else "")
            if event.type == "t-x-d-d" and origin is None:
                origin = _group_of_uid(event.detail.link_uid or "")
            assert origin == g, f"{name} in {g} received {event.type} {event.uid} from {origin}"
    assert received > TOTAL / 2, f"only {received} deliveries checked"
