"""Global nearest neighbour per gated cluster, on hand-made hypotheses."""

from __future__ import annotations

import numpy as np

from rallypoint.fusion.associator import GlobalNearestNeighbour
from rallypoint.fusion.hypothesiser import Hypotheses


def _hyps(pairs: list[tuple[int, int, float]]) -> Hypotheses:
    obs = np.array([p[0] for p in pairs], dtype=np.intp)
    slot = np.array([p[1] for p in pairs], dtype=np.intp)
    cost = np.array([p[2] for p in pairs])
    return Hypotheses(obs, slot, cost, cost)


def test_the_least_total_cost_wins_over_greedy_choices() -> None:
    # Greedy would give observation 0 its best track (10, cost 1) and leave observation 1 with
    # nothing it gates with; the global optimum gives 0 -> 11 and 1 -> 10.
    pairs = GlobalNearestNeighbour().associate(2, _hyps([(0, 10, 1.0), (0, 11, 2.0), (1, 10, 1.5)]))
    assert sorted(pairs) == [(0, 11), (1, 10)]


def test_clusters_are_solved_apart_and_unmatched_stay_unmatched() -> None:
    hyps = _hyps([(0, 5, 3.0), (1, 5, 1.0), (2, 7, 0.5), (3, 8, 2.0), (3, 7, 9.0)])
    pairs = GlobalNearestNeighbour().associate(5, hyps)  # observation 4 gates with nothing
    assert sorted(pairs) == [(1, 5), (2, 7), (3, 8)]


def test_no_hypotheses_no_pairs() -> None:
    assert GlobalNearestNeighbour().associate(3, _hyps([])) == []
