"""Envelopes for outbox and budget tests."""

from __future__ import annotations

from rallypoint.model.cot import CotEvent, Point
from rallypoint.model.cot_type import Priority
from rallypoint.routing.envelope import Envelope, Origin

FAR_FUTURE_MS = 10**13

TYPE_OF = {
    Priority.EMERGENCY: "b-a-o-tbl",
    Priority.MESSAGE: "b-t-f",
    Priority.POSITION: "a-f-G-U-C",
    Priority.OTHER_POSITION: "a-f-G-U-C",
    Priority.BULK: "b-x-y",
}


def envelope(
    prio: Priority, uid: str, *, stale: int = FAR_FUTURE_MS, raw_size: int | None = None, tag: int = 0
) -> Envelope:
    """An envelope whose type puts it in ``prio`` (OTHER_POSITION needs ``own_group=False`` at put)."""
    raw = None if raw_size is None else b"x" * raw_size
    event = CotEvent(
        uid=uid, type=TYPE_OF[prio], how="m-g", time=tag, start=tag, stale=stale, point=Point(0.0, 0.0), raw=raw
    )
    env = Envelope(event, Origin(session_id="s"), tag)
    assert env.priority == (Priority.POSITION if prio is Priority.OTHER_POSITION else prio)
    return env
