"""Merge proposals for operators, and accepted merges kept in the feed store.

Two identified tracks never merge silently (docs/fusion.md, "Merging tracks"): the tracker proposes
a pair that moves together, an operator accepts or rejects it through ``/api/feeds/proposals``.
An accepted merge is written to the feed store first, then applied: the secondary track is deleted
on maps and its reports update the primary from then on. At start, and every
``MERGE_REFRESH_S`` after (so that, with a shared PostgreSQL store, a merge accepted on another
node reaches this one's tracker), the stored merges not applied yet are applied.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from rallypoint.clock import Clock
from rallypoint.errors import RallypointError, StorageError
from rallypoint.fusion.pairing import MergeProposal
from rallypoint.model.track import Identity, IdentityKind, TrackReport
from rallypoint.storage.base.feeds import FeedRecords, MergeRecord

log = logging.getLogger(__name__)

MERGE_REFRESH_S = 30.0


class FeedError(RallypointError):
    """A feed operation that cannot be done: ``reason`` is ``not_found``, ``exists``, ``too_many`` or
    ``no_proposal``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class ProposingTracker(Protocol):
    """What the desk needs of the fusion tracker."""

    def proposals(self) -> list[MergeProposal]: ...

    def accept_proposal(self, proposal_id: str) -> list[TrackReport]: ...

    def reject_proposal(self, proposal_id: str) -> None: ...

    def merge_identities(self, primary: Identity, secondary: Identity) -> list[TrackReport]: ...


class MergeDesk:
    """Proposals of one node's tracker; ``publish`` says a merge's reports (and deletes the absorbed track)."""

    def __init__(self, tracker: ProposingTracker, store: FeedRecords | None, clock: Clock,
                 publish: Callable[[list[TrackReport]], None]) -> None:
        self._tracker = tracker
        self._store = store
        self._clock = clock
        self._publish = publish
        self._applied: set[tuple[Identity, Identity]] = set()
        self._read_ms: int | None = None
        self.accepted = 0
        self.rejected = 0
        self.load_failures = 0

    def proposals(self) -> list[MergeProposal]:
        """Open merge proposals, oldest first."""
        return self._tracker.proposals()

    async def accept(self, proposal_id: str, operator: str) -> MergeProposal:
        """Keep the merge in the feed store, then fold the secondary track into the primary.

        ``FeedError("no_proposal")`` when there is no open proposal by that id; a store failure
        (``StorageError``) leaves the proposal open and nothing merged.
        """
        proposal = self._find(proposal_id)
        pair = (proposal.primary_identity, proposal.secondary_identity)
        if self._store is not None:
            await self._store.add_merge(MergeRecord(
                primary_kind=pair[0].kind.value, primary_value=pair[0].value, secondary_kind=pair[1].kind.value,
                secondary_value=pair[1].value, accepted_ms=self._clock.now_ms(), operator=operator,
            ))
        try:
            reports = self._tracker.accept_proposal(proposal_id)
        except KeyError:  # decided by another request while the store was written
            raise FeedError("no_proposal", f"no open merge proposal {proposal_id[:64]!r}") from None
        self._applied.add(pair)
        self.accepted += 1
        self._publish(reports)
        log.info("merge proposal accepted", extra={"proposal": proposal_id, "primary": proposal.primary,
                                                   "secondary": proposal.secondary, "operator": operator})
        return proposal

    def reject(self, proposal_id: str, operator: str) -> MergeProposal:
        """Never propose that pair again (on this node, until it restarts)."""
        proposal = self._find(proposal_id)
        with contextlib.suppress(KeyError):
            self._tracker.reject_proposal(proposal_id)
        self.rejected += 1
        log.info("merge proposal rejected", extra={"proposal": proposal_id, "primary": proposal.primary,
                                                   "secondary": proposal.secondary, "operator": operator})
        return proposal

    async def load(self) -> None:
        """Apply the stored merges not applied yet; at most once per ``MERGE_REFRESH_S``."""
        now_ms = self._clock.now_ms()
        if self._store is None or (self._read_ms is not None and now_ms - self._read_ms < MERGE_REFRESH_S * 1000):
            return
        self._read_ms = now_ms
        try:
            records = await self._store.merges()
        except StorageError as exc:
            # Merges already applied stay; the next read may succeed.
            self.load_failures += 1
            log.error("accepted merges could not be read", extra={"error": str(exc)[:300]})
            return
        for r in records:
            try:
                pair = (Identity(kind=IdentityKind(r.primary_kind), value=r.primary_value),
                        Identity(kind=IdentityKind(r.secondary_kind), value=r.secondary_value))
            except ValueError:
                log.warning("stored merge of an unknown identity kind skipped",
                            extra={"primary": r.primary_kind, "secondary": r.secondary_kind})
                continue
            if pair not in self._applied:
                self._applied.add(pair)
                self._publish(self._tracker.merge_identities(*pair))

    async def close(self) -> None:
        """Release the feed store."""
        if self._store is not None:
            await self._store.close()

    def _find(self, proposal_id: str) -> MergeProposal:
        for proposal in self._tracker.proposals():
            if proposal.id == proposal_id:
                return proposal
        raise FeedError("no_proposal", f"no open merge proposal {proposal_id[:64]!r}")
