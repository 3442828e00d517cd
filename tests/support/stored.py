"""Stored event rows for storage tests, built through the model as the ingest path builds them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from xml.sax.saxutils import quoteattr

from rallypoint.clock import ms_to_datetime
from rallypoint.model.cot import UNKNOWN_ERROR, CotEvent, Detail, Point
from rallypoint.storage.base import StoredEvent, stored_event_from_cot
from rallypoint.storage.factory import open_event_store

T0 = 1_700_000_000_000
MakeEvent = Callable[..., StoredEvent]


def _iso(ms: int) -> str:
    return ms_to_datetime(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def event_xml(ev: CotEvent) -> bytes:
    """Hand-written CoT XML for a model event (tests must not depend on the codec)."""
    contact = f"<contact callsign={quoteattr(ev.detail.callsign)}/>" if ev.detail.callsign else ""
    return (
        f'<event version="2.0" uid={quoteattr(ev.uid)} type={quoteattr(ev.type)} how={quoteattr(ev.how)}'
        f' time="{_iso(ev.time)}" start="{_iso(ev.start)}" stale="{_iso(ev.stale)}">'
        f'<point lat="{ev.point.lat}" lon="{ev.point.lon}" hae="{ev.point.hae}"'
        f' ce="{ev.point.ce}" le="{ev.point.le}"/><detail>{contact}</detail></event>'
    ).encode()


def make_event(
    uid: str = "u-1",
    *,
    type: str = "a-f-G-U-C",
    time: int = T0,
    stale_s: float = 60.0,
    lat: float = 10.0,
    lon: float = 20.0,
    hae: float = UNKNOWN_ERROR,
    callsign: str | None = None,
    groups: Iterable[str] = ("__ANON__",),
    team: str | None = None,
    picture: bool | None = None,
    sender: str | None = None,
    received: int | None = None,
) -> StoredEvent:
    """A stored row: broadcast to ``groups`` and in the picture unless told otherwise.

    ``picture`` defaults to "broadcast" (non-empty ``groups``), what presence decides for an item
    it accepts.
    """
    cot = CotEvent(
        uid=uid,
        type=type,
        how="m-g",
        time=time,
        start=time,
        stale=time + int(stale_s * 1000),
        point=Point(lat=lat, lon=lon, hae=hae),
        detail=Detail(callsign=callsign, group_name=team),
    )
    groups = frozenset(groups)
    return stored_event_from_cot(
        cot, received=received if received is not None else time, sender=sender, xml=event_xml(cot),
        groups=groups, picture=bool(groups) if picture is None else picture,
    )


def seed_store(data_dir: Path, rows: list[StoredEvent]) -> None:
    """Write ``rows`` into the SQLite event store of ``data_dir`` before a server starts on it.

    Runs in a thread of its own: a synchronous Playwright test owns its thread's event loop.
    """
    async def seed() -> None:
        store = open_event_store("sqlite://", data_dir)
        try:
            await store.append(rows)
        finally:
            await store.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, seed()).result()


def walker_and_hostile(start: int, steps: int, spacing_ms: int) -> list[StoredEvent]:
    """Two units reporting every ``spacing_ms`` from ``start``: WALKER north from 39.0,-120.0 and a hostile
    east from 39.05,-120.05 (0.01° a report) whose callsign is a script payload."""
    return [
        *(make_event("u-walker", time=start + i * spacing_ms, lat=39.0 + i * 0.01, lon=-120.0, callsign="WALKER",
                     stale_s=45) for i in range(steps)),
        *(make_event("u-hostile", type="a-h-G", time=start + i * spacing_ms, lat=39.05, lon=-120.05 + i * 0.01,
                     callsign="<img src=x onerror=alert(1)>", stale_s=45) for i in range(steps)),
    ]
