"""The row ingest stores: access groups, team colour, and whether the event entered the picture."""

from __future__ import annotations

from rallypoint.services.ingest import Ingest
from rallypoint.storage.base import HistoryQuery
from rallypoint.storage.memory import MemoryEventStore
from rallypoint.storage.writer import BatchedEventWriter
from tests.support.picture import Picture, delete, device_sa, event, groups, marker, picture


def _with_store(pic: Picture) -> tuple[BatchedEventWriter, MemoryEventStore]:
    store = MemoryEventStore()
    writer = BatchedEventWriter(store)
    pic.ingest = Ingest(
        directory=pic.directory, router=pic.router, bus=pic.bus, presence=pic.presence,
        emergencies=pic.emergencies, writer=writer, metrics=pic.metrics, clock=pic.clock, identity=pic.identity,
    )
    return writer, store


async def test_rows_record_groups_team_and_picture() -> None:
    pic = picture()
    writer, store = _with_store(pic)
    blue, red = pic.join("b", groups("Blue")), pic.join("r", groups("Red"))
    pic.join("contact", groups("Blue"))
    pic.send(blue, device_sa(pic.clock, "uid-blue", "BLUE", team="Cyan"))
    pic.send(blue, marker(pic.clock, "m-1", stale_s=3600))
    pic.send(red, marker(pic.clock, "m-1", stale_s=3600))  # another group's item with the same uid
    pic.send(blue, event(pic.clock, "m-1", "b-m-p-s-m", '<marti><dest callsign="BLUE"/></marti>', stale_s=3600))
    pic.send(red, delete(pic.clock, "m-1"))  # refused: Red shares no group with the marker
    await writer.flush()

    rows = await store.query(HistoryQuery())
    assert [(r.uid, r.groups, r.team, r.picture) for r in rows] == [
        ("uid-blue", groups("Blue"), "Cyan", True),
        ("m-1", groups("Blue"), None, True),
        ("m-1", groups("Red"), None, False),
        ("m-1", frozenset(), None, False),
        ("del-m-1", groups("Red"), None, False),
    ]
    # What a restart would reload is what presence holds.
    assert [(r.uid, r.groups) for r in await store.latest(now_ms=pic.clock.now_ms(), types_prefix=("b-m-p",))] == [
        ("m-1", groups("Blue"))
    ]
    assert pic.presence.items["m-1"].origin.groups == groups("Blue")
