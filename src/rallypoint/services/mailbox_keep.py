"""Keeping a message: stored once, added to each recipient's box within the mailbox bounds.

New mail is refused (counted as ``overflow``) when the write queue holds ``max_queue`` items,
and per identity when its box already holds ``max_per_identity`` messages. Mail that is already
expired is not kept (counted as ``expired``).
"""

from __future__ import annotations

import logging
from collections import deque

from rallypoint.protocol.wire import WireFormat
from rallypoint.routing.envelope import Envelope
from rallypoint.services.mailbox_writer import MailboxWriter
from rallypoint.storage.base.mailbox import MailRecord

log = logging.getLogger(__name__)


class MailKeeper:
    """Adds new mail to the boxes (shared with delivery) and queues it for writing."""

    def __init__(
        self,
        boxes: dict[str, deque[MailRecord]],
        writer: MailboxWriter,
        *,
        next_seq: int,
        max_queue: int,
        max_per_identity: int,
    ) -> None:
        self._boxes = boxes
        self._writer = writer
        self._next_seq = next_seq
        self._max_queue = max_queue
        self._max_per_identity = max_per_identity
        self.queued = 0
        self.expired = 0
        self.overflow = 0

    def keep(self, envelope: Envelope, recipients: tuple[str, ...], *, now: int, expires: int) -> bool:
        """Store ``envelope`` once and add it to each recipient's box (within the bounds)."""
        if expires <= now:
            self.expired += len(recipients)
            return False
        if self._writer.pending_mail >= self._max_queue:
            self.overflow += len(recipients)
            log.warning("mailbox write queue full; message not kept", extra={"uid": envelope.event.uid})
            return False
        mail = MailRecord(
            seq=self._next_seq,
            xml=envelope.wire(WireFormat.XML),
            groups=envelope.origin.groups,
            priority=int(envelope.priority),
            created_ms=now,
            expires_ms=expires,
        )
        accepted: list[str] = []
        for identity in recipients:
            box = self._boxes.setdefault(identity, deque())
            if len(box) >= self._max_per_identity:
                self.overflow += 1
                continue
            box.append(mail)
            accepted.append(identity)
        if not accepted:
            return False
        self._next_seq += 1
        self.queued += len(accepted)
        self._writer.add_mail(mail, tuple(accepted))
        return True
