"""The durable half of a federation link's queue: one lane per priority class, each its own sequence.

A lane numbers its messages, keeps them (in memory and in ``federation.db``) until the peer
acknowledges them, and sends them in sequence order. Acknowledgements and the receiver's
de-duplication (``seen``) are cumulative *per lane*: the receiver drops anything at or below the
highest sequence number it accepted in that lane. That is what lets the link send the urgent lane
(emergencies, cancels, deletes) ahead of the message lane (chat, tasks, persistent items) after a
partition without losing anything: within a lane the order never changes, so a cumulative mark
stays exact; across lanes there is no shared number to get ahead of.

On the wire a lane is named by a suffix on the node id in ``<_rpfed_ node=... seq=...>``: the message
lane uses the bare node id (as before lanes existed, so the stored ``seen`` marks and queues stay
valid), the urgent lane ``<node>#urgent``; acknowledgements carry the acknowledging node id with
the same suffix. In ``federation.db`` the urgent lane is stored under the peer name plus the suffix.

Each lane's queue has an *epoch*, a random id created with the queue and stored with it, sent as
``epoch=`` in every sequence mark and echoed in the acknowledgement. The receiver keeps its marks per
``(node and lane, epoch)``: a node that lost ``federation.db`` numbers from 1 again under a new epoch,
and the peer accepts those messages instead of dropping them as retransmissions of the old numbers.
An acknowledgement for another epoch is not about this queue and is ignored.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from rallypoint.model.cot_type import Priority
from rallypoint.protocol.fig import fig_pb2
from rallypoint.storage.base.federation import PeerBacklog

URGENT = "#urgent"
MESSAGE = ""


def lane_tag(priority: Priority) -> str:
    """The lane of a durable priority class."""
    return URGENT if priority is Priority.EMERGENCY else MESSAGE


def new_epoch() -> str:
    """A fresh queue epoch (64 random bits, hex)."""
    return secrets.token_hex(8)


def tag_of(node: str) -> str:
    """The lane named by a node id as it appears in a sequence mark or an acknowledgement."""
    return URGENT if node.endswith(URGENT) else MESSAGE


class DurableLane:
    """One sequence space of one peer: numbered, persisted, sent in order, acknowledged cumulatively."""

    def __init__(self, tag: str, peer: str) -> None:
        self.tag = tag
        self.key = peer + tag  # the queue's name in federation.db
        # Set by restore(); empty for a queue created before epochs existed (as on the wire then).
        self.epoch = ""
        self.next_seq = 1
        self.acked = 0
        self.ack_persisted = 0
        # Highest sequence number handed to the current connection.
        self.sent = 0
        # Highest sequence number that may have reached the peer in this epoch, ever: what this
        # process sent, and at start everything numbered before (only persisted messages are sent).
        # A peer mark above it means this queue is older than what the peer saw (restored file).
        self.sent_top = 0
        # False from attach until the peer's mark for this epoch is known (``federation/queue_check.py``):
        # until then nothing of this lane is sent; ``check_due``: the check is still to be sent on this
        # connection; ``ahead``: a peer mark above ``sent_top``, waiting for the persister's new epoch.
        self.checked = True
        self.check_due = False
        self.ahead: int | None = None
        self.unpersisted: list[tuple[int, fig_pb2.FederatedEvent]] = []
        # Rows being written right now (between ``unpersisted`` and ``unacked``).
        self.writing: list[tuple[int, fig_pb2.FederatedEvent]] = []
        self._skip: set[int] = set()
        # How many queued messages each uid has here, so a delete of a uid with none costs a lookup.
        self._uids: dict[str, int] = {}
        self.unacked: dict[int, fig_pb2.FederatedEvent] = {}
        # Rows to overwrite with an expired copy (cancelled by a delete), so a restart cannot revive them.
        self.cancelled: list[tuple[int, fig_pb2.FederatedEvent]] = []

    def assign(self) -> int:
        """The sequence number of the next message (then :meth:`queue` it)."""
        seq = self.next_seq
        self.next_seq += 1
        return seq

    def queue(self, seq: int, msg: fig_pb2.FederatedEvent) -> None:
        """A new message, to be written to disk before it is sent."""
        self.unpersisted.append((seq, msg))
        self._count(msg, 1)

    def restore(self, backlog: PeerBacklog) -> None:
        """Take over what ``federation.db`` held at start."""
        self.epoch, self.next_seq, self.acked = backlog.epoch, backlog.next_seq, backlog.acked
        self.ack_persisted = self.acked
        for seq, payload in backlog.rows:
            msg = fig_pb2.FederatedEvent.FromString(payload)
            self.unacked[seq] = msg
            self._count(msg, 1)
        self.next_seq = max([self.next_seq, *(s + 1 for s in self.unacked)])
        self.sent_top = self.next_seq - 1

    def mark_sent(self, seq: int) -> None:
        """``seq`` is handed to the current connection."""
        self.sent = seq
        self.sent_top = max(self.sent_top, seq)

    def renumber(self, epoch: str, remark: Callable[[fig_pb2.FederatedEvent, int, str], fig_pb2.FederatedEvent],
                 ) -> list[tuple[int, fig_pb2.FederatedEvent]]:
        """Start queue ``epoch``: the peer has all this epoch could have sent; the rest is numbered from 1.

        Call between writes (nothing in ``writing``); the returned rows are the new ``writing``, made
        sendable by :meth:`persisted` once the new queue is on disk.
        """
        covered = [s for s in self.unacked if s <= self.sent_top]
        for seq in covered:
            self._count(self.unacked.pop(seq), -1)
        waiting = sorted([*self.unacked.items(), *self.unpersisted], key=lambda row: row[0])
        self.writing = [(i, remark(msg, i, epoch)) for i, (_, msg) in enumerate(waiting, start=1)]
        self.unacked, self.unpersisted = {}, []
        # Tombstones name rows of the old queue, which the new one replaces.
        self.cancelled.clear()
        self._skip.clear()
        self.epoch, self.next_seq = epoch, len(self.writing) + 1
        self.acked = self.ack_persisted = self.sent = self.sent_top = 0
        self.ahead = None
        return self.writing

    def take_unpersisted(self) -> list[tuple[int, fig_pb2.FederatedEvent]]:
        """The rows to write now; they stay known to :meth:`cancel` until :meth:`persisted`."""
        self.writing, self.unpersisted = self.unpersisted, []
        return self.writing

    def persisted(self) -> None:
        """The rows of :meth:`take_unpersisted` are on disk: they may be sent now."""
        for seq, msg in self.writing:
            if seq in self._skip:
                continue  # cancelled while being written, already uncounted
            if seq > self.acked:
                self.unacked[seq] = msg
            else:
                self._count(msg, -1)
        self.writing = []
        self._skip.clear()

    def acknowledge(self, seq: int) -> bool:
        """The peer has everything up to ``seq`` in this lane; False if that is not news."""
        if seq <= self.acked:
            return False
        self.acked = seq
        for s in [s for s in self.unacked if s <= seq]:
            self._count(self.unacked.pop(s), -1)
        return True

    def drop_oldest(self, count: int) -> int:
        """Forget the ``count`` oldest unacknowledged messages (queue full); returns the last sequence dropped."""
        dropped = list(self.unacked)[:count]
        for seq in dropped:
            self._count(self.unacked.pop(seq), -1)
        return dropped[-1] if dropped else 0

    def next_to_send(self, now_ms: int) -> int:
        """The sequence number to send next on this connection, 0 if none (expired ones are skipped)."""
        while True:
            nxt = self.sent + 1
            if nxt not in self.unacked:
                later = [s for s in self.unacked if s > self.sent]
                nxt = min(later) if later else 0
            stale = self.unacked[nxt].event.staleTime if nxt else 0
            if not stale or stale > now_ms:
                return nxt
            # Expired while queued (partition, peer down): it must never resurface. The row on disk
            # goes with the next cumulative acknowledgement (and is skipped again after a restart).
            self._count(self.unacked.pop(nxt), -1)
            self.sent = nxt

    def waiting(self) -> int:
        """Messages not yet sent on this connection (persisted or not)."""
        return len(self.unpersisted) + len(self.writing) + sum(1 for s in self.unacked if s > self.sent)

    def cancel(self, uid: str) -> int:
        """Forget every queued message of ``uid`` (a later delete removes it); returns how many."""
        count = self._uids.pop(uid, 0)
        if not count:
            return 0
        self.unpersisted = [(s, m) for s, m in self.unpersisted if m.event.uid != uid]
        # Already on disk, or being written: overwritten with an expired copy, never sent again.
        doomed = [(s, m) for s, m in self.writing if m.event.uid == uid and s not in self._skip]
        self._skip.update(s for s, _ in doomed)
        doomed += [(s, self.unacked.pop(s)) for s, m in list(self.unacked.items()) if m.event.uid == uid]
        for seq, msg in doomed:
            tombstone = fig_pb2.FederatedEvent()
            tombstone.CopyFrom(msg)
            tombstone.event.staleTime = 1
            self.cancelled.append((seq, tombstone))
        return count

    def _count(self, msg: fig_pb2.FederatedEvent, delta: int) -> None:
        uid = msg.event.uid
        left = self._uids.get(uid, 0) + delta
        if left > 0:
            self._uids[uid] = left
        else:
            self._uids.pop(uid, None)
