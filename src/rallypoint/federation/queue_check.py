"""Queue checks: a lane learns the peer's mark before it sends, and notices a queue older than that mark.

A ``federation.db`` restored from an older backup keeps its queue epochs but numbers from an older
point: the peer remembers higher numbers of the same epoch and would drop the new messages as
retransmissions. Only the sender can tell (the receiver cannot tell a restored queue from a
retransmission), and only if it knows the peer's mark before any new number reaches the peer:

* On every connection to a peer that answers checks (another Rallypoint, told by its federation
  identity), each lane first sends a check (``y-rp-fed-sync`` naming the lane and its epoch) and holds
  its messages. The peer answers with an acknowledgement of its mark for that lane and epoch (0 if it
  has none); every acknowledgement carries the peer's mark, also one answering a retransmission.
* An acknowledgement of the current epoch at or below ``sent_top`` (the highest number that may ever
  have reached the peer) is an ordinary one and releases the lane.
* One above ``sent_top`` names numbers this queue never sent: it is older than what the peer saw.
  The persister starts a new epoch (:func:`start_new_epochs`): everything the old queue could have
  sent is covered by the peer's mark, everything else (never sent, the lane was held) is renumbered
  from 1 under the new epoch, written, and the lane is released. Each message reaches the peer once.

Peers that never acknowledge (TAK Server) are not checked: their lanes send at once, as before.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rallypoint.federation.convert import Ack, remark, sync_event
from rallypoint.federation.lanes import DurableLane, new_epoch, tag_of
from rallypoint.protocol.fig import fig_pb2

if TYPE_CHECKING:
    from rallypoint.federation.link import PeerLink

log = logging.getLogger(__name__)


def begin(lanes: tuple[DurableLane, ...], *, peer_answers: bool) -> None:
    """A connection is up: hold every lane until its check is answered (if the peer answers checks)."""
    for lane in lanes:
        lane.checked = not peer_answers and lane.ahead is None
        lane.check_due = peer_answers


def due(link: PeerLink, now_ms: int) -> tuple[DurableLane, fig_pb2.FederatedEvent] | None:
    """The next check to send on this connection (urgent lane first), left pending."""
    for lane in link._lanes:
        if lane.check_due:
            return lane, sync_event(link._node_id + lane.tag, now_ms, lane.epoch)
    return None


def acknowledged(link: PeerLink, lane: DurableLane, ack: Ack) -> None:
    """The peer's acknowledgement (its mark) for ``lane``: retire messages, release the lane, or renumber."""
    # An acknowledgement for another epoch is about a queue this node no longer has.
    if ack.epoch != lane.epoch:
        return
    if ack.seq > lane.sent_top:
        lane.ahead = max(lane.ahead or 0, ack.seq)
        lane.checked = False
        link._persist.set()
        return
    if lane.acknowledge(ack.seq):
        link._persist.set()
    if not lane.checked and lane.ahead is None:
        lane.checked = True
        link._wake.set()


def answer(link: PeerLink, request: Ack) -> None:
    """Answer a peer's check with our mark for its lane and epoch."""
    link._queue_ack(link._seen.get((request.node, request.epoch), 0), tag_of(request.node), request.epoch)


async def start_new_epochs(link: PeerLink) -> None:
    """Give every lane found older than the peer's mark a new epoch (persister only, between writes)."""
    for lane in link._lanes:
        if lane.ahead is None:
            continue
        mark, top = lane.ahead, lane.sent_top
        rows = lane.renumber(new_epoch(), remark)
        await link._store.new_epoch(lane.key, lane.epoch, [(s, m.SerializeToString()) for s, m in rows])
        lane.persisted()
        lane.checked = True
        log.warning(
            "federation queue for peer %s restored from an older state (peer acknowledged %d, queue at %d); "
            "new epoch %s", link.name, mark, top, lane.epoch,
            extra={"peer": link.name, "queue": lane.key, "epoch": lane.epoch},
        )
        link._wake.set()
