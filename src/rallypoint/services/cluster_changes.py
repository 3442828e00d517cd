"""Changes of state that every node mirrors in memory, told to every node over the bus.

A node that changes a mission (or its subscriptions), an account, or the revocation list
publishes a ``t-x-rp-change`` event with an empty audience: it reaches no socket, travels in the
``MESSAGE`` class (JetStream, so a node that was away gets it when it is back) and every node,
the publisher included (in the publisher's frame), runs the listeners registered for its kind.
The listeners re-read the shared store (missions, accounts) or merge what the change carries
(revocations), then apply it to live sessions exactly as a local change is applied.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from enum import StrEnum

import msgspec

from rallypoint.bus.base import MessageBus
from rallypoint.clock import Clock
from rallypoint.model.cot import CotEvent, Detail, Point
from rallypoint.routing.envelope import SERVER_ORIGIN_ID, Envelope, Origin
from rallypoint.routing.router import Audience

log = logging.getLogger(__name__)

CHANGE_TYPE = "t-x-rp-change"
_ORIGIN_POINT = Point(0.0, 0.0)


class ChangeKind(StrEnum):
    """What changed: a mission (``key`` is its name), the accounts, the revocation list."""

    MISSION = "mission"
    ACCOUNTS = "accounts"
    REVOCATIONS = "revocations"
    TASK = "task"


class Change(msgspec.Struct, frozen=True):
    """One change as every node receives it; ``local`` when this node made it."""

    kind: ChangeKind
    key: str = ""
    payload: bytes = b""
    local: bool = False


class _Carried(msgspec.Struct, frozen=True):
    kind: ChangeKind
    key: str
    payload: bytes


Listener = Callable[[Change], Awaitable[None]]


class ClusterChanges:
    """Publishes changes on the bus and runs this node's listeners for every node's changes."""

    def __init__(self, bus: MessageBus, clock: Clock) -> None:
        self._bus = bus
        self._clock = clock
        self._listeners: dict[ChangeKind, list[Listener]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(_Carried)
        self.announced = 0
        self.applied = 0
        self.failed = 0
        self.malformed = 0

    def listen(self, kind: ChangeKind, listener: Listener) -> None:
        """Run ``listener`` for every change of ``kind`` made by any node (this one included)."""
        self._listeners.setdefault(kind, []).append(listener)

    def announce(self, kind: ChangeKind, key: str = "", payload: bytes = b"") -> None:
        """Tell every node that ``kind`` (``key``) changed; never blocks the caller."""
        now = self._clock.now_ms()
        carried = self._encoder.encode(_Carried(kind=kind, key=key, payload=payload))
        # The change rides in the detail as JSON: this event is never encoded for a socket.
        event = CotEvent(
            uid=f"rp-change-{uuid.uuid4()}", type=CHANGE_TYPE, how="h-g-i-g-o", time=now, start=now,
            stale=now + 60_000, point=_ORIGIN_POINT, detail=Detail(xml=carried),
        )
        self.announced += 1
        self._bus.publish(Envelope(event, Origin(session_id=SERVER_ORIGIN_ID), now), Audience(delivery_only=True))

    def observe(self, envelope: Envelope, audience: Audience) -> None:
        """Bus handler: start this node's listeners for a change of any node."""
        if envelope.event.type != CHANGE_TYPE:
            return
        try:
            carried = self._decoder.decode(envelope.event.detail.xml)
        except msgspec.DecodeError:
            self.malformed += 1
            log.warning("malformed cluster change refused", extra={"node": envelope.origin.node})
            return
        change = Change(kind=carried.kind, key=carried.key, payload=carried.payload,
                        local=envelope.origin.node == self._bus.node)
        for listener in self._listeners.get(change.kind, ()):
            task = asyncio.get_running_loop().create_task(self._run(listener, change))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, listener: Listener, change: Change) -> None:
        try:
            await listener(change)
        except Exception:
            self.failed += 1
            log.exception("applying a cluster change failed", extra={"kind": change.kind, "key": change.key})
        else:
            self.applied += 1

    async def close(self) -> None:
        """Wait for the listeners still running."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def counters(self) -> list[tuple[str, str, float]]:
        """For ``ServerMetrics.add_counters``."""
        return [
            ("rallypoint_cluster_changes_announced_total", "Changes this node told every node", float(self.announced)),
            ("rallypoint_cluster_changes_applied_total", "Changes of any node applied here", float(self.applied)),
            ("rallypoint_cluster_changes_failed_total", "Changes whose application raised", float(self.failed)),
            ("rallypoint_cluster_changes_malformed_total", "Change publications refused as malformed",
             float(self.malformed)),
        ]
