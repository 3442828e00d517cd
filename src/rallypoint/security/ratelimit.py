"""Abuse limits: token buckets per connection and per source address (streams and datagrams).

Time is passed in (monotonic seconds), so the logic is testable without a clock.
"""

from __future__ import annotations

from collections import OrderedDict


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``; ``rate <= 0`` means unlimited."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._tokens = self.burst
        self._stamp = now

    def allow(self, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens if available."""
        if self.rate <= 0:
            return True
        tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if tokens >= cost:
            self._tokens = tokens - cost
            return True
        self._tokens = tokens
        return False


class AddressLimiter:
    """Connections and message rate per source address (shared by all sessions from one IP)."""

    def __init__(self, *, max_connections: int, rate: float, burst: float) -> None:
        self.max_connections = max_connections
        self._rate = rate
        self._burst = burst
        self._connections: dict[str, int] = {}
        self._buckets: dict[str, TokenBucket] = {}

    def connect(self, address: str, now: float) -> bool:
        """Register a connection from ``address``; False when the address is at its limit."""
        count = self._connections.get(address, 0)
        if self.max_connections > 0 and count >= self.max_connections:
            return False
        self._connections[address] = count + 1
        if address not in self._buckets:
            self._buckets[address] = TokenBucket(self._rate, self._burst, now)
        return True

    def disconnect(self, address: str) -> None:
        count = self._connections.get(address, 0) - 1
        if count <= 0:
            # Forget idle addresses so spoofed or scanning sources cannot grow these maps.
            self._connections.pop(address, None)
            self._buckets.pop(address, None)
        else:
            self._connections[address] = count

    def bucket(self, address: str) -> TokenBucket | None:
        """The rate bucket ``address`` shares while it has connections (the same object until the last leaves)."""
        return self._buckets.get(address)


class DatagramRateLimiter:
    """Message rate per source address for connectionless input (UDP mesh).

    Datagram senders never disconnect, so idle addresses cannot be forgotten on close; instead the
    table keeps at most ``max_addresses`` buckets and evicts the least recently seen, which bounds
    memory however many (possibly spoofed) sources appear.
    """

    def __init__(self, *, rate: float, burst: float, max_addresses: int = 4096) -> None:
        self._rate = rate
        self._burst = burst
        self._max = max(1, max_addresses)
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def allow(self, address: str, now: float) -> bool:
        """Take one token from ``address``'s bucket; False when it is over its rate."""
        if self._rate <= 0:
            return True
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = TokenBucket(self._rate, self._burst, now)
            self._buckets[address] = bucket
            if len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(address)
        return bucket.allow(now)

    def __len__(self) -> int:
        return len(self._buckets)
