"""Stream listeners: plain TCP and TLS share one implementation; TLS is just an ``SSLContext``."""

from __future__ import annotations

import asyncio
import logging
import ssl

from rallypoint.transport.context import TransportContext
from rallypoint.transport.session import StreamSession

log = logging.getLogger(__name__)


async def start_stream_listener(
    ctx: TransportContext,
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    name: str,
    handshake_timeout_s: float = 10.0,
    reuse_port: bool = False,
) -> asyncio.Server:
    """Listen for TAK streaming clients; returns the started server (port 0 picks a free port).

    ``reuse_port`` (the workers of ``serve --workers N``) lets several processes listen on the same
    port; the kernel spreads new connections across them.
    """
    loop = asyncio.get_running_loop()
    server: asyncio.Server = await loop.create_server(
        lambda: StreamSession(ctx, transport_name=name),
        host=host,
        port=port,
        ssl=ssl_context,
        reuse_address=True,
        reuse_port=reuse_port,
        backlog=4096,
        ssl_handshake_timeout=handshake_timeout_s if ssl_context is not None else None,
    )
    return server


def bound_port(server: asyncio.Server) -> int:
    """The port a started server actually listens on."""
    return int(server.sockets[0].getsockname()[1])
