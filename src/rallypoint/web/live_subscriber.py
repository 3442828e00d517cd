"""One open ``/api/live`` feed as the directory sees it: what it queues, and the flags its writer acts on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rallypoint.delivery.outbox import Outbox
from rallypoint.model.cot_type import CHAT, DELETE, EMERGENCY_CANCEL, is_atom, is_emergency, is_persistent_item
from rallypoint.routing.directory import can_reach
from rallypoint.routing.envelope import Envelope
from rallypoint.web.context import RequestIdentity
from rallypoint.web.live_chat import addressed_to, chat_identity

# A browser map needs the latest state, not every report: a few thousand distinct uids queued is
# already far behind. Positions coalesce per uid long before these bounds bite.
MAX_QUEUED_ITEMS = 4096
MAX_QUEUED_BYTES = 4 * 1024 * 1024

# Called with a feed and a chat addressed to its caller: the other feeds of that caller get it too.
DirectChat = Callable[["LiveSubscriber", Envelope], None]


class LiveSubscriber:
    """One open feed; ``offer`` only queues (or raises a flag) and wakes the writer."""

    def __init__(
        self, sub_id: str, identity: RequestIdentity, now_ms: Callable[[], int], *,
        on_direct: DirectChat | None = None,
    ) -> None:
        self.id = sub_id
        self.identity = identity
        self.read_groups = identity.read_groups
        self.write_groups = identity.write_groups
        self.outbox = Outbox(MAX_QUEUED_ITEMS, MAX_QUEUED_BYTES)
        self.wake = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self.resnapshot = False
        # An alert was raised, repeated or cancelled, or acknowledged: send the list of active ones.
        self.emergencies_changed = False
        self.sent = 0
        # The token re-checks use: the one the feed opened with, then each renewal the page sends.
        self.token: str | None = None
        # Replies to the page (renewal confirmations), written ahead of queued features.
        self.notices: list[bytes] = []
        self._now_ms = now_ms
        self._on_direct = on_direct
        principal = identity.principal
        self.chat_uid, self.chat_callsign = chat_identity(principal) if principal is not None else ("", "")

    def offer(self, envelope: Envelope) -> None:
        """Queue a delivered envelope the page shows (called on the delivery path: cheap, never blocks)."""
        event = envelope.event
        kind = event.type
        if kind == DELETE:
            if event.detail.link_uid is None:
                return
        elif kind == CHAT:
            if self.direct(envelope) and self._on_direct is not None:
                self._on_direct(self, envelope)
                return
        elif is_emergency(kind) or kind == EMERGENCY_CANCEL:
            self.emergencies_changed = True
            self.wake.set()
            return
        elif not (is_atom(kind) or is_persistent_item(kind)):
            return  # receipts, tasks, control: nothing the page shows
        self.queue(envelope)

    def queue(self, envelope: Envelope) -> None:
        """Put an envelope in the outbox and wake the writer."""
        own = can_reach(envelope.origin.groups, self.write_groups)
        self.outbox.put(envelope, now_ms=self._now_ms(), own_group=own)
        self.wake.set()

    def direct(self, envelope: Envelope) -> bool:
        """Whether a chat is addressed to this feed's caller (by chat uid or callsign)."""
        return bool(self.chat_uid) and addressed_to(envelope.event, self.chat_uid, self.chat_callsign)

    def finish(self, code: int, reason: str = "") -> None:
        """Ask the writer to close the socket with ``code`` (first call wins)."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        self.wake.set()
