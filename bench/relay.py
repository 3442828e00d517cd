"""Baseline: the cheapest possible CoT "server" - every chunk read goes to every other connection.

No parsing, no framing, no routing: what a TCP fan-out costs in Python on this machine.
A peer whose buffer fills pauses reading from everyone until it drains, so memory stays bounded.

    python bench/relay.py --port 8087 [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any


class Relay(asyncio.Protocol):
    def __init__(self, peers: set[Relay], stalled: set[Relay]) -> None:
        self.peers, self.stalled = peers, stalled
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop: not a Transport subclass
        self.peers.add(self)
        if self.stalled:
            transport.pause_reading()  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        for peer in self.peers:
            if peer is not self and peer.transport is not None:
                peer.transport.write(data)

    def pause_writing(self) -> None:
        if not self.stalled:
            for peer in self.peers:
                peer.transport.pause_reading()  # type: ignore[union-attr]
        self.stalled.add(self)

    def resume_writing(self) -> None:
        self.stalled.discard(self)
        if not self.stalled:
            for peer in self.peers:
                peer.transport.resume_reading()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self.peers.discard(self)
        self.resume_writing()


async def serve(host: str, port: int) -> None:
    peers: set[Relay] = set()
    stalled: set[Relay] = set()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Relay(peers, stalled), host, port, backlog=4096)
    print(f"relay listening on {host}:{server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8087)
    args = parser.parse_args()
    run: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        run = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(args.host, args.port))
