"""Request body size limit for every HTTP endpoint (uploads declare their own, larger limit)."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    """Answer 413 when a request body exceeds the limit, whether declared or streamed.

    ``per_path`` raises the limit for specific paths (data package uploads); those endpoints still
    enforce their own limit while streaming to disk.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, per_path: Mapping[str, int] | None = None) -> None:
        self._app = app
        self._max = max_bytes
        self._per_path = dict(per_path or {})
        self.rejected = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self._per_path.get(scope.get("path", ""), self._max)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = limit + 1
                if declared > limit:
                    self.rejected += 1
                    await _too_large(send)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._app(scope, limited_receive, tracking_send)
        except _TooLarge:
            self.rejected += 1
            if not started:
                await _too_large(send)


class _TooLarge(Exception):
    pass


async def _too_large(send: Send) -> None:
    await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"request body too large"})
