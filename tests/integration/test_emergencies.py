"""Emergency beacons over real sockets: every alert type is repeated until cancelled, by either form of cancel."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import SAMPLES
from tests.support.certs import client_context
from tests.support.cot_client import CotClient, cot, iso
from tests.support.groups import serve_with_groups
from tests.support.metrics import metric_value
from tests.support.server import ServerProcess

# ATAK's emergency types (EmergencyType.java) with the description it puts in <emergency type=...>.
ALERTS = {
    "b-a-o-tbl": "911 Alert",
    "b-a-o-pan": "Ring The Bell",
    "b-a-o-opn": "In Contact",
    "b-a-g": "Geo-fence Breached",
    "b-a-o-c": "Custom",
}
REPEAT_S = "0.2"


@pytest.fixture
def server(data_dir: Path) -> Iterator[ServerProcess]:
    """A server repeating emergencies every 0.2 s, so several repeat periods pass quickly."""
    proc = ServerProcess(data_dir, env={"RALLYPOINT_EMERGENCY_REPEAT_S": REPEAT_S})
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def alert(cot_type: str, device: str, callsign: str) -> tuple[str, bytes]:
    """The real 911 sample (sample 11) re-typed and re-addressed: uid ``<device>-9-1-1``, current times."""
    sample = (SAMPLES / "11_emergency_911_alert_takserver_test.xml").read_bytes()
    now = datetime.now(UTC)
    uid = f"{device}-9-1-1"
    out = sample.replace(b'uid="16173334444-9-1-1"', f'uid="{uid}"'.encode())
    out = out.replace(b'type="b-a-o-tbl"', f'type="{cot_type}"'.encode())
    out = out.replace(b'link uid="ANDROID-358982072593830"', f'link uid="{device}"'.encode())
    out = out.replace(b'callsign="BOB-Alert"', f'callsign="{callsign}-Alert"'.encode())
    out = out.replace(b'<emergency type="911 Alert">BOB</emergency>',
                      f'<emergency type="{ALERTS[cot_type]}">{callsign}</emergency>'.encode())
    out = re.sub(rb'\btime="[^"]+"', f'time="{iso(now)}"'.encode(), out, count=1)
    out = re.sub(rb'\bstart="[^"]+"', f'start="{iso(now)}"'.encode(), out, count=1)
    out = re.sub(rb'\bstale="[^"]+"', f'stale="{iso(now + timedelta(seconds=10))}"'.encode(), out, count=1)
    assert uid.encode() in out and cot_type.encode() in out
    return uid, out


def copies(client: CotClient, uid: str, cot_type: str | None = None, since: int = 0) -> int:
    return sum(1 for e in client.events[since:] if e.uid == uid and (cot_type is None or e.type == cot_type))


async def repeated(client: CotClient, uid: str, times: int, since: int = 0) -> None:
    """Wait until ``client`` holds ``times`` copies of ``uid`` received after index ``since``."""
    await client.wait_for(lambda _: copies(client, uid, since=since) >= times, timeout=10)


def active_emergencies(server: ServerProcess) -> float:
    text = httpx.get(f"http://127.0.0.1:{server.ports['http']}/metrics", timeout=5).text
    match = re.search(r"^rallypoint_active_emergencies (\S+)$", text, re.M)
    assert match is not None, "rallypoint_active_emergencies missing from /metrics"
    return float(match.group(1))


async def _pair(server: ServerProcess, clients: list[object]) -> tuple[CotClient, CotClient]:
    a = await CotClient.connect(server.ports["cot"])
    b = await CotClient.connect(server.ports["cot"])
    clients.extend([a, b])
    return a, b


async def test_every_emergency_type_is_repeated_to_others(server: ServerProcess, clients: list[object]) -> None:
    a, b = await _pair(server, clients)
    c = await CotClient.connect(server.ports["cot"])
    clients.append(c)
    sent = {}
    for i, cot_type in enumerate(ALERTS):
        uid, message = alert(cot_type, f"DEVICE-{i}", f"E{i}")
        await a.send(message)
        sent[uid] = cot_type
    for uid, cot_type in sent.items():
        # The sender sent each alert once: a third copy can only be the server's repeats.
        await repeated(b, uid, 3)
        await repeated(c, uid, 3)
        assert {e.type for e in b.events if e.uid == uid} == {cot_type}
        first, *repeats = [e for e in b.events if e.uid == uid]
        assert all(r.stale > r.time for r in repeats), "a repeat must carry a fresh stale time"
        assert repeats[-1].time > first.time
    await a.barrier(b)
    assert not a.has(lambda e: e.uid in sent), "the alerting device got its own alert back"
    assert active_emergencies(server) == len(ALERTS)


@pytest.mark.parametrize("form", ["b-a-o-can alone", "emergency cancel=true alone"])
async def test_cancel_stops_repeats_and_hides_it_from_late_joiners(
    server: ServerProcess, clients: list[object], form: str
) -> None:
    a, b = await _pair(server, clients)
    gone, raise_gone = alert("b-a-o-pan", "DEVICE-GONE", "GONE")
    kept, raise_kept = alert("b-a-o-opn", "DEVICE-KEPT", "KEPT")
    await a.send(raise_gone)
    await a.send(raise_kept)
    await repeated(b, gone, 2)
    await repeated(b, kept, 2)
    if form == "b-a-o-can alone":
        cancel = cot(gone, "b-a-o-can", stale_s=10, detail='<link uid="DEVICE-GONE" type="a-f-G-U-C" relation="p-p"/>')
    else:
        # The alert's own type, cancelled only by the <emergency cancel="true"> element.
        cancel = cot(gone, "b-a-o-pan", stale_s=10,
                     detail='<link uid="DEVICE-GONE" type="a-f-G-U-C" relation="p-p"/>'
                            '<contact callsign="GONE-Alert"/><emergency cancel="true">GONE</emergency>')
    await a.send(cancel)
    seen = await b.wait_for(
        lambda e: e.uid == gone and (e.type == "b-a-o-can" or (e.detail.emergency is not None
                                                                and e.detail.emergency.cancel))
    )
    after = b.events.index(seen) + 1
    # The other alert keeps being repeated: three more of its repeats span at least two repeat
    # periods after the cancel, and none of them may be accompanied by a repeat of the cancelled one.
    await repeated(b, kept, 3, since=after)
    assert copies(b, gone, since=after) == 0, "the cancelled emergency was repeated after its cancel"
    assert active_emergencies(server) == 1
    late = await CotClient.connect(server.ports["cot"])
    clients.append(late)
    await late.wait_uid(kept)
    assert _given_on_join(late, kept)
    await late.barrier(a)
    assert not late.has(lambda e: e.uid == gone), "a late joiner was given a cancelled emergency"


async def test_late_joiner_receives_an_active_emergency(server: ServerProcess, clients: list[object]) -> None:
    a, b = await _pair(server, clients)
    uid, message = alert("b-a-o-tbl", "DEVICE-LATE", "LATE")
    await a.send(message)
    await b.wait_uid(uid)
    late = await CotClient.connect(server.ports["cot"])
    clients.append(late)
    got = await late.wait_uid(uid)
    assert got.type == "b-a-o-tbl" and got.detail.emergency is not None
    assert got.detail.emergency.type == "911 Alert"
    assert _given_on_join(late, uid), "the active emergency was not part of what a new client is given"
    assert got.stale > got.time


def _given_on_join(client: CotClient, uid: str) -> bool:
    """True when ``uid`` came with the join picture, which the server sends before its protocol offer
    (so a later repeat cannot be the reason it arrived)."""
    types = [e.type for e in client.events]
    offer = types.index("t-x-takp-v")
    return any(e.uid == uid for e in client.events[:offer])


async def test_a_client_outside_the_alerts_groups_cannot_cancel_it(
    data_dir: Path, tmp_path: Path, clients: list[object]
) -> None:
    groups = {"red1": ["Red"], "red2": ["Red"], "blue1": ["Blue"]}
    with serve_with_groups(data_dir, groups, env={"RALLYPOINT_EMERGENCY_REPEAT_S": REPEAT_S}) as server:
        port = server.ports["tls"]
        red1, red2, blue1 = [
            await CotClient.connect(port, ssl_context=client_context(server, name, tmp_path)) for name in groups
        ]
        anon = await CotClient.connect(server.ports["cot"])
        clients.extend([red1, red2, blue1, anon])
        uid, message = alert("b-a-o-tbl", "DEVICE-RED", "RED")
        await red1.send(message)
        await repeated(red2, uid, 2)
        # Neither a Blue client nor an anonymous one can see this alert, so neither may silence it,
        # by cancelling it or by taking its uid over with an alert of its own.
        for outsider in (blue1, anon):
            await outsider.send(alert("b-a-o-c", "DEVICE-RED", "RED")[1])
            await outsider.send(cot(uid, "b-a-o-can", stale_s=10,
                                    detail='<link uid="DEVICE-RED" type="a-f-G-U-C" relation="p-p"/>'
                                           '<emergency cancel="true">RED</emergency>'))
            await outsider.send(cot(f"other-{uid}", "b-a-o-can", stale_s=10,
                                    detail='<link uid="DEVICE-RED" type="a-f-G-U-C" relation="p-p"/>'))
            # Events of one connection are handled in order: the pong means the cancels were seen.
            await outsider.send(cot(f"{uuid.uuid4()}-ping", "t-x-c-t", stale_s=10))
            await outsider.wait_for(lambda e: e.type == "t-x-c-t-r")
        # Repeats must go on.
        since = len(red2.events)
        await repeated(red2, uid, 3, since=since)
        assert active_emergencies(server) == 1
        assert not red2.has(lambda e: e.type == "b-a-o-can")
        # Each outsider's takeover and cancel was refused and counted.
        assert metric_value(server, "rallypoint_emergency_refused_total") >= 4
        await red1.send(cot(uid, "b-a-o-can", stale_s=10,
                            detail='<link uid="DEVICE-RED" type="a-f-G-U-C" relation="p-p"/>'))
        seen = await red2.wait_for(lambda e: e.type == "b-a-o-can")
        assert active_emergencies(server) == 0
        assert seen.uid == uid
