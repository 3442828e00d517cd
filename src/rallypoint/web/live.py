"""``GET /api/live``: the picture a caller may read, then every change to it, as GeoJSON over a WebSocket.

Each open feed is a :class:`~rallypoint.routing.directory.Subscriber` in the directory with the
caller's read groups, so the router's group rules decide what reaches it exactly as they do for a
streaming client; nothing here re-implements them. Delivery only queues: ``offer`` puts the
envelope in the feed's own bounded :class:`~rallypoint.delivery.outbox.Outbox` (latest position per
uid wins, deletes jump ahead, overflow drops the oldest of the least urgent class) and wakes the
feed's writer, so a browser that stops reading never slows the router or any other client.

Messages (text frames, one JSON document each):

* ``FeatureCollection``: the whole picture (first message; again after the caller's groups change).
  The same document as ``GET /api/tracks?format=geojson``.
* ``Feature``: a client or map item was reported (``id`` is the uid).
* ``Delete``: ``id`` left the picture (a ``t-x-d-d``; ``properties.event_uid`` names that event).
* ``Chat``: a GeoChat message the caller may read (:mod:`rallypoint.web.live_chat`).
* ``Emergencies``: every active alert the caller may read, with who acknowledged it (after the
  picture, and again whenever an alert is raised, repeated, cancelled or acknowledged;
  :mod:`rallypoint.web.emergency_acks`).

Authentication is the native API's: the client certificate (HTTPS port), else a bearer token in the
``Authorization`` header, else anonymous ``__ANON__`` (plain HTTP on loopback only). Browsers cannot
set headers on a WebSocket, so they offer the token as a second subprotocol ``bearer.<token>``
beside :data:`SUBPROTOCOL`. Feeds are re-authenticated every few seconds: a revoked or expired
token, a revoked certificate or a disabled account closes the feed; changed groups re-send the picture.
A page that renews its token sends ``{"type": "token", "token": ...}`` on the feed; later re-checks use
the new token (it must speak for the same principal, else it is ignored and counted), so a renewed
session keeps its feed open. The feed confirms with ``{"type": "Renewed"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import msgspec
from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from rallypoint.model.cot_type import CHAT, DELETE
from rallypoint.routing.directory import can_reach
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience
from rallypoint.web.api.picture import geojson, live_tracks, track_of
from rallypoint.web.context import RequestIdentity, WebContext
from rallypoint.web.credentials import bearer_from_subprotocol, presented_token, with_token
from rallypoint.web.features import Feature
from rallypoint.web.live_chat import chat_message, sent_by
from rallypoint.web.live_stats import LiveStatistics, live_counters, live_gauges
from rallypoint.web.live_subscriber import LiveSubscriber

__all__ = [
    "LIVE_PATH", "SUBPROTOCOL", "LiveFeed", "LiveStatistics", "LiveSubscriber", "bearer_from_subprotocol", "build",
]

log = logging.getLogger(__name__)

LIVE_PATH = "/api/live"
SUBPROTOCOL = "rallypoint.live.v1"
STATIC_DIR = Path(__file__).parent / "static"
# Messages written per wake-up before yielding to the event loop.
BATCH = 256
RECHECK_S = 2.0
# Close codes (4000-4999 are for applications): the caller's credentials stopped being valid.
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_GOING_AWAY = 1001


class _TokenMessage(msgspec.Struct, frozen=True, tag_field="type", tag="token"):
    """What a page sends on its feed after renewing its token."""

    token: str


class LiveFeed:
    """The ``/api/live`` feature: the WebSocket route, the map page, periodic re-authentication."""

    def __init__(self, ctx: WebContext, *, recheck_s: float = RECHECK_S) -> None:
        self._ctx = ctx
        self._recheck_s = recheck_s
        self._feeds: dict[str, tuple[LiveSubscriber, WebSocket]] = {}
        self._stop = asyncio.Event()
        self._offered_closed = 0
        self._sent_closed = 0
        self._coalesced_closed = 0
        self._dropped_closed = 0
        self.closed_slow = 0
        self.closed_auth = 0
        ctx.metrics.add_gauges(lambda: live_gauges(self.statistics()))
        ctx.metrics.add_counters(lambda: live_counters(self.statistics()))
        ctx.metrics.add_drops(lambda: [("live_feed", float(self.statistics().dropped))])
        ctx.emergency_acks.listen(self._emergencies_changed)

    @property
    def routes(self) -> Sequence[BaseRoute]:
        return [
            WebSocketRoute(LIVE_PATH, _Endpoint(self)),
            Route("/map/{name:str}", self._static, methods=["GET"]),
        ]

    # Nothing to observe: the ingest path does not call observe (every event would pay for the call).
    observes = False

    def observe(self, envelope: Envelope, audience: Audience) -> None:
        return None

    async def run(self) -> None:
        """Re-authenticate open feeds every ``recheck_s`` until :meth:`close`."""
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self._recheck_s)
            for feed, ws in list(self._feeds.values()):
                if feed.close_code is None:
                    await self._recheck(feed, ws)

    async def close(self) -> None:
        """Stop re-authenticating and close every open feed (the server is going away)."""
        self._stop.set()
        for feed, _ws in list(self._feeds.values()):
            feed.finish(CLOSE_GOING_AWAY, "server stopping")

    def statistics(self) -> LiveStatistics:
        """Totals over open and closed feeds (see :class:`LiveStatistics`)."""
        stats = [feed.outbox.statistics() for feed, _ in self._feeds.values()]
        return LiveStatistics(
            feeds=len(stats),
            queued=sum(s.queued for s in stats),
            offered=self._offered_closed + sum(s.offered for s in stats),
            sent=self._sent_closed + sum(feed.sent for feed, _ in self._feeds.values()),
            coalesced=self._coalesced_closed + sum(s.coalesced for s in stats),
            dropped=self._dropped_closed + sum(s.dropped_overflow + s.dropped_stale for s in stats),
            closed_slow=self.closed_slow,
            closed_auth=self.closed_auth,
        )

    # --- one connection ------------------------------------------------------------------------
    async def serve(self, ws: WebSocket) -> None:
        """Authenticate, send the picture, then stream changes until either side ends the feed."""
        identity, status, error = await self._caller(ws)
        if identity is None:
            self._ctx.metrics.rejected.labels(f"live_{error}", "http").inc()
            client = ws.client.host if ws.client else ""
            log.warning("live feed refused", extra={"reason": error, "remote": client})
            await _refuse(ws, status, error)
            return
        offered = ws.scope.get("subprotocols", [])
        await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        feed = LiveSubscriber(self._ctx.ids.session_id("live"), identity, self._ctx.clock.now_ms,
                              on_direct=self._direct)
        feed.token = presented_token(ws)
        feed.emergencies_changed = True  # the active alerts follow the picture
        # Registered and snapshotted with no await in between: every later change is queued, none is lost.
        self._ctx.directory.add(feed)
        self._feeds[feed.id] = (feed, ws)
        self._bind_chat(feed)
        first = self._snapshot(feed)
        log.info("live feed opened", extra={"feed": feed.id, "principal": identity.principal})
        try:
            async with asyncio.TaskGroup() as tg:
                reader = tg.create_task(self._read(ws, feed), name=f"{feed.id}-reader")
                await self._write(ws, feed, first)
                reader.cancel()
        finally:
            self._ctx.directory.remove(feed.id)
            self._feeds.pop(feed.id, None)
            self._rebind_chat(feed)
            self._account_closed(feed)
            log.info("live feed closed", extra={"feed": feed.id, "code": feed.close_code})

    async def _caller(self, ws: HTTPConnection) -> tuple[RequestIdentity | None, int, str]:
        """The native API's rules (``ApiAuth.caller``): who is asking, else the HTTP refusal."""
        ctx = self._ctx
        identity = await ctx.identify(ws)
        token = presented_token(ws)
        has_cert = ctx.peers.certificate_for(ws.scope) is not None
        if identity is None:
            if token is not None and not has_cert:
                return None, 401, "invalid_token"
            return None, 403, "forbidden"
        if identity.principal is None and token is not None:
            return None, 401, "invalid_token"
        return identity, 200, ""

    def _snapshot(self, feed: LiveSubscriber) -> bytes:
        """The caller's picture now: the same document as ``GET /api/tracks?format=geojson``."""
        return msgspec.json.encode(geojson(live_tracks(self._ctx.presence, feed.identity, self._ctx.clock.now_ms())))

    def _bind_chat(self, feed: LiveSubscriber) -> None:
        """Make the feed the address of its caller's chat identity (the latest feed of a caller holds it).

        The callsign is taken only when no TAK client holds it: a web user never hides a phone.
        """
        if not feed.chat_uid:
            return
        directory = self._ctx.directory
        holder = directory.by_callsign(feed.chat_callsign)
        free = holder is None or holder.id in self._feeds
        directory.bind(feed.id, uid=feed.chat_uid, callsign=feed.chat_callsign if free else None)

    def _rebind_chat(self, closed: LiveSubscriber) -> None:
        """A closed feed hands its caller's chat identity to another open feed of the same caller."""
        for feed, _ws in self._feeds.values():
            if feed.chat_uid and feed.chat_uid == closed.chat_uid and feed.close_code is None:
                if self._ctx.directory.by_uid(feed.chat_uid) is None:
                    self._bind_chat(feed)
                return

    def _direct(self, receiver: LiveSubscriber, envelope: Envelope) -> None:
        """A chat addressed to a web user reaches every open feed of that user the sender may reach."""
        for feed, _ws in list(self._feeds.values()):
            if feed is receiver or (
                feed.chat_uid == receiver.chat_uid and can_reach(envelope.origin.groups, feed.read_groups)
            ):
                feed.queue(envelope)

    def _emergencies_changed(self) -> None:
        for feed, _ws in self._feeds.values():
            feed.emergencies_changed = True
            feed.wake.set()

    def _emergencies(self, feed: LiveSubscriber) -> bytes:
        """The active alerts the feed's caller may read, with their acknowledgements."""
        return msgspec.json.encode(self._ctx.emergency_acks.visible(self._ctx.emergencies, feed.identity))

    def _message(self, feed: LiveSubscriber, envelope: Envelope) -> bytes:
        event = envelope.event
        if event.type == CHAT:
            return chat_message(event, direct=feed.direct(envelope), own=sent_by(envelope, feed.identity.principal))
        if event.type == DELETE:
            return msgspec.json.encode({
                "type": "Delete", "id": event.detail.link_uid,
                "properties": {"event_uid": event.uid, "time_ms": event.time},
            })
        uid = event.uid
        kind: Literal["client", "item"] = "client" if uid in self._ctx.presence.sa else "item"
        return msgspec.json.encode(geojson([track_of(uid, envelope, kind)]).features[0])

    async def _read(self, ws: WebSocket, feed: LiveSubscriber) -> None:
        """Wait for the browser to go away, taking renewed tokens; nothing else it sends is read."""
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while (message := await ws.receive())["type"] != "websocket.disconnect":
                if message.get("text"):
                    await self._renewed(feed, ws, message["text"])
        feed.finish(CLOSE_GOING_AWAY)

    async def _renewed(self, feed: LiveSubscriber, ws: WebSocket, text: str) -> None:
        try:
            token = msgspec.json.decode(text, type=_TokenMessage).token
        except msgspec.DecodeError:
            return
        identity = await self._ctx.identify(with_token(ws.scope, token))
        if identity is None or identity.principal is None or identity.principal != feed.identity.principal:
            self._ctx.metrics.rejected.labels("live_bad_token", "http").inc()
            log.warning("live feed refused a renewed token", extra={"feed": feed.id})
            return
        feed.token = token
        feed.notices.append(b'{"type":"Renewed"}')
        feed.wake.set()

    async def _write(self, ws: WebSocket, feed: LiveSubscriber, first: bytes) -> None:
        """Drain the feed's outbox to the socket until the feed is finished."""
        slow_s = self._ctx.settings.slow_receiver_timeout_s
        pending: list[bytes] = [first]
        try:
            while True:
                if pending:
                    try:
                        async with asyncio.timeout(slow_s if slow_s > 0 else None):
                            for message in pending:
                                await ws.send_text(message.decode())
                                feed.sent += 1
                    except TimeoutError:
                        self.closed_slow += 1
                        log.warning("closing live feed that stopped reading", extra={"feed": feed.id})
                        feed.finish(CLOSE_GOING_AWAY, "not reading")
                        return
                    pending = []
                    await asyncio.sleep(0)  # let delivery and other feeds run between batches
                if feed.close_code is not None:
                    break
                if feed.resnapshot:
                    feed.resnapshot = False
                    feed.outbox.clear()
                    pending.append(self._snapshot(feed))
                    continue
                if feed.notices:
                    pending, feed.notices = feed.notices, []
                    continue
                if feed.emergencies_changed:
                    feed.emergencies_changed = False
                    pending.append(self._emergencies(feed))
                    continue
                pending = self._batch(feed)
                if not pending:
                    feed.wake.clear()
                    await feed.wake.wait()
            if ws.application_state is WebSocketState.CONNECTED and ws.client_state is WebSocketState.CONNECTED:
                with contextlib.suppress(RuntimeError, OSError):
                    await ws.close(feed.close_code or CLOSE_GOING_AWAY, feed.close_reason)
        except (WebSocketDisconnect, OSError):
            feed.finish(CLOSE_GOING_AWAY)

    def _batch(self, feed: LiveSubscriber) -> list[bytes]:
        now = self._ctx.clock.now_ms()
        out: list[bytes] = []
        while len(out) < BATCH and (envelope := feed.outbox.pop(now)) is not None:
            out.append(self._message(feed, envelope))
        return out

    async def _recheck(self, feed: LiveSubscriber, ws: WebSocket) -> None:
        identity, _status, error = await self._caller(ws if feed.token is None else with_token(ws.scope, feed.token))
        if feed.id not in self._feeds:
            return  # closed while its credentials were looked up: must not re-enter the directory
        if identity is None:
            self.closed_auth += 1
            log.info("live feed credentials lapsed", extra={"feed": feed.id, "reason": error})
            feed.finish(CLOSE_UNAUTHORIZED if error == "invalid_token" else CLOSE_FORBIDDEN, error)
            return
        if identity.read_groups != feed.read_groups or identity.write_groups != feed.write_groups:
            old = feed.read_groups
            feed.identity = identity
            feed.read_groups, feed.write_groups = identity.read_groups, identity.write_groups
            self._ctx.directory.regroup(feed, old)
            feed.resnapshot = True
            feed.emergencies_changed = True
            feed.wake.set()

    def _account_closed(self, feed: LiveSubscriber) -> None:
        feed.outbox.clear()
        stats = feed.outbox.statistics()
        self._offered_closed += stats.offered
        self._sent_closed += feed.sent
        self._coalesced_closed += stats.coalesced
        self._dropped_closed += stats.dropped_overflow + stats.dropped_stale

    # --- the map page ---------------------------------------------------------------
    async def _static(self, request: Request) -> Response:
        name = request.path_params["name"]
        media = _ASSETS.get(name)
        if media is None:
            return Response(status_code=404)
        return FileResponse(STATIC_DIR / name, media_type=media)


# The page's files, by name: nothing else under static/ is served.
_ASSETS = {"map.html": "text/html; charset=utf-8", "map.js": "text/javascript; charset=utf-8",
           "map.css": "text/css; charset=utf-8"}


class _Endpoint:
    """ASGI app of the route: moves a ``bearer.<token>`` subprotocol into an Authorization header.

    Identity is then resolved from the scope exactly as for any other request.
    """

    def __init__(self, feed: LiveFeed) -> None:
        self._feed = feed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._feed.serve(WebSocket(bearer_from_subprotocol(scope), receive, send))


async def _refuse(ws: WebSocket, status: int, error: str) -> None:
    """Answer the handshake with the native API's error body where the server allows it, else close."""
    body = {"error": error, "detail": "log in first (POST /api/auth/token)" if status == 401 else "refused"}
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(JSONResponse(body, status_code=status))
    else:
        await ws.close(CLOSE_UNAUTHORIZED if status == 401 else CLOSE_FORBIDDEN)


def build(ctx: WebContext) -> Feature:
    """Construct the live feed feature."""
    return LiveFeed(ctx)
