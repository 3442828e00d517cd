"""How a stream session writes to its transport: water marks and the largest single write."""

from __future__ import annotations

from typing import NamedTuple

# TLS: every write is encrypted at once into the connection's outgoing memory BIO, and OpenSSL keeps
# that buffer at its largest size until the connection closes. Unbounded, one burst (a loop iteration
# delivering a thousand reports to each of a thousand receivers) left ~600 KB behind per connection.
# At most this much plaintext per write, and ...
TLS_WRITE_CHUNK = 16 * 1024
# ... at most this much waiting in the transport before back-pressure: while the socket is full, the
# BIO keeps what was encrypted. Beyond it, receivers wait in the outbox, which holds the envelopes
# shared by every receiver instead of a private encrypted copy each.
TLS_WRITE_BUFFER_HIGH = 64 * 1024


class WriteLimits(NamedTuple):
    """How a session writes to its transport: water marks and the largest single write (0: any)."""

    high: int
    low: int
    chunk: int


def write_limits(write_buffer_high: int, *, tls: bool) -> WriteLimits:
    """Water marks (``write_buffer_high`` and a quarter of it) and write size for one session.

    Room for a burst (one loop iteration can deliver hundreds of events to a receiver) before
    back-pressure turns on and positions start to coalesce; on TLS both are capped (see above).
    """
    high = min(write_buffer_high, TLS_WRITE_BUFFER_HIGH) if tls else write_buffer_high
    return WriteLimits(high=high, low=high // 4, chunk=TLS_WRITE_CHUNK if tls else 0)
