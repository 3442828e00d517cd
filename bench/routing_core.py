"""CPU per event of the routing core alone: Ingest.accept -> bus -> features -> Dispatcher -> offer.

    .venv/bin/python bench/routing_core.py [--events 200000] [--receivers 10]

No sockets, no storage: one sender's position reports (its own device SA, the broadcast hot path)
and addressed chats, delivered to receivers that only count what they are offered. Prints
microseconds of process CPU time per accepted event (best of ``--repeat`` runs). Run it from two
trees (``PYTHONPATH=<tree>/src``) to compare a change before and after in the same session.
"""

from __future__ import annotations

import argparse
import time

from rallypoint.bus.local import LocalBus
from rallypoint.clock import ManualClock
from rallypoint.delivery.dispatcher import Dispatcher
from rallypoint.model.cot import Point
from rallypoint.protocol.xml_codec import make_event
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Router
from rallypoint.security.policy import IdentityPolicy
from rallypoint.services.emergency import EmergencyService
from rallypoint.services.ingest import Ingest
from rallypoint.services.metrics import ServerMetrics
from rallypoint.services.presence import Presence

GROUPS = frozenset({"__ANON__"})


class Counter:
    """A subscriber that only counts."""

    def __init__(self, sub_id: str) -> None:
        self.id = sub_id
        self.read_groups = GROUPS
        self.write_groups = GROUPS
        self.offered = 0

    def offer(self, envelope: Envelope) -> None:
        self.offered += 1


def _core(receivers: int) -> tuple[Ingest, Directory, Counter]:
    clock = ManualClock()
    identity = IdentityPolicy()
    directory = Directory()
    bus = LocalBus("bench")
    dispatcher = Dispatcher(directory)
    presence = Presence(directory)
    ingest = Ingest(
        directory=directory, router=Router(directory), bus=bus, presence=presence,
        emergencies=EmergencyService(clock), writer=None, metrics=ServerMetrics(), clock=clock,
        identity=identity,
    )
    # Subscribed after the features when Ingest subscribes itself (as build_node does).
    bus.subscribe(dispatcher.deliver)
    sender = Counter("bench:s:sender")
    directory.add(sender)
    identity.track_session(sender.id)  # a stream session: its first device SA binds its uid
    for n in range(receivers):
        directory.add(Counter(f"bench:s:r-{n}"))
    return ingest, directory, sender


def _events(count: int, chat_every: int) -> list[Envelope]:
    origin = Origin(session_id="bench:s:sender", groups=GROUPS, node="bench")
    sa = '<takv platform="ATAK-CIV"/><contact callsign="SENDER" endpoint="*:-1:stcp"/><__group name="Cyan"/>'
    chat = ('<__chat parent="RootContactGroup" chatroom="R0" id="uid-r0" senderCallsign="SENDER">'
            '<chatgrp uid0="uid-s" uid1="uid-r0" id="uid-r0"/></__chat><link uid="uid-s" relation="p-p"/>'
            '<marti><dest callsign="R0"/></marti>')
    out = []
    for n in range(count):
        is_chat = chat_every and n % chat_every == chat_every - 1
        event = make_event(
            uid=f"chat-{n}" if is_chat else "uid-s", type="b-t-f" if is_chat else "a-f-G-U-C", how="m-g",
            time=n, start=n, stale=n + 60_000, point=Point(1.0 + n * 1e-6, 2.0),
            detail_xml=(chat if is_chat else sa).encode(),
        )
        out.append(Envelope(event, origin, n))
    return out


def run(events: int, receivers: int, chat_every: int) -> float:
    ingest, directory, _ = _core(receivers)
    envelopes = _events(events, chat_every)
    ingest.accept(envelopes[0])  # binds the sender's uid, as its first SA does
    directory.bind("bench:s:r-0", uid="uid-r0", callsign="R0")
    started = time.process_time()
    for envelope in envelopes:
        ingest.accept(envelope)
    return (time.process_time() - started) / events * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--receivers", type=int, default=10)
    parser.add_argument("--chat-every", type=int, default=20, help="one addressed chat every N events (0: none)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    best = min(run(args.events, args.receivers, args.chat_every) for _ in range(args.repeat))
    print(f"{best:.2f} us CPU per accepted event ({args.receivers} receivers, chat every {args.chat_every})")


if __name__ == "__main__":
    main()
