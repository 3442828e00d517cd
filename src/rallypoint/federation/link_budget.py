"""The send queue of a federation link under a byte budget: what goes next, and when to try again.

Acknowledgements, queue checks and priority messages are deferred until the budget allows, never skipped;
positions are thinned per uid (a thinned uid's latest report is held and offered again later).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rallypoint.delivery.budget import Decision, ThinningPolicy
from rallypoint.protocol.fig import fig_pb2

if TYPE_CHECKING:
    from rallypoint.federation.link import PeerLink

log = logging.getLogger(__name__)


def next_within_budget(
    link: PeerLink, policy: ThinningPolicy
) -> tuple[fig_pb2.FederatedEvent | None, float | None]:
    """The next message the budget allows, else ``(None, seconds to wait or None for new traffic)``.

    Same order as :meth:`PeerLink._next_message`; nothing is consumed unless its bytes were paid for.
    """
    mono = link._clock.monotonic()
    budget = policy.budget
    control = link.pending_control()
    if control is not None:
        msg, sent = control
        if not budget.try_spend(msg.ByteSize(), mono):
            return None, budget.wait_s(msg.ByteSize(), mono)
        policy.sent_bytes += msg.ByteSize()
        sent()
        return msg, None
    durable = link.next_durable()
    if durable is not None:
        lane, nxt = durable
        msg = lane.unacked[nxt]
        size = msg.ByteSize()
        if size > budget.burst_bytes:
            lane.sent = nxt
            link.dropped += 1
            log.warning("federated message larger than the link burst, not sent", extra={"peer": link.name})
            return None, 0.0
        if not budget.try_spend(size, mono):
            policy.deferred += 1
            return None, budget.wait_s(size, mono)
        policy.sent_bytes += size
        lane.mark_sent(nxt)
        return msg, None
    now = link._clock.now_ms()
    while link._dirty:
        uid = next(iter(link._dirty))
        fed, stale = link._latest[uid]
        envelope = link._envelopes.get(uid)
        size = fed.ByteSize()
        if stale <= now or envelope is None or size > budget.burst_bytes:
            del link._dirty[uid]
            continue
        match policy.decide(envelope, size, mono):
            case Decision.SEND:
                del link._dirty[uid]
                return fed, None
            case Decision.DEFER:
                return None, policy.retry_in(envelope, size, mono)
            case Decision.SKIP:
                del link._dirty[uid]
                link._held[uid] = None
    if link._held:
        # Thinned uids go back in the queue after the interval: their latest report still goes.
        link._dirty.update(link._held)
        link._held.clear()
        return None, max(policy.interval_s, policy.min_interval_s)
    return None, None
