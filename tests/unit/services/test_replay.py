"""Replay rules: windows, pacing, re-stamping, and reading a window a page at a time."""

from __future__ import annotations

import csv
import io

import pytest
from lxml import etree

from rallypoint.protocol.timefmt import parse_time
from rallypoint.services.replay import MAX_WINDOW_MS, Pacer, ReplayError, check_speed, restamp, window, window_rows
from rallypoint.storage.export import CSV_COLUMNS, to_csv
from rallypoint.storage.memory import MemoryEventStore
from tests.support.stored import T0, make_event


def test_window_needs_both_ends_in_order_and_bounded() -> None:
    assert window(T0, T0 + 1).until_ms == T0 + 1
    for since, until in ((None, T0), (T0, None), (T0, T0), (T0 + 5, T0), (T0, T0 + MAX_WINDOW_MS + 1)):
        with pytest.raises(ReplayError):
            window(since, until)


def test_speed_bounds() -> None:
    assert check_speed(60) == 60
    for bad in (0, -1, 0.001, 5000, float("inf")):
        with pytest.raises(ReplayError):
            check_speed(bad)


def test_pacer_divides_the_original_spacing_by_the_speed() -> None:
    pacer = Pacer(started_ms=1_000, first_ms=T0, speed=10)
    assert [pacer.due_ms(T0 + d) for d in (0, 1_000, 60_000)] == [1_000, 1_100, 7_000]


def test_restamp_moves_times_and_prefixes_the_uid() -> None:
    row = make_event("u-1", time=T0, stale_s=60, callsign="ALPHA")
    out = etree.fromstring(restamp(b'<?xml version="1.0"?>\n' + row.xml, shift_ms=3_600_000))
    assert out.get("uid") == "replay-u-1"
    assert parse_time(out.get("time")) == T0 + 3_600_000
    assert parse_time(out.get("stale")) - parse_time(out.get("time")) == 60_000
    assert out.find("detail/contact").get("callsign") == "ALPHA"
    kept = etree.fromstring(restamp(row.xml, shift_ms=0, uid_prefix=""))
    assert kept.get("uid") == "u-1"


def test_restamp_refuses_hostile_xml() -> None:
    with pytest.raises(ReplayError):
        restamp(b'<!DOCTYPE x [<!ENTITY a "b">]><event uid="&a;"/>', shift_ms=0)
    with pytest.raises(ReplayError):
        restamp(b"<event", shift_ms=0)


async def test_window_rows_pages_through_the_window_in_time_order() -> None:
    store = MemoryEventStore()
    rows = [make_event(f"u-{i % 3}", time=T0 + i * 1000) for i in range(25)]
    await store.append(list(reversed(rows)))
    await store.append([make_event("late", time=T0 + 10 * 60_000)])
    win = window(T0 + 2000, T0 + 22_000)
    got = [r async for r in window_rows(store, win, reader=None, limit=100, page_rows=4)]
    assert [r.time for r in got] == [T0 + i * 1000 for i in range(2, 22)]
    capped = [r async for r in window_rows(store, win, reader=None, limit=7, page_rows=4)]
    assert len(capped) == 7


def test_csv_export_parses_back() -> None:
    rows = [make_event("u,1", callsign='A "quoted", one', groups=("Cyan", "Red team")),
            make_event("nofix", lat=0, lon=0)]
    table = list(csv.DictReader(io.StringIO(to_csv(rows).decode())))
    assert tuple(table[0]) == CSV_COLUMNS
    assert table[0]["uid"] == "u,1" and table[0]["callsign"] == 'A "quoted", one'
    assert table[0]["groups"] == "Cyan;Red team" and float(table[0]["lat"]) == 10.0
    assert table[1]["lat"] == "" and table[1]["lon"] == ""
