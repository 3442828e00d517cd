"""DZ polygons in the local frame: crossing, inside, chords, extents, round trips."""

from __future__ import annotations

import numpy as np
import pytest

from rallypoint.services.airdrop.geometry import (
    chords,
    extents,
    from_local,
    inside,
    rectangle,
    self_crossing,
    to_local,
)
from tests.unit.services.airdrop.support import PI

SQUARE = np.array([[-100.0, -100.0], [100.0, -100.0], [100.0, 100.0], [-100.0, 100.0]])


def test_a_bow_tie_crosses_itself_and_a_square_does_not() -> None:
    assert not self_crossing(SQUARE)
    assert self_crossing(SQUARE[[0, 2, 1, 3]])
    # A concave but simple outline is accepted.
    assert not self_crossing(np.array([[0, 0], [10, 0], [10, 10], [5, 2], [0, 10]], dtype=float))


def test_inside_and_chords_of_a_rectangle_along_and_across_its_axis() -> None:
    rect = rectangle(600.0, 400.0, 30.0)
    assert inside(rect, np.array([0.0, 290.0 * np.sin(np.radians(30)), 1000.0]),
                  np.array([0.0, 290.0 * np.cos(np.radians(30)), 0.0])).tolist() == [True, True, False]
    back, ahead = chords(rect, np.array([30.0, 210.0, 120.0]))
    assert back.tolist() == pytest.approx([-300.0, -300.0, -200.0])
    assert ahead.tolist() == pytest.approx([300.0, 300.0, 200.0])
    assert extents(rect, 30.0) == pytest.approx((600.0, 400.0))


def test_chords_are_empty_when_the_pi_is_outside() -> None:
    back, ahead = chords(SQUARE + 500.0, np.array([45.0]))
    assert (back[0], ahead[0]) == (0.0, 0.0)


def test_local_frame_round_trip() -> None:
    east, north = np.array([250.0, -1200.0, 0.0]), np.array([-75.0, 900.0, 0.0])
    lats, lons = from_local(PI, east, north)
    back_e, back_n = to_local(PI, lats, lons)
    assert back_e == pytest.approx(east, abs=1e-6)
    assert back_n == pytest.approx(north, abs=1e-6)
