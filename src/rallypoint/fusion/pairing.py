"""Tracks that move together: identity-less tracks joining identified ones, and merge proposals.

Every ``pair_check_interval_s`` the tracks within ``pair_radius_m`` of each other are compared
track-to-track: both predicted to the later of their times, the difference of position and
velocity is scored against the sum of their covariances (chi-square, 4 degrees of freedom). A
pair counts one "update together" when the gate holds and both tracks (for an identity-less and an
identified track: either of them) have been updated since the pair was last counted; a failed
gate, or parting beyond the radius, resets the count.

* identity-less + identified, ``merge_after`` in a row: the identity-less track is the same object
  seen by a source that does not know its name; it joins the identified track (no operator needed).
* two identities of different kinds (an APRS tracker next to a TAK user), ``propose_after`` in a
  row: a ``MergeProposal`` is recorded for an operator; nothing merges until it is accepted.
  Identities of the same kind (two MMSIs) are two transponders and are never proposed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec
import numpy as np

from rallypoint.fusion.geodesy import Index, to_enu
from rallypoint.fusion.hypothesiser import unit_vectors
from rallypoint.fusion.identity import PRIMACY
from rallypoint.fusion.predictor import Predictor
from rallypoint.fusion.settings import FusionSettings
from rallypoint.fusion.table import TrackMeta, TrackTable
from rallypoint.model.track import Domain, Identity, TrackStatus


class MergeProposal(msgspec.Struct, frozen=True, kw_only=True):
    """Two identified tracks that look like one object; merged only when an operator accepts.

    Accepting keeps ``primary`` (the identity people address: TAK user, then ICAO, MMSI, APRS) and
    folds ``secondary`` into it: its reports update the primary track from then on.
    """

    id: str
    primary: str  # track uid
    secondary: str
    primary_identity: Identity
    secondary_identity: Identity
    since: datetime  # the first of the updates together
    updates: int
    distance_m: float


Kind = Literal["merge", "propose"]


class Streak:
    """How many updates together a pair has had, since when, and the track times last counted."""

    __slots__ = ("count", "since", "t_a", "t_b")

    def __init__(self, t_a: float, t_b: float, since: datetime) -> None:
        self.count = 0
        self.t_a = t_a
        self.t_b = t_b
        self.since = since


class PairWatch:
    """Counts updates together per pair of tracks and says which pairs have reached their threshold."""

    def __init__(self, settings: FusionSettings, predictor: Predictor) -> None:
        self.settings = settings
        self.predictor = predictor
        self._streaks: dict[tuple[str, str], Streak] = {}
        self._last_check = -np.inf

    def due(self, now_s: float) -> bool:
        """Whether a check is due at ``now_s`` (epoch seconds)."""
        return now_s - self._last_check >= self.settings.pair_check_interval_s

    def check(
        self, table: TrackTable, now_s: float, excluded: set[tuple[str, str]]
    ) -> list[tuple[Kind, int, int, Streak, float]]:
        """Compare nearby tracks; returns (kind, slot a, slot b, streak, distance m) of pairs at threshold.

        For "merge" slot a is the identity-less track; for "propose" slot a is the primary identity.
        ``excluded`` holds uid pairs (sorted) never to propose again (rejected or already proposed).
        """
        self._last_check = now_s
        live = table.live_slots()
        if live.size < 2:
            return []
        from scipy.spatial import cKDTree  # here: scipy costs ~50 MB at start (see fusion/associator.py)

        tree = cKDTree(unit_vectors(table.lat[live], table.lon[live]))
        pairs = tree.query_pairs(r=self.settings.pair_radius_m, output_type="ndarray")
        # Only identity-less + identified and identified pairs of different kinds can lead anywhere;
        # sort the rest out column-wise first (a harbour holds many vessels within the radius).
        code = np.fromiter(
            (0 if (m := table.get(s).identity) is None else 1 + PRIMACY.index(m.kind) for s in live.tolist()),
            dtype=np.intp,
            count=live.size,
        )
        if pairs.shape[0]:
            ci, cj = code[pairs[:, 0]], code[pairs[:, 1]]
            pairs = pairs[(ci != cj)]
        if pairs.shape[0] == 0:
            self._streaks.clear()
            return []
        a_list: list[int] = []
        b_list: list[int] = []
        kinds: list[Kind] = []
        for i, j in pairs.tolist():
            a, b = int(live[i]), int(live[j])
            ma, mb = table.get(a), table.get(b)
            if (ma.identity is None) == (mb.identity is None):
                if ma.identity is None or mb.identity is None or ma.identity.kind is mb.identity.kind:
                    continue
                if TrackStatus.TENTATIVE in (ma.status, mb.status):
                    continue
                if PRIMACY.index(mb.identity.kind) < PRIMACY.index(ma.identity.kind):
                    a, b = b, a
                if pair_key(table.get(a).uid, table.get(b).uid) in excluded:
                    continue
                kinds.append("propose")
            else:
                if ma.domain is not mb.domain and Domain.UNKNOWN not in (ma.domain, mb.domain):
                    continue  # an identity-less aircraft over a ship is not the ship
                if mb.identity is None:
                    a, b = b, a
                kinds.append("merge")
            a_list.append(a)
            b_list.append(b)
        if not a_list:
            self._streaks.clear()
            return []
        sa = np.asarray(a_list, dtype=np.intp)
        sb = np.asarray(b_list, dtype=np.intp)
        together, distance = self._gate(table, sa, sb)
        out: list[tuple[Kind, int, int, Streak, float]] = []
        # Counts live only while the pair stays near and together: a new dict each check.
        previous, self._streaks = self._streaks, {}
        ta_list = table.t[sa].tolist()
        tb_list = table.t[sb].tolist()
        for k, kind in enumerate(kinds):
            a, b = a_list[k], b_list[k]
            ma, mb = table.get(a), table.get(b)
            key = (ma.uid, mb.uid)
            if not together[k]:
                continue
            streak = previous.get(key) or Streak(-np.inf, -np.inf, min(ma.time, mb.time))
            self._streaks[key] = streak
            fresh_a, fresh_b = ta_list[k] > streak.t_a, tb_list[k] > streak.t_b
            # An identity-less track whose reports now go to the identified track (it is the better
            # hypothesis) coasts beside it: counting the identified side's updates lets it join.
            if (fresh_a or fresh_b) if kind == "merge" else (fresh_a and fresh_b):
                streak.count += 1
                streak.t_a, streak.t_b = ta_list[k], tb_list[k]
            if kind == "propose":
                needed = self.settings.propose_after
            elif ma.status is TrackStatus.TENTATIVE:
                needed = 1  # never shown: nothing to take back if the two were not one
            else:
                needed = self.settings.merge_after
            if streak.count >= needed:
                out.append((kind, a, b, streak, float(distance[k])))
        return out

    def _gate(self, table: TrackTable, a: Index, b: Index) -> tuple[list[bool], np.ndarray]:
        """Track-to-track chi-square test on position and velocity at the later of the two times."""
        t = np.maximum(table.t[a], table.t[b])
        xa = np.zeros((a.size, 4))
        xb = np.zeros((a.size, 4))
        xa[:, 2:4] = table.v[a]
        xb[:, 2:4] = table.v[b]
        xa, pa = self.predictor.predict(xa, table.p[a], t - table.t[a], table.accel[a])
        xb, pb = self.predictor.predict(xb, table.p[b], t - table.t[b], table.accel[b])
        de, dn = to_enu(table.lat[a], table.lon[a], table.lat[b], table.lon[b])
        diff = np.stack(
            [de + xb[:, 0] - xa[:, 0], dn + xb[:, 1] - xa[:, 1], xb[:, 2] - xa[:, 2], xb[:, 3] - xa[:, 3]], axis=1
        )
        c = pa + pb
        d2 = np.einsum("ni,ni->n", diff, np.linalg.solve(c, diff[:, :, None])[:, :, 0])
        together: list[bool] = (d2 <= self.settings.pair_gate_chi2).tolist()
        return together, np.hypot(diff[:, 0], diff[:, 1])


def pair_key(a: str, b: str) -> tuple[str, str]:
    """The order-free key of a pair of track uids."""
    return (a, b) if a <= b else (b, a)


class ProposalBook:
    """Open merge proposals, and the pairs never to propose again (proposed once, or rejected)."""

    def __init__(self) -> None:
        self._open: dict[str, MergeProposal] = {}
        self.settled: set[tuple[str, str]] = set()
        self._count = 0

    def open(self) -> list[MergeProposal]:
        """Open proposals, oldest first."""
        return list(self._open.values())

    def add(self, primary: TrackMeta, secondary: TrackMeta, streak: Streak, distance_m: float) -> MergeProposal:
        """Record a proposal for two identified tracks (``primary`` leads)."""
        assert primary.identity is not None and secondary.identity is not None
        self._count += 1
        proposal = MergeProposal(
            id=f"mp-{self._count}",
            primary=primary.uid,
            secondary=secondary.uid,
            primary_identity=primary.identity,
            secondary_identity=secondary.identity,
            since=streak.since,
            updates=streak.count,
            distance_m=distance_m,
        )
        self._open[proposal.id] = proposal
        self.settled.add(pair_key(primary.uid, secondary.uid))
        return proposal

    def pop(self, proposal_id: str) -> MergeProposal:
        """Take a proposal out (accepted or rejected); ``KeyError`` when there is none by that id."""
        try:
            return self._open.pop(proposal_id)
        except KeyError:
            raise KeyError(f"no open merge proposal {proposal_id!r}") from None

    def drop_involving(self, uid: str) -> None:
        """Close the proposals that name ``uid`` (it was merged into another track)."""
        for pid in [p.id for p in self._open.values() if uid in (p.primary, p.secondary)]:
            del self._open[pid]
