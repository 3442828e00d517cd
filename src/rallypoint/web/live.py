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
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal

import msgspec
from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from rallypoint.delivery.outbox import Outbox
from rallypoint.model.cot_type import DELETE, is_atom, is_persistent_item
from rallypoint.routing.directory import can_reach
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience
from rallypoint.web.api.picture import geojson, live_tracks, track_of
from rallypoint.web.context import RequestIdentity, WebContext
from rallypoint.web.credentials import bearer_from_subprotocol, presented_token, with_token
from rallypoint.web.features import Feature

log = logging.getLogger(__name__)

LIVE_PATH = "/api/live"
SUBPROTOCOL = "rallypoint.live.v1"
STATIC_DIR = Path(__file__).parent / "static"
# A browser map needs the latest state, not every report: a few thousand distinct uids queued is
# already far behind. Positions coalesce per uid long before these bounds bite.
MAX_QUEUED_ITEMS = 4096
MAX_QUEUED_BYTES = 4 * 1024 * 1024
# Messages written per wake-up before yielding to the event loop.
BATCH = 256
RECHECK_S = 2.0
# Close codes (4000-4999 are for applications): the caller's credentials stopped being valid.
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_GOING_AWAY = 1001


class LiveStatistics(msgspec.Struct, frozen=True):
    """Feeds open now and what they did since start (feeds that closed included).

    ``offered`` envelopes were handed to feeds by delivery; ``sent`` messages were written;
    ``coalesced`` positions were replaced by a newer one of the same uid while queued; ``dropped``
    envelopes were lost to overflow or went stale while queued; ``closed_slow`` feeds were closed
    because their reader stopped taking data; ``closed_auth`` because credentials lapsed.
    """

    feeds: int
    queued: int
    offered: int
    sent: int
    coalesced: int
    dropped: int
    closed_slow: int
    closed_auth: int


class _TokenMessage(msgspec.Struct, frozen=True, tag_field="type", tag="token"):
    """What a page sends on its feed after renewing its token."""

    token: str


class LiveSubscriber:
    """One open feed as the directory sees it; ``offer`` only queues and wakes the writer."""

    def __init__(self, sub_id: str, identity: RequestIdentity, now_ms: Callable[[], int]) -> None:
        self.id = sub_id
        self.identity = identity
        self.read_groups = identity.read_groups
        self.write_groups = identity.write_groups
        self.outbox = Outbox(MAX_QUEUED_ITEMS, MAX_QUEUED_BYTES)
        self.wake = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self.resnapshot = False
        self.sent = 0
        # The token re-checks use: the one the feed opened with, then each renewal the page sends.
        self.token: str | None = None
        # Replies to the page (renewal confirmations), written ahead of queued features.
        self.notices: list[bytes] = []
        self._now_ms = now_ms

    def offer(self, envelope: Envelope) -> None:
        """Queue a delivered envelope if the map shows it (called on the delivery path: cheap, never blocks)."""
        event = envelope.event
        kind = event.type
        if kind == DELETE:
            if event.detail.link_uid is None:
                return
        elif not (is_atom(kind) or is_persistent_item(kind)):
            return  # chat, tasks, control: not map features
        own = can_reach(envelope.origin.groups, self.write_groups)
        self.outbox.put(envelope, now_ms=self._now_ms(), own_group=own)
        self.wake.set()

    def finish(self, code: int, reason: str = "") -> None:
        """Ask the writer to close the socket with ``code`` (first call wins)."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        self.wake.set()


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
        ctx.metrics.add_gauges(self._gauges)
        ctx.metrics.add_counters(self._counters)
        ctx.metrics.add_drops(lambda: [("live_feed", float(self.statistics().dropped))])

    @property
    def routes(self) -> Sequence[BaseRoute]:
        return [
            WebSocketRoute(LIVE_PATH, _Endpoint(self)),
            Route("/map/{name:str}", self._static, methods=["GET"]),
        ]

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
        feed = LiveSubscriber(self._ctx.ids.session_id("live"), identity, self._ctx.clock.now_ms)
        feed.token = presented_token(ws)
        # Registered and snapshotted with no await in between: every later change is queued, none is lost.
        self._ctx.directory.add(feed)
        self._feeds[feed.id] = (feed, ws)
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

    def _message(self, envelope: Envelope) -> bytes:
        event = envelope.event
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
            out.append(self._message(envelope))
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
            feed.wake.set()

    def _account_closed(self, feed: LiveSubscriber) -> None:
        feed.outbox.clear()
        stats = feed.outbox.statistics()
        self._offered_closed += stats.offered
        self._sent_closed += feed.sent
        self._coalesced_closed += stats.coalesced
        self._dropped_closed += stats.dropped_overflow + stats.dropped_stale

    # --- metrics and the map page ---------------------------------------------------------------
    def _gauges(self) -> Iterable[tuple[str, str, float]]:
        s = self.statistics()
        return [
            ("rallypoint_live_feeds", "Open /api/live feeds", float(s.feeds)),
            ("rallypoint_live_queued", "Envelopes waiting in /api/live feed queues", float(s.queued)),
        ]

    def _counters(self) -> Iterable[tuple[str, str, float]]:
        s = self.statistics()
        return [
            ("rallypoint_live_offered", "Envelopes handed to /api/live feeds", float(s.offered)),
            ("rallypoint_live_sent", "Messages written to /api/live feeds", float(s.sent)),
            ("rallypoint_live_coalesced", "Queued feed positions replaced by a newer one", float(s.coalesced)),
            ("rallypoint_live_dropped", "Feed envelopes dropped (queue overflow or stale)", float(s.dropped)),
            ("rallypoint_live_closed_slow", "Feeds closed because the browser stopped reading",
             float(s.closed_slow)),
            ("rallypoint_live_closed_auth", "Feeds closed because credentials lapsed", float(s.closed_auth)),
        ]

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
