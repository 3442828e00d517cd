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
    """One per node, subscribed to the bus; resolves an :class:`Audience` against local receivers."""

    def __init__(self, directory: Directory, missions: MissionReceivers | None = None) -> None:
        self._directory = directory
        self._missions = missions
        self.delivered = 0

    def resolve_missions(self, missions: MissionReceivers) -> None:
        """Resolve mission addresses with ``missions`` (the mission service, built after delivery)."""
        self._missions = missions

    def deliver(self, envelope: Envelope, audience: Audience) -> int:
        """Offer the envelope to every local receiver in the audience; returns how many."""
        if audience.explicit or audience.sessions:
            receivers = self.receivers(envelope, audience)
            for sub in receivers:
                sub.offer(envelope)
            self.delivered += len(receivers)
            return len(receivers)
        # The hot path, a group broadcast: offered while iterating (no list of receivers built).
        directory = self._directory
        groups = audience.groups
        exclude = audience.exclude
        count = 0
        if len(groups) == 1:
            for group in groups:
                for sub_id, offer in directory.offers_now(group):
                    if sub_id != exclude:
                        offer(envelope)
                        count += 1
        else:
            seen: set[str] = set()
            if exclude is not None:
                seen.add(exclude)
            for group in groups:
                for sub_id, offer in directory.offers_now(group):
                    if sub_id not in seen:
                        seen.add(sub_id)
                        offer(envelope)
                        count += 1
        self.delivered += count
        return count

    def receivers(self, envelope: Envelope, audience: Audience) -> list[Subscriber]:
        """The local receivers of ``audience``, each once, without the excluded sender."""
        return resolve(self._directory, envelope, audience, self._missions)


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
