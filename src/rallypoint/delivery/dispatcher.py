"""Hands each published envelope to the local receivers in its audience.

The audience names addresses (groups, dests, a team, session ids); this is where a node resolves
them against its own sessions, so the same publication reaches the right receivers on every node.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rallypoint.model.cot import Dest
from rallypoint.routing.directory import Directory, Subscriber, can_reach
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience

# The local receivers of a mission address (``<dest mission=.../>``) for an envelope: the mission's
# subscribers on this node, when the sender may write to the mission.
MissionReceivers = Callable[[Envelope, str], Iterable[Subscriber]]


class Dispatcher:
    """One per node, subscribed to the bus; resolves an :class:`Audience` against local receivers.

    Between :meth:`hold` and :meth:`release` (a session taking in one read of events), group
    broadcasts to the same audience that follow each other are held back as one run and offered to
    each receiver together (``offer_many``, one call per receiver instead of one per receiver per
    event). Anything else, a change of the directory and the release deliver the run first, so
    every receiver sees what it would have seen one event at a time, in the same order, from the
    same receivers.
    """

    def __init__(self, directory: Directory, missions: MissionReceivers | None = None) -> None:
        self._directory = directory
        self._missions = missions
        self.delivered = 0
        self._holds = 0
        self._run: list[Envelope] = []
        self._run_groups: frozenset[str] = frozenset()
        self._run_exclude: str | None = None
        self._run_count = 0
        directory.before_change(self.flush)

    def resolve_missions(self, missions: MissionReceivers) -> None:
        """Resolve mission addresses with ``missions`` (the mission service, built after delivery)."""
        self._missions = missions

    def hold(self) -> None:
        """Hold back runs of group broadcasts until the matching :meth:`release` (see the class)."""
        self._holds += 1

    def release(self) -> None:
        """End a :meth:`hold`; the last one delivers what is held."""
        self._holds -= 1
        if not self._holds:
            self.flush()

    def deliver(self, envelope: Envelope, audience: Audience) -> int:
        """Offer the envelope to every local receiver in the audience; returns how many."""
        if audience.explicit or audience.sessions:
            if self._run:
                self.flush()
            receivers = self.receivers(envelope, audience)
            for sub in receivers:
                sub.offer(envelope)
            self.delivered += len(receivers)
            return len(receivers)
        if self._holds and type(envelope) is Envelope:
            return self._held(envelope, audience)
        if self._run:
            self.flush()
        count = _broadcast(self._directory, audience.groups, audience.exclude, envelope)
        self.delivered += count
        return count

    def flush(self) -> None:
        """Deliver the held run now (a no-op when nothing is held)."""
        run = self._run
        if not run:
            return
        # Emptied first: an offer that closes a slow receiver changes the directory, which flushes.
        self._run = []
        if len(run) == 1:
            _broadcast(self._directory, self._run_groups, self._run_exclude, run[0])
        else:
            _broadcast_run(self._directory, self._run_groups, self._run_exclude, run)

    def receivers(self, envelope: Envelope, audience: Audience) -> list[Subscriber]:
        """The local receivers of ``audience``, each once, without the excluded sender."""
        return resolve(self._directory, envelope, audience, self._missions)

    def _held(self, envelope: Envelope, audience: Audience) -> int:
        run = self._run
        if run and audience.exclude == self._run_exclude and audience.groups == self._run_groups:
            run.append(envelope)
        else:
            if run:
                self.flush()
            self._run = [envelope]
            self._run_groups, self._run_exclude = audience.groups, audience.exclude
            self._run_count = _count(self._directory, audience.groups, audience.exclude)
        self.delivered += self._run_count
        return self._run_count


def _broadcast(directory: Directory, groups: frozenset[str], exclude: str | None, envelope: Envelope) -> int:
    """Offer ``envelope`` to the readers of ``groups`` but ``exclude``; how many."""
    count = 0
    if len(groups) == 1:
        # The hot path, one group: offered while iterating (no list of receivers built).
        for group in groups:
            for sub_id, offer, _ in directory.offers_now(group):
                if sub_id != exclude:
                    offer(envelope)
                    count += 1
        return count
    seen: set[str] = set()
    if exclude is not None:
        seen.add(exclude)
    for group in groups:
        for sub_id, offer, _ in directory.offers_now(group):
            if sub_id not in seen:
                seen.add(sub_id)
                offer(envelope)
                count += 1
    return count


def _broadcast_run(directory: Directory, groups: frozenset[str], exclude: str | None, run: list[Envelope]) -> None:
    """Offer every envelope of ``run``, in order, to each reader of ``groups`` but ``exclude``."""
    seen: set[str] = set()
    if exclude is not None:
        seen.add(exclude)
    for group in groups:
        for sub_id, offer, offer_many in directory.offers_now(group):
            if sub_id in seen:
                continue
            seen.add(sub_id)
            if offer_many is not None:
                offer_many(run)
            else:
                for envelope in run:
                    offer(envelope)


def _count(directory: Directory, groups: frozenset[str], exclude: str | None) -> int:
    """How many receivers :func:`_broadcast` reaches now."""
    if len(groups) == 1:
        for group in groups:
            return directory.count_now(group, exclude)
    ids = {sub_id for group in groups for sub_id, _, _ in directory.offers_now(group)}
    ids.discard(exclude)
    return len(ids)


def resolve(
    directory: Directory, envelope: Envelope, audience: Audience, missions: MissionReceivers | None = None
) -> list[Subscriber]:
    """The receivers of ``audience`` connected to this node, each once, without the excluded sender.

    Mission addresses are resolved only with ``missions``; the mission decides who may read it.
    """
    seen: set[str] = set()
    if audience.exclude is not None:
        seen.add(audience.exclude)
    found: list[Subscriber] = []
    for sub_id in audience.sessions:
        sub = directory.get(sub_id)
        if sub is not None and sub_id not in seen:
            seen.add(sub_id)
            found.append(sub)
    sender_groups = envelope.origin.groups
    for dest in audience.dests:
        for sub in _by_address(directory, dest):
            if sub.id not in seen and can_reach(sender_groups, sub.read_groups):
                seen.add(sub.id)
                found.append(sub)
        if dest.mission is not None and missions is not None:
            for sub in missions(envelope, dest.mission):
                if sub.id not in seen:
                    seen.add(sub.id)
                    found.append(sub)
    team = audience.team
    if team is not None:
        # Relays (federation links) get it too: the server behind them applies the same rule.
        for group in sender_groups:
            for sub in directory.readers(group):
                if sub.id not in seen and (directory.team_of(sub.id) == team or directory.is_relay(sub.id)):
                    seen.add(sub.id)
                    found.append(sub)
    for group in audience.groups:
        for sub in directory.readers(group):
            if sub.id not in seen:
                seen.add(sub.id)
                found.append(sub)
    return found


def _by_address(directory: Directory, dest: Dest) -> list[Subscriber]:
    found: list[Subscriber] = []
    if dest.callsign is not None:
        sub = directory.by_callsign(dest.callsign)
        if sub is not None:
            found.append(sub)
    if dest.uid is not None:
        sub = directory.by_uid(dest.uid)
        if sub is not None:
            found.append(sub)
    if dest.group is not None:
        found.extend(directory.readers(dest.group))
    return found
