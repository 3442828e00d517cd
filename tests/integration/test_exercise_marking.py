"""Exercise marking on a real server: marked traffic is delivered, kept, filtered, shown, and kept out of missions.

A raw CoT client sends live and exercise-marked events (``opex="e-drill"`` and
``<__rallypoint_exercise>``); the history API and CLI filter them, the live picture labels them,
``t-x-rp-exercise`` marker events are stored and reach nobody, and a marked event addressed to a
live mission joins it only when the exercise registered that mission.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_protobuf_stream import ProtoClient
from tests.support.certs import client_context
from tests.support.cot_client import CotClient, cot, sa
from tests.support.groups import serve_with_groups
from tests.support.metrics import metric_value
from tests.support.poll import wait_until_async
from tests.support.server import ServerProcess

MARK = '<__rallypoint_exercise id="drill" unit="{unit}"{more}/>'


def marked(uid: str, unit: str, *, cot_type: str = "a-f-G-U-C", inject: str | None = None, kind: str | None = None,
           opex: str = "e-drill", detail: str = "") -> bytes:
    """An exercise unit's event as the runner sends it: opex, how m-s and the detail marker."""
    more = (f' inject="{inject}"' if inject else "") + (f' kind="{kind}"' if kind else "")
    mark = MARK.format(unit=unit, more=more)
    body = cot(uid, cot_type, how="m-s", detail=f'<contact callsign="{unit.upper()}"/>{mark}{detail}')
    return body.replace(b' how="m-s"', f' how="m-s" opex="{opex}"'.encode(), 1)


async def _history(base: str, **params: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        answer = await http.get("/api/history", params={"limit": "1000", **params})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["events"])


async def test_marked_traffic_is_delivered_stored_filtered_and_labelled(
    server: ServerProcess, clients: list[object], data_dir: Path
) -> None:
    sender = await CotClient.connect(server.ports["cot"])
    watcher = await CotClient.connect(server.ports["cot"])
    clients.extend([sender, watcher])
    await sender.send(sa("live-1", "LIVE"))
    await sender.send(marked("RP-EX-drill-u1", "u1"))
    await sender.send(marked("RP-EX-drill-inject-cas", "ctl", cot_type="t-x-rp-exercise", inject="cas", kind="chat"))
    # Trainees' clients receive exercise traffic as it was sent, marker included.
    unit = await watcher.wait_uid("RP-EX-drill-u1")
    assert unit.opex == "e-drill" and unit.how == "m-s" and unit.exercise == "drill"
    assert b'<__rallypoint_exercise id="drill" unit="u1"/>' in unit.detail.xml
    await watcher.wait_uid("live-1")
    # The runner's inject marker is delivered to nobody (the barrier proves it was routed already).
    await watcher.barrier(sender)
    assert not watcher.has(lambda e: e.type == "t-x-rp-exercise")

    # Malformed marking is refused and counted; the connection and the rest of its traffic go on.
    await sender.send(marked("bad-1", "u2", opex="e-not an id"))
    await sender.send(marked("bad-2", "u2", opex="e-other"))  # opex and the detail name different exercises
    await sender.send(cot("live-2", "a-h-G"))
    await watcher.wait_uid("live-2")
    assert not watcher.has(lambda e: e.uid.startswith("bad-"))
    assert metric_value(server, "rallypoint_events_rejected_total", reason="bad_exercise") == 2

    # A protobuf client's exercise traffic keeps its opex and marker through the TAK Protocol v1 codec.
    proto = await ProtoClient.connect(server.ports["cot"])
    try:
        await proto.send_xml_as_proto(marked("RP-EX-drill-proto", "p1"))
        via_proto = await watcher.wait_uid("RP-EX-drill-proto")
        assert via_proto.opex == "e-drill" and via_proto.exercise == "drill"
        await sender.send(marked("RP-EX-drill-u3", "u3"))
        received = await proto.wait_uid("RP-EX-drill-u3")
        assert received.cotEvent.opex == "e-drill" and "__rallypoint_exercise" in received.cotEvent.detail.xmlDetail
    finally:
        proto.close()

    # History: every row remembers its exercise; the filter keeps live traffic, one exercise, or all.
    base = f"http://127.0.0.1:{server.ports['http']}"
    drill = {"RP-EX-drill-u1", "RP-EX-drill-inject-cas", "RP-EX-drill-proto", "RP-EX-drill-u3"}
    async def stored() -> list[dict[str, Any]]:
        return await _history(base, exercise="drill")

    async def all_stored() -> list[dict[str, Any]] | None:
        rows = await stored()  # the store is written in batches
        return rows if {e["uid"] for e in rows} == drill else None

    marked_rows = await wait_until_async(all_stored, "the drill's rows in history", timeout=15, interval=0.1)
    assert {e["exercise"] for e in marked_rows} == {"drill"}
    inject_row = next(e for e in marked_rows if e["type"] == "t-x-rp-exercise")
    assert 'inject="cas"' in inject_row["xml"] and 'kind="chat"' in inject_row["xml"]
    live = {e["uid"] for e in await _history(base, exercise="none")}
    assert {"live-1", "live-2"} <= live and not live & drill and not any(u.startswith("bad-") for u in live)
    every = {e["uid"] for e in await _history(base)}
    assert drill | {"live-1", "live-2"} <= every
    assert {e["uid"] for e in await _history(base, exercise="any")} == every
    assert await _history(base, exercise="other") == []
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        refused = await http.get("/api/history", params={"exercise": "not an id"})
        assert refused.status_code == 400 and "exercise" in refused.json()["detail"]
        now_ms = int(time.time() * 1000)
        window = {"since": str(now_ms - 3_600_000), "until": str(now_ms + 3_600_000)}
        replayed = await http.get("/api/replay", params={**window, "exercise": "drill"})
        assert replayed.status_code == 200
        assert {e["uid"] for e in replayed.json()["events"]} == drill
        # The live picture labels exercise items; the web map greys what carries the label.
        tracks = (await http.get("/api/tracks", params={"format": "geojson"})).json()["features"]
    by_uid = {f["id"]: f["properties"] for f in tracks}
    assert by_uid["RP-EX-drill-u1"]["exercise"] == "drill"
    assert by_uid["live-1"]["exercise"] is None
    assert "RP-EX-drill-inject-cas" not in by_uid

    # The same filter from the command line, reading the store as `rallypoint history` does.
    out = subprocess.run(
        [sys.executable, "-m", "rallypoint.cli.main", "history", "query", "--data-dir", str(data_dir),
         "--exercise", "drill", "--format", "json"], capture_output=True, text=True, check=True, timeout=120,
    )
    assert {e["uid"] for e in json.loads(out.stdout)} == drill
    bad = subprocess.run(
        [sys.executable, "-m", "rallypoint.cli.main", "history", "query", "--data-dir", str(data_dir),
         "--exercise", "a/b"], capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode == 2 and "--exercise" in bad.stderr


# --- isolation from live missions ---------------------------------------------------------------------------------
@pytest.fixture
def mission_server(data_dir: Path) -> Iterator[ServerProcess]:
    with serve_with_groups(data_dir, {"red1": ["Red"], "red2": ["Red"]}) as proc:
        yield proc


class Member:
    """One person: an HTTPS client and a TLS CoT stream sharing a certificate."""

    def __init__(self, name: str, http: httpx.AsyncClient, stream: CotClient) -> None:
        self.name, self.uid, self.http, self.stream = name, f"uid-{name}", http, stream


@pytest.fixture
async def members(mission_server: ServerProcess, tmp_path: Path) -> AsyncIterator[dict[str, Member]]:
    made: dict[str, Member] = {}
    base = f"https://127.0.0.1:{mission_server.ports['api']}"
    try:
        for name in ("red1", "red2"):
            ctx = client_context(mission_server, name, tmp_path)
            stream = await CotClient.connect(mission_server.ports["tls"], ssl_context=ctx)
            made[name] = Member(name, httpx.AsyncClient(base_url=base, verify=ctx, timeout=10), stream)
            await stream.send(sa(f"uid-{name}", name.upper()))
        await made["red2"].stream.wait_uid("uid-red1")
        await made["red1"].stream.wait_uid("uid-red2")
        yield made
    finally:
        for member in made.values():
            await member.http.aclose()
            await member.stream.close()


async def _until_in_mission(client: Member, uid: str) -> None:
    """The mission write is asynchronous: ask for the mission's contents until ``uid`` is among them."""
    async def joined() -> bool:
        return uid in await _mission_uids(client)

    await wait_until_async(joined, f"{uid} in the mission", timeout=10, interval=0.1)


async def _mission_uids(member: Member) -> set[str]:
    answer = await member.http.get("/Marti/api/missions/Op")
    assert answer.status_code == 200, answer.text
    return {u["data"] for u in answer.json()["data"][0]["uids"]}


async def test_exercise_traffic_joins_only_missions_its_exercise_registered(members: dict[str, Member]) -> None:
    red1, red2 = members["red1"], members["red2"]
    created = await red1.http.put("/Marti/api/missions/Op", params={"creatorUid": red1.uid})
    assert created.status_code == 201, created.text
    assert (await red2.http.put("/Marti/api/missions/Op/subscription", params={"uid": red2.uid})).status_code == 201
    to_op = '<marti><dest mission="Op"/></marti>'

    # An exercise nobody registered, and one registered without the mission: kept out of the live mission.
    registration = {"name": "Drill", "scenario_sha256": hashlib.sha256(b"s").hexdigest(), "units": 1}
    answer = await red1.http.post("/api/exercises", json={"id": "other", **registration})
    assert answer.status_code == 201, answer.text
    await red1.stream.send(marked("RP-EX-drill-m1", "m1", detail=to_op))
    await red1.stream.send(marked("RP-EX-other-m1", "m1", detail=to_op).replace(b"drill", b"other"))
    # A live marker to the same mission is the control: it arrives and joins.
    await red1.stream.send(cot("live-marker", "a-h-G", detail=to_op))
    await red2.stream.wait_uid("live-marker")
    await _until_in_mission(red2, "live-marker")
    assert not red2.stream.has(lambda e: e.uid.startswith("RP-EX-"))
    assert not {u for u in await _mission_uids(red2) if u.startswith("RP-EX-")}

    # Registered with the mission allowed: its traffic reaches the subscribers and joins the mission.
    answer = await red1.http.post("/api/exercises", json={"id": "drill", "missions": ["Op"], **registration})
    assert answer.status_code == 201 and answer.json()["missions"] == ["Op"], answer.text
    await red1.stream.send(marked("RP-EX-drill-m2", "m2", detail=to_op))
    joined = await red2.stream.wait_uid("RP-EX-drill-m2")
    assert joined.exercise == "drill"
    await _until_in_mission(red2, "RP-EX-drill-m2")
    assert {u for u in await _mission_uids(red2) if u.startswith("RP-EX-")} == {"RP-EX-drill-m2"}
