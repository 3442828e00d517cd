"""A ``/api/live`` WebSocket client for tests: records every message and waits on them with deadlines."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

SUBPROTOCOL = "rallypoint.live.v1"
Message = dict[str, Any]


class LiveClient:
    """One open feed. ``messages`` holds every decoded message; ``features`` the picture it describes."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[Message] = []
        self.features: dict[str, Message] = {}
        self.close_code: int | None = None
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def connect(
        cls, port: int, *, token: str | None = None, via_subprotocol: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> LiveClient:
        """Open ``/api/live`` with a bearer token (header, or the browser's subprotocol form) or a certificate."""
        scheme = "wss" if ssl_context is not None else "ws"
        headers: dict[str, str] = {}
        protocols = [SUBPROTOCOL]
        if token is not None and via_subprotocol:
            protocols.append(f"bearer.{token}")
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
        ws = await connect(
            f"{scheme}://127.0.0.1:{port}/api/live", additional_headers=headers,
            subprotocols=protocols, ssl=ssl_context, open_timeout=10, max_size=None,  # type: ignore[arg-type]
        )
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                self.messages.append(message)
                kind = message.get("type")
                if kind == "FeatureCollection":
                    self.features = {f["id"]: f for f in message["features"]}
                elif kind == "Feature":
                    self.features[message["id"]] = message
                elif kind == "Delete":
                    self.features.pop(message["id"], None)
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self._changed.set()

    async def wait_for(self, predicate: Callable[[LiveClient], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate(self)`` holds (checked after every message), else fail."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                if self._task.done():
                    raise AssertionError(f"feed closed ({self.close_code}) before the condition held")
                self._changed.clear()
                await self._changed.wait()

    async def wait_uid(self, uid: str, timeout: float = 10.0) -> Message:
        """The feature ``uid`` once it is in the picture."""
        await self.wait_for(lambda c: uid in c.features, timeout)
        return self.features[uid]

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        """Wait for the server to close the feed; returns the close code."""
        async with asyncio.timeout(timeout):
            await asyncio.shield(self._task)
        return self.close_code

    def received(self, kind: str) -> list[Message]:
        """Messages of one ``type`` (``FeatureCollection``, ``Feature``, ``Delete``)."""
        return [m for m in self.messages if m.get("type") == kind]

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.wait([self._task], timeout=5)
