"""Hands each published envelope to the local receivers in its audience."""

from __future__ import annotations

from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience


class Dispatcher:
    """One per node, subscribed to the bus; resolves an :class:`Audience` against local receivers."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory
        self.delivered = 0

    def deliver(self, envelope: Envelope, audience: Audience) -> int:
        """Offer the envelope to every local receiver in the audience; returns how many."""
        directory = self._directory
        count = 0
        if audience.ids:
            for sub_id in audience.ids:
                sub = directory.get(sub_id)
                if sub is not None:
                    sub.offer(envelope)
                    count += 1
        groups = audience.groups
        if groups:
            exclude = audience.exclude
            if len(groups) == 1:
                for group in groups:
                    for sub in list(directory.readers(group)):
                        if sub.id != exclude:
                            sub.offer(envelope)
                            count += 1
            else:
                seen: set[str] = set()
                if exclude is not None:
                    seen.add(exclude)
                for group in groups:
                    for sub in list(directory.readers(group)):
                        if sub.id not in seen:
                            seen.add(sub.id)
                            sub.offer(envelope)
                            count += 1
        self.delivered += count
        return count
