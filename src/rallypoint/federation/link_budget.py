"""The send queue of a federation link under a byte budget: what goes next, and when to try again.

Acknowledgements and priority messages are deferred until the budget allows, never skipped;
positions are thinned per uid (a thinned uid's latest report is held and offered again later).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rallypoint.delivery.budget import Decision, ThinningPolicy
from rallypoint.federation.convert import ack_event
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
    if link._ack_out is not None:
        ack = ack_event(link._node_id, link._ack_out, link._clock.now_ms())
        if not budget.try_spend(ack.ByteSize(), mono):
            return None, budget.wait_s(ack.ByteSize(), mono)
        policy.sent_bytes += ack.ByteSize()
        link._ack_out = None
        return ack, None
    nxt = link._next_unacked() if link._unacked else 0
    if nxt:
        msg = link._unacked[nxt]
        size = msg.ByteSize()
        if size > budget.burst_bytes:
            link._sent = nxt
            link.dropped += 1
            log.warning("federated message larger than the link burst, not sent", extra={"peer": link.name})
            return None, 0.0
        if not budget.try_spend(size, mono):
            policy.deferred += 1
            return None, budget.wait_s(size, mono)
        policy.sent_bytes += size
        link._sent = nxt
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
