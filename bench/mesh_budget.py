"""The Meshtastic gateway's outbound path on a slow mesh: budget kept, every chat delivered, bytes per position.

    .venv/bin/python bench/mesh_budget.py [--users 50] [--rate 1.0] [--link-bps 1000] [--share 0.8]
                                          [--chat-every 5] [--aircraft 0] [--duration 600] [--json]

A mesh link of ``--link-bps`` bits/s is simulated in time steps (no sockets, no sleeping): the
gateway's own outbound code (``outbound.outgoing`` turning each TAK event into a plugin packet,
``ChannelBudget`` deciding when it may go) gets ``--users`` TAK users' positions at ``--rate`` Hz
and one GeoChat every ``--chat-every`` s (from a rotating user) for ``--duration`` simulated
seconds, with a budget of ``--share`` of the link; with ``--aircraft N``, N ADS-B tracks at 1 Hz also
offered (``send`` then includes ``aircraft``: V2 ``AircraftTrack`` packets in the bulk lane, which
must not slow the users' positions). Reported: the airtime bytes per second
(highest over any 10 s window and the mean) against the budget and the link, how many chats
arrived and their delay, how fresh each user's position is on the mesh (the position thinning),
bytes per position over the mesh (plugin ``TAKPacket``, compressed strings) against the same SA
as TAK protobuf and as XML, and the CPU time (``time.process_time``) of the gateway per offered
event. CPU time, not wall time, because the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import deque

from rallypoint.connectors.meshtastic.budget import HEADER_BYTES, ChannelBudget, Lane, cost
from rallypoint.connectors.meshtastic.dictionaries import bundled
from rallypoint.connectors.meshtastic.outbound import outgoing
from rallypoint.connectors.meshtastic.tak import TakCodec
from rallypoint.model.cot import CotEvent
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.timefmt import format_time
from rallypoint.protocol.wire import WireFormat, encode_for_wire
from rallypoint.protocol.xml_codec import parse_event
from rallypoint.routing.envelope import Envelope, Origin

STEP_S = 0.05
LIMITS = Limits()
SEND = frozenset({"pli", "chat", "emergency"})


def sa(i: int, now_ms: int) -> CotEvent:
    """An ATAK-like self SA of user ``i`` (contact, group, takv, status, track)."""
    t, stale = format_time(now_ms), format_time(now_ms + 120_000)
    lat, lon = 48.80 + i * 0.001 + (now_ms % 60_000) * 1e-8, 2.30 + i * 0.001
    return parse_event((
        f'<event version="2.0" uid="ANDROID-{i:016x}" type="a-f-G-U-C" how="m-g" time="{t}" start="{t}"'
        f' stale="{stale}"><point lat="{lat:.7f}" lon="{lon:.7f}" hae="112.3" ce="4.9" le="9999999.0"/>'
        f'<detail><takv os="34" version="5.3.0" device="Pixel 8" platform="ATAK-CIV"/>'
        f'<contact endpoint="*:-1:stcp" callsign="UNIT-{i:02d}"/><uid Droid="UNIT-{i:02d}"/>'
        f'<__group role="Team Member" name="Cyan"/><status battery="{50 + i % 50}"/>'
        f'<track course="{(i * 7) % 360}.0" speed="1.4"/></detail></event>'
    ).encode(), LIMITS)


def aircraft(i: int, now_ms: int) -> CotEvent:
    """ADS-B track ``i`` as a feed writes it (``a-n-A-C-F``, ICAO address in the uid and remarks)."""
    t, stale = format_time(now_ms), format_time(now_ms + 30_000)
    icao = f"{0xA00000 + i:06X}"
    lat, lon = 48.70 + i * 0.01 + (now_ms % 60_000) * 2e-8, 2.10 + i * 0.01
    return parse_event((
        f'<event version="2.0" uid="ICAO-{icao}" type="a-n-A-C-F" how="m-g" time="{t}" start="{t}" stale="{stale}">'
        f'<point lat="{lat:.6f}" lon="{lon:.6f}" hae="3200" ce="50" le="50"/><detail>'
        f'<contact callsign="AFR{i:03d}"/><track course="{(i * 37) % 360}.0" speed="210.5"/>'
        f"<remarks>ICAO: {icao} Flight: AFR{i:03d} Squawk: 1000 Category: A3</remarks></detail></event>"
    ).encode(), LIMITS)


def chat(i: int, n: int, now_ms: int) -> CotEvent:
    """GeoChat ``n`` from user ``i`` to All Chat Rooms."""
    t, stale = format_time(now_ms), format_time(now_ms + 86_400_000)
    uid = f"ANDROID-{i:016x}"
    return parse_event((
        f'<event version="2.0" uid="GeoChat.{uid}.All Chat Rooms.msg-{n}" type="b-t-f" how="h-g-i-g-o"'
        f' time="{t}" start="{t}" stale="{stale}"><point lat="0" lon="0" hae="9999999.0" ce="9999999.0"'
        f' le="9999999.0"/><detail><__chat parent="RootContactGroup" groupOwner="false" chatroom="All Chat Rooms"'
        f' id="All Chat Rooms" senderCallsign="UNIT-{i:02d}"><chatgrp uid0="{uid}" uid1="All Chat Rooms"'
        f' id="All Chat Rooms"/></__chat><link uid="{uid}" type="a-f-G-U-C" relation="p-p"/>'
        f'<remarks source="BAO.F.ATAK.{uid}" to="All Chat Rooms" time="{t}">Checkpoint {n} reached, moving on</remarks>'
        f"</detail></event>"
    ).encode(), LIMITS)


def run(args: argparse.Namespace) -> dict[str, object]:
    tak = TakCodec(bundled())
    send = SEND | {"aircraft"} if args.aircraft else SEND
    link_bytes_per_s = args.link_bps / 8
    budget = ChannelBudget(bytes_per_s=link_bytes_per_s * args.share, burst_bytes=2 * (237 + HEADER_BYTES))
    origin = Origin(session_id="tcp-1", node="bench")
    chats_sent: dict[str, float] = {}
    chats_arrived: dict[str, float] = {}
    position_seen: dict[str, float] = {}
    ages: list[float] = []
    window: deque[tuple[float, int]] = deque()
    peak_window = 0.0
    airtime = 0
    link_free_at = 0.0  # the radio sends one packet at a time at the link rate
    offered = 0
    cpu = 0.0
    mesh_bytes: list[int] = []
    proto_bytes: list[int] = []
    xml_bytes: list[int] = []
    steps = int(args.duration / STEP_S)
    next_pli = [i / args.users / args.rate for i in range(args.users)]
    next_chat, chat_n = 0.0, 0
    next_aircraft = [j / max(1, args.aircraft) for j in range(args.aircraft)]
    aircraft_sent = aircraft_offered = 0
    aircraft_bytes: list[int] = []
    for step in range(steps):
        now = step * STEP_S
        now_ms = 1_700_000_000_000 + int(now * 1000)
        events = []
        for i in range(args.users):
            if now >= next_pli[i]:
                next_pli[i] += 1 / args.rate
                events.append(sa(i, now_ms))
        for j in range(args.aircraft):
            if now >= next_aircraft[j]:
                next_aircraft[j] += 1.0
                events.append(aircraft(j, now_ms))
                aircraft_offered += 1
        if now >= next_chat:
            next_chat += args.chat_every
            events.append(chat(chat_n % args.users, chat_n, now_ms))
            chats_sent[events[-1].uid] = now
            chat_n += 1
        started = time.process_time()
        for event in events:
            item = outgoing(Envelope(event, origin, now_ms), tak=tak, send=send, send_groups=frozenset(),
                            own_session="mesh")
            offered += 1
            if item is not None:
                budget.offer(item)
                if item.lane is Lane.BULK and len(aircraft_bytes) < 200:
                    aircraft_bytes.append(len(item.payload))
                if item.lane is Lane.POSITION and len(mesh_bytes) < 200:
                    mesh_bytes.append(len(item.payload))
                    proto_bytes.append(len(encode_for_wire(event, WireFormat.PROTOBUF)))
                    xml_bytes.append(len(encode_for_wire(event, WireFormat.XML)))
        while now >= link_free_at and (item := budget.take(now)) is not None:
            airtime += cost(item)
            window.append((now, cost(item)))
            link_free_at = max(now, link_free_at) + cost(item) / link_bytes_per_s
            if item.lane is Lane.CHAT:
                chats_arrived[item.key] = link_free_at
            elif item.lane is Lane.BULK:
                aircraft_sent += 1
            else:
                if item.key in position_seen:
                    ages.append(now - position_seen[item.key])
                position_seen[item.key] = now
        cpu += time.process_time() - started
        while window and window[0][0] <= now - 10.0:
            window.popleft()
        if now >= 10.0:
            peak_window = max(peak_window, sum(b for _, b in window) / 10.0)
    delays = [chats_arrived[uid] - sent for uid, sent in chats_sent.items() if uid in chats_arrived]
    return {
        "users": args.users, "rate_hz": args.rate, "link_bytes_per_s": link_bytes_per_s,
        "budget_bytes_per_s": budget.bytes_per_s, "duration_s": args.duration,
        "mean_bytes_per_s": round(airtime / args.duration, 1), "peak_10s_bytes_per_s": round(peak_window, 1),
        # A token bucket bounds any 10 s to rate * 10 + burst bytes.
        "budget_kept": peak_window * 10 <= budget.bytes_per_s * 10 + budget.burst_bytes,
        "chats_sent": len(chats_sent), "chats_arrived": len(chats_arrived),
        "chat_delay_s_median": round(statistics.median(delays), 2) if delays else None,
        "chat_delay_s_max": round(max(delays), 2) if delays else None,
        "positions_offered": offered - len(chats_sent) - aircraft_offered,
        "aircraft_offered": aircraft_offered, "aircraft_sent": aircraft_sent,
        "positions_sent": budget.sent_packets - len(chats_arrived) - aircraft_sent,
        "position_coalesced": budget.coalesced,  # aircraft replaced while waiting included
        "position_update_interval_s_median": round(statistics.median(ages), 1) if ages else None,
        "bytes_per_position_mesh_payload": round(statistics.mean(mesh_bytes), 1),
        "bytes_per_position_mesh_airtime": round(statistics.mean(mesh_bytes) + HEADER_BYTES, 1),
        "bytes_per_position_tak_protobuf": round(statistics.mean(proto_bytes), 1),
        "bytes_per_position_tak_xml": round(statistics.mean(xml_bytes), 1),
        "bytes_per_aircraft_mesh_payload": round(statistics.mean(aircraft_bytes), 1) if aircraft_bytes else None,
        "cpu_us_per_offered_event": round(cpu / offered * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--link-bps", type=float, default=1000.0)
    parser.add_argument("--share", type=float, default=0.8)
    parser.add_argument("--chat-every", type=float, default=5.0)
    parser.add_argument("--aircraft", type=int, default=0)
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:36} {value}")


if __name__ == "__main__":
    main()
