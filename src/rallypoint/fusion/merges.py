"""Identity merges: tracks that joined others, the open proposals, and which identity joined which.

The tracker asks ``due`` on every batch and lets ``pair_up`` act on what ``fusion/pairing.py``
finds: an identity-less track moving with an identified one is folded into it at once; two
identities moving together become a proposal that merges only when ``accept`` is called. An
accepted (or restored) merge leaves an alias: the secondary identity's reports go to the primary's
track from then on (``aliases``, read by the tracker for every identified observation).
"""

from __future__ import annotations

from collections import Counter

from rallypoint.fusion.identity import uid_for
from rallypoint.fusion.pairing import MergeProposal, PairWatch, ProposalBook
from rallypoint.fusion.predictor import Predictor
from rallypoint.fusion.settings import FusionSettings
from rallypoint.fusion.table import TrackTable
from rallypoint.model.track import Identity, TrackReport, TrackStatus


class Merges:
    """The merge state of one tracker's table: pair watch, proposal book and identity aliases.

    ``counts`` (merged, proposals, proposals_accepted, proposals_rejected) join the tracker's statistics.
    """

    def __init__(self, settings: FusionSettings, predictor: Predictor, table: TrackTable) -> None:
        self.settings = settings
        self.table = table
        self.aliases: dict[str, Identity] = {}  # uid of a merged-away identity -> the identity it joined
        self.counts: Counter[str] = Counter()
        self._pairs = PairWatch(settings, predictor)
        self._proposals = ProposalBook()

    def proposals(self) -> list[MergeProposal]:
        """Open merge proposals (two identities that move together), oldest first."""
        return self._proposals.open()

    def accept(self, proposal_id: str) -> MergeProposal:
        """Take the proposal out of the book as accepted; the caller merges its identities.

        Raises ``KeyError`` for an unknown (or already decided) proposal.
        """
        proposal = self._proposals.pop(proposal_id)
        self.counts["proposals_accepted"] += 1
        return proposal

    def reject(self, proposal_id: str) -> None:
        """Never propose this pair again. Raises ``KeyError`` for an unknown proposal."""
        self._proposals.pop(proposal_id)
        self.counts["proposals_rejected"] += 1

    def merge(self, primary: Identity, secondary: Identity) -> tuple[list[TrackReport], int | None]:
        """Alias ``secondary`` to ``primary`` and fold its track into the primary's.

        Returns the secondary track's DELETED report (when it was shown) and the primary's slot, whose
        report the caller makes (None when the primary has no track yet).
        """
        primary_uid, secondary_uid = uid_for(primary), uid_for(secondary)
        self.aliases[secondary_uid] = primary
        self._proposals.drop_involving(secondary_uid)
        table = self.table
        out: list[TrackReport] = []
        gone = table.by_uid.get(secondary_uid)
        kept = table.by_uid.get(primary_uid)
        if gone is not None and kept is not None:
            table.fold(gone, kept)
        if gone is not None:
            shown = table.get(gone).status is TrackStatus.CONFIRMED
            report = table.delete(gone)
            if shown or self.settings.report_tentative:
                out.append(report)
        return out, kept

    def due(self, now_s: float) -> bool:
        """Whether the pairs are to be checked at ``now_s`` (epoch seconds)."""
        return self._pairs.due(now_s)

    def pair_up(self, now_s: float, touched: dict[int, None]) -> list[TrackReport]:
        """Merge identity-less tracks into identified ones they move with; propose identity pairs.

        Marks each kept track in ``touched``; returns the DELETED reports of shown tracks that joined.
        """
        table = self.table
        out: list[TrackReport] = []
        merged: set[int] = set()
        for kind, a, b, streak, distance in self._pairs.check(table, now_s, self._proposals.settled):
            if a in merged or b in merged or not (table.live[a] and table.live[b]):
                continue
            ma, mb = table.get(a), table.get(b)
            if kind == "merge":
                table.fold(a, b)
                merged.add(a)
                shown = ma.status is TrackStatus.CONFIRMED
                self.counts["merged"] += 1
                report = table.delete(a)
                if shown or self.settings.report_tentative:
                    out.append(report)
                touched[b] = None
                continue
            assert ma.identity is not None and mb.identity is not None
            self._proposals.add(ma, mb, streak, distance)
            self.counts["proposals"] += 1
        return out
