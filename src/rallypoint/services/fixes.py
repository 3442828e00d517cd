"""Counts map reports that carry no position fix (0,0), so an operator sees devices without GPS."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from rallypoint.model.cot_type import is_atom, is_persistent_item
from rallypoint.model.fix import has_fix
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience

log = logging.getLogger(__name__)


class NoFixCounter:
    """An ingest hook: counts units and map items reported at 0,0 (chat and control carry 0,0 by design)."""

    def __init__(self) -> None:
        self.no_fix = 0

    def observe(self, envelope: Envelope, audience: Audience) -> None:
        """Count ``envelope`` if the map would draw it but it has no fix."""
        event = envelope.event
        if has_fix(event.point.lat, event.point.lon) or not (is_atom(event.type) or is_persistent_item(event.type)):
            return
        self.no_fix += 1
        # Debug only: a device indoors reports this every few seconds; the counter is what to watch.
        log.debug("report without a position fix", extra={"uid": event.uid, "session": envelope.origin.session_id})

    def counters(self) -> Iterable[tuple[str, str, float]]:
        """For ``ServerMetrics.add_counters``."""
        return [("rallypoint_positions_no_fix",
                 "Unit and map item reports without a position fix (0,0): routed, kept off the map",
                 float(self.no_fix))]
