"""Is a polygon simple? The first pair of non-adjacent edges that touch or cross, found fast (pure numpy).

Edges are sorted by their west end; an edge is compared only with the edges that start within its
own east-west extent and overlap it north-south as well (each overlapping pair is found once, by
the edge that starts first). Ordinary outlines give a handful of candidates per edge, so a
thousand-vertex polygon takes about a millisecond; the worst case (every edge overlapping every
other) is bounded by the vertex cap and checked in chunks.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
_CHUNK = 200_000


def first_crossing(start: Array, end: Array) -> tuple[int, int] | None:
    """For a ring of edges ``start[k] -> end[k]`` (``(n, 2)`` x, y), the first crossing pair ``(i, j)``, i < j.

    Neighbouring edges (``j == i + 1``, and the last with the first) share a vertex and never count.
    """
    n = len(start)
    if n < 4:
        return None
    i, j = _candidates(start, end)
    best: tuple[int, int] | None = None
    for at in range(0, len(i), _CHUNK):
        ci, cj = i[at:at + _CHUNK], j[at:at + _CHUNK]
        hit = _touch(start[ci], end[ci], start[cj], end[cj])
        if hit.any():
            hi, hj = ci[hit], cj[hit]
            k = np.lexsort((hj, hi))[0]
            found = (int(hi[k]), int(hj[k]))
            best = found if best is None or found < best else best
    return best


def _candidates(start: Array, end: Array) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Pairs of edges whose bounding boxes overlap, not neighbours, as index arrays with i < j."""
    n = len(start)
    west, east = np.minimum(start[:, 0], end[:, 0]), np.maximum(start[:, 0], end[:, 0])
    south, north = np.minimum(start[:, 1], end[:, 1]), np.maximum(start[:, 1], end[:, 1])
    order = np.argsort(west, kind="stable")
    sorted_west = west[order]
    # For the edge at sorted position k: the edges at k+1 .. stop[k]-1 start within its extent.
    stop = np.searchsorted(sorted_west, east[order], side="right")
    counts = np.maximum(stop - np.arange(n) - 1, 0)
    first = np.repeat(np.arange(n), counts)
    runs = np.cumsum(counts) - counts
    second = first + 1 + (np.arange(int(counts.sum())) - np.repeat(runs, counts))
    a, b = order[first], order[second]
    i, j = np.minimum(a, b), np.maximum(a, b)
    keep = (j - i > 1) & ~((i == 0) & (j == n - 1)) & (south[i] <= north[j]) & (south[j] <= north[i])
    return i[keep], j[keep]


def _touch(p: Array, p_end: Array, q: Array, q_end: Array) -> npt.NDArray[np.bool_]:
    """Whether segments p -> p_end and q -> q_end (row by row) share at least one point."""
    r, s = p_end - p, q_end - q
    qp = q - p
    denom = r[:, 0] * s[:, 1] - r[:, 1] * s[:, 0]
    t_num = qp[:, 0] * s[:, 1] - qp[:, 1] * s[:, 0]
    u_num = qp[:, 0] * r[:, 1] - qp[:, 1] * r[:, 0]
    # 0 <= t, u <= 1 without dividing: compare the numerators with |denom| after fixing the sign.
    sign = np.sign(denom)
    d, tn, un = np.abs(denom), t_num * sign, u_num * sign
    crossing = (d > 0) & (tn >= 0) & (tn <= d) & (un >= 0) & (un <= d)
    # Parallel edges on one line touch when their extents along that line overlap.
    collinear = (denom == 0) & (t_num == 0) & (u_num == 0)
    if collinear.any():
        rr = np.einsum("ij,ij->i", r, r)
        with np.errstate(divide="ignore", invalid="ignore"):
            t0 = np.einsum("ij,ij->i", qp, r) / rr
            t1 = t0 + np.einsum("ij,ij->i", s, r) / rr
        crossing |= collinear & (np.maximum(t0, t1) >= 0) & (np.minimum(t0, t1) <= 1)
    return crossing
