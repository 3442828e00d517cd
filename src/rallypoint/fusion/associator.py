"""Associator: global nearest neighbour, one optimal assignment per gated cluster.

Observations and tracks linked by any gated hypothesis form a cluster (connected components of
the bipartite gate graph); each cluster is solved on its own with
``scipy.optimize.linear_sum_assignment``, so the cost stays small when many targets are far apart
and each target is claimed by at most one observation and each observation by at most one track.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from rallypoint.fusion.hypothesiser import Hypotheses

_NOT_GATED = 1e12  # cost of a pair outside the gate; never chosen over leaving both unassigned


class Associator(Protocol):
    """Chooses at most one track per observation and one observation per track."""

    def associate(self, n_observations: int, hypotheses: Hypotheses) -> list[tuple[int, int]]:
        """Pairs (observation index, track slot) from the gated hypotheses."""
        ...


class GlobalNearestNeighbour:
    """Minimum total cost assignment per gated cluster."""

    def associate(self, n_observations: int, hypotheses: Hypotheses) -> list[tuple[int, int]]:
        """Pairs (observation index, track slot) from the gated hypotheses."""
        if hypotheses.slot.size == 0:
            return []
        # Imported here: scipy costs about 50 MB of memory at start, which a server without feeds
        # never needs (the first association loads it once).
        from scipy.optimize import linear_sum_assignment
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        tracks, track_col = np.unique(hypotheses.slot, return_inverse=True)
        n = n_observations + tracks.size
        graph = coo_matrix(
            (np.ones(hypotheses.slot.size), (hypotheses.observation, n_observations + track_col)), shape=(n, n)
        )
        _, label = connected_components(graph, directed=False)
        pair_label = label[hypotheses.observation]
        order = np.argsort(pair_label, kind="stable")
        bounds = np.flatnonzero(np.diff(pair_label[order])) + 1
        out: list[tuple[int, int]] = []
        for members in np.split(order, bounds):
            if members.size == 1:
                k = int(members[0])
                out.append((int(hypotheses.observation[k]), int(hypotheses.slot[k])))
                continue
            rows, row_of = np.unique(hypotheses.observation[members], return_inverse=True)
            cols, col_of = np.unique(track_col[members], return_inverse=True)
            cost = np.full((rows.size, cols.size), _NOT_GATED)
            cost[row_of, col_of] = hypotheses.cost[members]
            r, c = linear_sum_assignment(cost)
            for i, j in zip(r.tolist(), c.tolist(), strict=True):
                if cost[i, j] < _NOT_GATED:
                    out.append((int(rows[i]), int(tracks[cols[j]])))
        return out
