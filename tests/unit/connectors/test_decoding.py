"""The pieces every decoder shares: bounded line splitting, bounded state, position and number checks."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from rallypoint.connectors.base import Rejects
from rallypoint.connectors.decoding import (
    BoundedMap,
    LineSplitter,
    finite,
    number,
    position_problem,
    time_of_day_near,
)


def test_lines_across_reads_with_crlf() -> None:
    rejects = Rejects()
    split = LineSplitter(rejects, max_line=20)
    assert list(split.feed(b"ab")) == []
    assert list(split.feed(b"c\r")) == []
    assert list(split.feed(b"\n\r\n  \nde\nf")) == [b"abc", b"de"]
    assert split.buffered == 1
    assert list(split.feed(b"\n")) == [b"f"]
    assert rejects.total == 0


def test_long_line_is_skipped_to_its_newline_and_counted_once() -> None:
    rejects = Rejects()
    split = LineSplitter(rejects, max_line=10)
    assert list(split.feed(b"x" * 8)) == []
    assert list(split.feed(b"y" * 8)) == []  # now 16 held: dropped, skipping
    assert split.buffered == 0
    assert list(split.feed(b"z" * 100)) == []
    assert list(split.feed(b"zz\nok\n")) == [b"ok"]
    assert list(split.feed(b"w" * 11 + b"\nfine\n")) == [b"fine"]
    assert rejects.snapshot() == {"too_long": 2}


def test_line_of_exactly_the_limit_passes() -> None:
    split = LineSplitter(Rejects(), max_line=5)
    assert list(split.feed(b"12345\n")) == [b"12345"]
    assert list(split.feed(b"123")) == [] and list(split.feed(b"45\n")) == [b"12345"]


def test_bounded_map_drops_the_least_recently_touched() -> None:
    m: BoundedMap[str, int] = BoundedMap(2)
    m.put("a", 1)
    m.put("b", 2)
    assert m.get("a") == 1  # touch a
    m.put("c", 3)
    assert m.get("b") is None and m.get("a") == 1 and m.get("c") == 3
    assert m.evicted == 1 and len(m) == 2
    assert m.pop("a") == 1 and m.pop("a") is None


@pytest.mark.parametrize(
    ("lat", "lon", "bad"),
    [
        (0.0, 0.0, True),
        (90.0, 180.0, False),
        (-90.1, 0.0, True),
        (10.0, 180.5, True),
        (math.nan, 1.0, True),
        (1.0, math.inf, True),
        (0.0, 0.1, False),
    ],
)
def test_position_problem(lat: float, lon: float, bad: bool) -> None:
    assert (position_problem(lat, lon) is not None) is bad


def test_numbers() -> None:
    assert finite(1) == 1.0 and finite(2.5) == 2.5
    assert finite(True) is None and finite("1") is None and finite(math.nan) is None and finite(None) is None
    assert number("12.5") == 12.5 and number("") is None and number("x") is None and number("nan") is None


def test_time_of_day_near_crosses_midnight_both_ways() -> None:
    ref = datetime(2024, 5, 1, 23, 59, tzinfo=UTC)
    assert time_of_day_near(ref, 0, 0, 30.5) == datetime(2024, 5, 2, 0, 0, 30, 500000, tzinfo=UTC)
    ref = datetime(2024, 5, 2, 0, 1, tzinfo=UTC)
    assert time_of_day_near(ref, 23, 59, 0) == datetime(2024, 5, 1, 23, 59, tzinfo=UTC)
