"""What the server sends into a mesh, and when: a byte budget per channel, sans-IO.

A LoRa channel carries a few hundred bytes a second at best and regional duty-cycle rules cap
the airtime further, so the gateway sends against a token bucket of ``bytes_per_s`` (burst
``burst_bytes``), charging each packet its payload plus ``HEADER_BYTES`` of radio header.
Four queues, served in order: emergencies (never dropped, FIFO), chats (FIFO, bounded: the
oldest is dropped and counted past ``max_chats``), positions (one per uid, the latest wins:
a newer position replaces the waiting one in its place, which is counted as coalesced), and
bulk (aircraft tracks from feeds; like positions, but sent only when no position waits, so a
busy sky never starves the users' own positions).
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from dataclasses import dataclass

HEADER_BYTES = 16  # LoRa mesh header in front of every payload (counts against airtime)


class Lane(enum.IntEnum):
    """Queue of an outgoing packet; lower goes first."""

    EMERGENCY = 0
    CHAT = 1
    POSITION = 2
    BULK = 3


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A packet to send: port, payload, whether to ask for an acknowledgement, and a tag for receipts."""

    port: int
    payload: bytes
    lane: Lane
    key: str = ""  # positions: the uid (coalescing); chats: the chat event uid (receipts)
    want_ack: bool = False


class ChannelBudget:
    """Token bucket + three lanes; ``offer`` to queue, ``take(now)`` for what may go now."""

    def __init__(
        self, *, bytes_per_s: float, burst_bytes: int, max_chats: int = 256, max_positions: int = 1024,
    ) -> None:
        if bytes_per_s <= 0 or burst_bytes <= 0:
            raise ValueError("a channel budget needs bytes_per_s > 0 and burst_bytes > 0")
        self.bytes_per_s = bytes_per_s
        self.burst_bytes = burst_bytes
        self._tokens = float(burst_bytes)
        self._last: float | None = None
        self._emergency: deque[Outgoing] = deque()
        self._chats: deque[Outgoing] = deque()
        self._max_chats = max_chats
        self._positions: OrderedDict[str, Outgoing] = OrderedDict()
        self._bulk: OrderedDict[str, Outgoing] = OrderedDict()
        self._max_positions = max_positions
        self.sent_bytes = 0
        self.sent_packets = 0
        self.coalesced = 0
        self.dropped = 0

    def offer(self, item: Outgoing) -> None:
        """Queue ``item`` in its lane (positions coalesce by ``key``)."""
        if item.lane is Lane.EMERGENCY:
            self._emergency.append(item)
        elif item.lane is Lane.CHAT:
            self._chats.append(item)
            if len(self._chats) > self._max_chats:
                self._chats.popleft()
                self.dropped += 1
        else:
            lane = self._positions if item.lane is Lane.POSITION else self._bulk
            if item.key in lane:
                # The newer position takes the waiting one's place in the queue: each uid waits once,
                # so on a slow channel every user is sent in turn, always with its latest position.
                self.coalesced += 1
            lane[item.key] = item
            if len(lane) > self._max_positions:
                lane.popitem(last=False)
                self.dropped += 1

    def pending(self) -> int:
        """Packets waiting in all lanes."""
        return len(self._emergency) + len(self._chats) + len(self._positions) + len(self._bulk)

    def take(self, now: float) -> Outgoing | None:
        """The next packet if the budget allows it now (its cost is charged), else None."""
        self._refill(now)
        head = self._head()
        if head is None or self._tokens < cost(head):
            return None
        self._pop(head)
        self._tokens -= cost(head)
        self.sent_bytes += cost(head)
        self.sent_packets += 1
        return head

    def wait_s(self, now: float) -> float | None:
        """Seconds until the next packet may go (0: now), None when nothing waits."""
        self._refill(now)
        head = self._head()
        if head is None:
            return None
        missing = cost(head) - self._tokens
        return 0.0 if missing <= 0 else missing / self.bytes_per_s

    def _refill(self, now: float) -> None:
        if self._last is not None and now > self._last:
            self._tokens = min(float(self.burst_bytes), self._tokens + (now - self._last) * self.bytes_per_s)
        if self._last is None or now > self._last:
            self._last = now

    def _head(self) -> Outgoing | None:
        if self._emergency:
            return self._emergency[0]
        if self._chats:
            return self._chats[0]
        if self._positions:
            return next(iter(self._positions.values()))
        if self._bulk:
            return next(iter(self._bulk.values()))
        return None

    def _pop(self, item: Outgoing) -> None:
        if item.lane is Lane.EMERGENCY:
            self._emergency.popleft()
        elif item.lane is Lane.CHAT:
            self._chats.popleft()
        elif item.lane is Lane.POSITION:
            self._positions.pop(item.key)
        else:
            self._bulk.pop(item.key)


def cost(item: Outgoing) -> int:
    """Bytes of airtime an outgoing packet is charged: payload plus the radio header."""
    return len(item.payload) + HEADER_BYTES
