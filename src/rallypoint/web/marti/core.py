"""Core Marti endpoints ATAK calls right after connecting: version, contacts, groups, CoT lookup.

Answers use TAK Server's ``ApiResponse`` envelope (``{"version":"3","type":...,"data":...,
"nodeId":...}``). Every list is filtered to what the caller may read; an item the caller cannot
read is answered exactly like one that does not exist.

Group activation (``PUT /Marti/api/groups/active``) narrows a client's live streaming session to
the groups it keeps active: deactivating an OUT group stops delivery from that group, deactivating
an IN group stops the client's sends reaching it. The choice is held in memory per client uid.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from rallypoint import __version__
from rallypoint.clock import ms_to_datetime
from rallypoint.protocol.wire import WireFormat
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience
from rallypoint.storage.base import HistoryQuery
from rallypoint.transport.context import ClosableSession
from rallypoint.validation_errors import InvalidJson, decode_json
from rallypoint.web.context import RequestIdentity, WebContext
from rallypoint.web.features import Feature

log = logging.getLogger(__name__)

API_VERSION = "3"
CLIENT_ENDPOINT_TYPE = "com.bbn.marti.remote.ClientEndpoint"
GROUP_TYPE = "com.bbn.marti.remote.groups.Group"
# Clients remembered for "Disconnected" entries of clientEndPoints.
MAX_REMEMBERED_CLIENTS = 10_000


class _GroupChoice(msgspec.Struct, frozen=True):
    """One element of the ``groups/active`` body."""

    name: str
    direction: str
    active: bool = True


class _Activation(msgspec.Struct, frozen=True):
    principal: str | None
    session_id: str
    inactive_in: frozenset[str]
    inactive_out: frozenset[str]


def _iso(ms: int) -> str:
    return ms_to_datetime(ms).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class CoreFeature:
    """Version, client endpoints, contacts, groups and CoT-by-uid."""

    def __init__(self, ctx: WebContext) -> None:
        self._ctx = ctx
        self._created = datetime.fromtimestamp(ctx.clock.now_ms() / 1000, UTC).strftime("%Y-%m-%d")
        # uid -> latest own SA of clients seen on this node (connected or since departed).
        self._seen: OrderedDict[str, Envelope] = OrderedDict()
        self._activation: dict[str, _Activation] = {}

    @property
    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/Marti/api/version", self.version, methods=["GET"]),
            Route("/Marti/api/version/config", self.version_config, methods=["GET"]),
            Route("/Marti/api/clientEndPoints", self.client_endpoints, methods=["GET"]),
            Route("/Marti/api/contacts/all", self.contacts, methods=["GET"]),
            Route("/Marti/api/groups/all", self.groups, methods=["GET"]),
            Route("/Marti/api/groups/user", self.groups, methods=["GET"]),
            Route("/Marti/api/groups/active", self.set_active, methods=["PUT"]),
            Route("/Marti/api/cot/xml/{uid}", self.cot_xml, methods=["GET"]),
        ]

    # The ingest path calls observe only when this is True (every event would pay for the call).
    observes = True

    def observe(self, envelope: Envelope, audience: Audience) -> None:
        """Remember each client's own SA (cheap: one dict lookup unless it is one)."""
        event = envelope.event
        sa = self._ctx.presence.sa.get(event.uid)
        if sa is envelope:
            seen = self._seen
            seen[event.uid] = envelope
            seen.move_to_end(event.uid)
            if len(seen) > MAX_REMEMBERED_CLIENTS:
                seen.popitem(last=False)

    async def run(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # --- endpoints ----------------------------------------------------------------------------
    async def version(self, request: Request) -> Response:
        if await self._ctx.identify(request) is None:
            return _forbidden()
        return PlainTextResponse(f"Rallypoint {__version__}")

    async def version_config(self, request: Request) -> Response:
        if await self._ctx.identify(request) is None:
            return _forbidden()
        hostname = self._ctx.settings.public_host or request.url.hostname or ""
        data = {"version": __version__, "api": API_VERSION, "hostname": hostname}
        return self._api("ServerConfig", data)

    async def client_endpoints(self, request: Request) -> Response:
        who = await self._ctx.identify(request)
        if who is None:
            return _forbidden()
        q = request.query_params
        now = self._ctx.clock.now_ms()
        since = _since(q.get("secAgo"), now)
        connected_only = q.get("showCurrentlyConnectedClients", "").lower() == "true"
        group = q.get("group") or None
        out = []
        for uid, envelope in self._entries():
            groups = envelope.origin.groups
            if not who.can_read(groups) or (group is not None and group not in groups):
                continue
            if since is not None and envelope.received_ms < since:
                continue
            connected = self._ctx.presence.sa.get(uid) is not None
            if connected_only and not connected:
                continue
            detail = envelope.event.detail
            out.append({
                "callsign": detail.callsign or "",
                "uid": uid,
                "username": envelope.origin.principal or "",
                "team": detail.group_name or "",
                "role": detail.group_role or "",
                "lastEventTime": _iso(envelope.received_ms),
                "lastStatus": "Connected" if connected else "Disconnected",
                "groups": sorted(groups & who.read_groups),
            })
        return self._api(CLIENT_ENDPOINT_TYPE, out)

    async def contacts(self, request: Request) -> Response:
        who = await self._ctx.identify(request)
        if who is None:
            return _forbidden()
        out = []
        for uid, envelope in list(self._ctx.presence.sa.items()):
            if not who.can_read(envelope.origin.groups):
                continue
            detail = envelope.event.detail
            out.append({
                "uid": uid,
                "callsign": detail.callsign or "",
                "team": detail.group_name or "",
                "role": detail.group_role or "",
                "type": envelope.event.type,
                "endpoint": detail.endpoint or "",
                "lastHeard": _iso(envelope.received_ms),
                "lastHeardMs": envelope.received_ms,
            })
        return JSONResponse(out)

    async def groups(self, request: Request) -> Response:
        who = await self._ctx.identify(request)
        if who is None:
            return _forbidden()
        activation = self._activation_for(who, request.query_params.get("clientUid"))
        inactive_in = activation.inactive_in if activation else frozenset()
        inactive_out = activation.inactive_out if activation else frozenset()
        names = sorted(who.write_groups | who.read_groups)
        bitpos = {name: i for i, name in enumerate(names)}
        items = []
        directions = (("IN", who.write_groups, inactive_in), ("OUT", who.read_groups, inactive_out))
        for direction, held, inactive in directions:
            for name in sorted(held):
                items.append({
                    "name": name,
                    "direction": direction,
                    "created": self._created,
                    "type": "SYSTEM",
                    "bitpos": bitpos[name],
                    "active": name not in inactive,
                    "description": "",
                })
        return self._api(GROUP_TYPE, items)

    async def set_active(self, request: Request) -> Response:
        who = await self._ctx.identify(request)
        if who is None:
            return _forbidden()
        client_uid = request.query_params.get("clientUid", "")
        session = self._session_of(client_uid)
        if session is None or session.principal != who.principal:
            return PlainTextResponse("no streaming session of yours with that clientUid", status_code=404)
        body = await request.body()
        if len(body) > 64 * 1024:
            return PlainTextResponse("body too large", status_code=413)
        try:
            choices = decode_json(body, list[_GroupChoice])
        except InvalidJson as exc:
            self._ctx.metrics.rejected.labels("groups_bad_body", "http").inc()
            log.info("group activation refused", extra={"client_uid": client_uid, "reason": exc.detail[:300]})
            return PlainTextResponse(exc.detail, status_code=400)
        previous = self._activation.get(client_uid)
        if previous is not None and previous.session_id != session.id:
            previous = None  # a new connection starts with every group active
        inactive_in = set(previous.inactive_in if previous else ())
        inactive_out = set(previous.inactive_out if previous else ())
        for choice in choices:
            direction = choice.direction.upper()
            if direction == "IN" and choice.name in who.write_groups:
                (inactive_in.discard if choice.active else inactive_in.add)(choice.name)
            elif direction == "OUT" and choice.name in who.read_groups:
                (inactive_out.discard if choice.active else inactive_out.add)(choice.name)
        activation = _Activation(who.principal, session.id, frozenset(inactive_in), frozenset(inactive_out))
        self._activation[client_uid] = activation
        write = who.write_groups - activation.inactive_in
        read = who.read_groups - activation.inactive_out
        # Kept on the session so later account changes keep the client's channel choice.
        session.inactive_groups = (activation.inactive_in, activation.inactive_out)
        session.regroup(write, read)
        self._ctx.auditor.record(
            who.principal or "-", "groups.active", client_uid,
            {"inactive_in": ",".join(sorted(activation.inactive_in)),
             "inactive_out": ",".join(sorted(activation.inactive_out))},
        )
        log.info(
            "active groups changed", extra={"client_uid": client_uid, "read": sorted(read), "write": sorted(write)}
        )
        return PlainTextResponse("")

    async def cot_xml(self, request: Request) -> Response:
        who = await self._ctx.identify(request)
        if who is None:
            return _forbidden()
        uid = request.path_params["uid"]
        presence = self._ctx.presence
        for table in (presence.sa, presence.items):
            envelope = table.get(uid)
            if envelope is not None and who.can_read(envelope.origin.groups):
                return Response(envelope.wire(WireFormat.XML), media_type="application/xml")
        found = await self._ctx.store.query(HistoryQuery(uid=uid, limit=1, order="desc"))
        if found:
            stored = found[0]
            # Addressed events are stored without groups and are never handed out here.
            if stored.groups and who.can_read(stored.groups):
                return Response(stored.xml, media_type="application/xml")
        return PlainTextResponse("not found", status_code=404)

    # --- helpers ------------------------------------------------------------------------------
    def _entries(self) -> list[tuple[str, Envelope]]:
        entries = dict(self._seen)
        entries.update(self._ctx.presence.sa)
        return list(entries.items())

    def _session_of(self, client_uid: str) -> ClosableSession | None:
        sub = self._ctx.directory.by_uid(client_uid) if client_uid else None
        if sub is None:
            return None
        for session in self._ctx.sessions:
            if session.id == sub.id:
                return session
        return None

    def _activation_for(self, who: RequestIdentity, client_uid: str | None) -> _Activation | None:
        """The caller's current choice: for ``client_uid``, else for any live session of theirs."""
        candidates = [client_uid] if client_uid else list(self._activation)
        for uid in candidates:
            activation = self._activation.get(uid)
            if activation is None or activation.principal != who.principal:
                continue
            session = self._session_of(uid)
            # Only while the same connection lives: a reconnect starts with every group active.
            if session is not None and session.id == activation.session_id:
                return activation
        return None

    def _api(self, kind: str, data: object) -> Response:
        return JSONResponse({"version": API_VERSION, "type": kind, "data": data, "nodeId": self._ctx.settings.node_id})


def _since(sec_ago: str | None, now_ms: int) -> int | None:
    if not sec_ago:
        return None
    try:
        seconds = int(sec_ago)
    except ValueError:
        return None
    return now_ms - seconds * 1000 if seconds > 0 else None


def _forbidden() -> Response:
    return PlainTextResponse("forbidden", status_code=403)


def build(ctx: WebContext) -> Feature:
    """The core Marti API feature."""
    return CoreFeature(ctx)
