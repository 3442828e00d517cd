"""A raw CoT client over a blocking TCP socket, for synchronous (browser) tests.

Playwright's synchronous API cannot share a thread with an asyncio loop, so browser tests talk CoT
through this: ``send`` bytes, ``wait_for`` a received event matching a predicate (reading the socket
until a deadline; nothing sleeps).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent
from rallypoint.protocol.framing import XmlStreamFramer
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import parse_event

_LIMITS = Limits()


class TakSocket:
    """One plain-TCP CoT connection; ``events`` holds everything received so far, parsed."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self._sock = socket.create_connection((host, port), timeout=10)
        self._framer = XmlStreamFramer(_LIMITS)
        self.events: list[CotEvent] = []
        # The server's protocol offer says the session is registered: from then on, routed events arrive.
        self.wait_for(lambda e: e.type == "t-x-takp-v", timeout=15)

    def send(self, data: bytes) -> None:
        """Write ``data`` (one or more events) to the server."""
        self._sock.sendall(data)

    def wait_for(self, predicate: Callable[[CotEvent], bool], timeout: float = 15.0) -> CotEvent:
        """The first received event matching ``predicate``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if predicate(event):
                    return event
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no matching event within {timeout}s; got {[(e.type, e.uid) for e in self.events]}"
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            assert chunk, "the server closed the connection"
            self._take(chunk)

    def _take(self, chunk: bytes) -> None:
        # The server's own framer and parser: what this client sees is what a stock reader of the stream sees.
        self._framer.feed(chunk)
        while (frame := self._framer.next_frame()) is not None:
            try:
                self.events.append(parse_event(frame, _LIMITS))
            except RemoteProtocolError:
                continue

    def close(self) -> None:
        """Close the connection."""
        self._sock.close()

    def __enter__(self) -> TakSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
