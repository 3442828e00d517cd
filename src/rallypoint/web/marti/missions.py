"""Data Sync: TAK's ``/Marti/api/missions`` API, and CoT addressed to missions.

Every endpoint identifies the caller (client certificate, else token, else anonymous) and answers
404 for missions outside the caller's groups, exactly as for missions that do not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from rallypoint.errors import StorageError
from rallypoint.model.mission import CreateRequest, InviteType, Mission, Role
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience
from rallypoint.services.missions import MissionService
from rallypoint.services.missions_access import Caller, InvalidMissionRequest, MissionError
from rallypoint.validation_errors import InvalidJson, decode_json
from rallypoint.web.context import WebContext
from rallypoint.web.features import Feature
from rallypoint.web.marti import missions_json as js
from rallypoint.web.marti.missions_params import (
    CALLER_UID_PARAMS,
    CREATOR_UID_ONLY,
    UidNotYours,
    caller_of,
    flag,
    integer,
    role_param,
    time_window,
)

log = logging.getLogger(__name__)

PREFIX = "/Marti/api/missions"
# Mission-addressed CoT waiting to be written; beyond this the oldest writes are refused (counted).
MAX_PENDING_WRITES = 4096

Handler = Callable[[Request, Caller], Awaitable[Response]]


class BodyTooLarge(MissionError):
    """A request body over ``max_http_body_bytes``."""

    status = 413


class ContentsBody(msgspec.Struct, frozen=True):
    """``PUT .../contents`` body (TAK's ``MissionContent``)."""

    hashes: list[str] = []
    uids: list[str] = []


class MissionsFeature:
    """Routes of the Mission API plus the hook recording mission-addressed CoT."""

    def __init__(self, ctx: WebContext, service: MissionService) -> None:
        self._ctx = ctx
        self.service = service
        self._pending: asyncio.Queue[tuple[str | None, Envelope]] = asyncio.Queue(MAX_PENDING_WRITES)
        self._drain_task: asyncio.Task[None] | None = None
        self.dropped = 0
        self._routes: list[BaseRoute] = [
            Route(PREFIX, self._wrap(self.list_missions), methods=["GET"]),
            Route(PREFIX + "/guid/{guid}", self._wrap(self.get_by_guid), methods=["GET"]),
            Route(PREFIX + "/guid/{guid}/changes", self._wrap(self.changes_by_guid), methods=["GET"]),
            Route(PREFIX + "/guid/{guid}/cot", self._wrap(self.cot_by_guid), methods=["GET"]),
            Route(PREFIX + "/{name}", self._wrap(self.create), methods=["PUT", "POST"]),
            Route(PREFIX + "/{name}", self._wrap(self.get_mission), methods=["GET"]),
            Route(PREFIX + "/{name}", self._wrap(self.delete), methods=["DELETE"]),
            Route(PREFIX + "/{name}/subscription", self._wrap(self.subscribe), methods=["PUT", "POST"]),
            Route(PREFIX + "/{name}/subscription", self._wrap(self.own_subscription), methods=["GET"]),
            Route(PREFIX + "/{name}/subscription", self._wrap(self.unsubscribe), methods=["DELETE"]),
            Route(PREFIX + "/{name}/subscriptions", self._wrap(self.subscriptions), methods=["GET"]),
            Route(PREFIX + "/{name}/subscriptions/roles", self._wrap(self.subscription_roles), methods=["GET"]),
            Route(PREFIX + "/{name}/contents", self._wrap(self.add_contents), methods=["PUT"]),
            Route(PREFIX + "/{name}/contents", self._wrap(self.remove_contents, CREATOR_UID_ONLY),
                  methods=["DELETE"]),
            Route(PREFIX + "/{name}/keywords", self._wrap(self.set_keywords), methods=["PUT"]),
            Route(PREFIX + "/{name}/keywords", self._wrap(self.clear_keywords), methods=["DELETE"]),
            Route(PREFIX + "/{name}/keywords/{keyword}", self._wrap(self.remove_keyword), methods=["DELETE"]),
            Route(PREFIX + "/{name}/changes", self._wrap(self.changes), methods=["GET"]),
            Route(PREFIX + "/{name}/cot", self._wrap(self.cot), methods=["GET"]),
            Route(PREFIX + "/{name}/invite/{kind}/{invitee}", self._wrap(self.invite, CREATOR_UID_ONLY),
                  methods=["PUT", "POST"]),
            Route(PREFIX + "/{name}/role", self._wrap(self.set_role, CREATOR_UID_ONLY), methods=["PUT"]),
        ]

    @property
    def routes(self) -> list[BaseRoute]:
        return self._routes

    # -- mission-addressed CoT ----------------------------------------------------------------

    # The ingest path calls observe only when this is True (every event would pay for the call),
    # and only for addressed events: CoT for a mission names it in a <dest>.
    observes = True
    observes_addressed_only = True

    def observe(self, envelope: Envelope, audience: Audience) -> None:
        """Queue the write of CoT addressed to a mission (its delivery is the dispatcher's, on every node).

        Only the node the CoT entered writes it: the mission's change is decided once, as the
        event's stored row is.
        """
        dests = envelope.event.detail.dests
        # Most events name no address at all: one test before the scan.
        if not dests or not any(d.mission is not None for d in dests):
            return
        if not self._ctx.ingest.entered_here(envelope):
            return
        if not self.service.loaded:
            self._enqueue(None, envelope)
            return
        for name in self.service.route_cot(envelope):
            self._enqueue(name, envelope)

    def _enqueue(self, name: str | None, envelope: Envelope) -> None:
        try:
            self._pending.put_nowait((name, envelope))
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("mission CoT write queue full; dropped", extra={"uid": envelope.event.uid})
            return
        # One drain task at a time, started on demand and awaited by close(): writes never wait
        # for a long-lived loop that would have to be told to stop.
        if self._drain_task is None or self._drain_task.done():
            self._drain_task = asyncio.get_running_loop().create_task(self._drain(), name="mission-cot-writer")

    async def _drain(self) -> None:
        while not self._pending.empty():
            name, envelope = self._pending.get_nowait()
            try:
                if name is None:
                    await self.service.load()
                    for routed in self.service.route_cot(envelope):
                        await self.service.record_cot(routed, envelope)
                else:
                    await self.service.record_cot(name, envelope)
            except (MissionError, StorageError) as exc:
                log.warning("mission CoT not recorded", extra={"uid": envelope.event.uid, "reason": str(exc)})

    async def run(self) -> None:
        """Load the missions into memory; the writes run in on-demand tasks (see ``_enqueue``)."""
        await self.service.load()

    async def close(self) -> None:
        """Finish pending writes, then close the store."""
        task = self._drain_task
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if not self._pending.empty():
                await self._drain()
        # A stop right after start may find run() still loading: let that load finish first (it holds
        # the service's lock; a finished load makes this a no-op), so it never reads a closed store.
        with contextlib.suppress(StorageError):
            await self.service.load()
        await self.service.store.close()

    # -- plumbing -----------------------------------------------------------------------------

    def _wrap(self, handler: Handler,
              uid_params: tuple[str, ...] = CALLER_UID_PARAMS) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            who = await self._ctx.identify(request)
            if who is None:
                return PlainTextResponse("forbidden", status_code=403)
            try:
                caller = caller_of(request, who, self._ctx.identity, uid_params)
                return await handler(request, caller)
            except UidNotYours as exc:
                self._ctx.metrics.rejected.labels("spoofed_uid", "http").inc()
                log.warning("mission request under another identity's uid refused",
                            extra={"principal": who.principal, "path": request.url.path})
                return PlainTextResponse(str(exc), status_code=exc.status)
            except InvalidMissionRequest as exc:
                self._ctx.metrics.rejected.labels("mission_bad_request", "http").inc()
                log.info("mission request refused", extra={"path": request.url.path, "reason": str(exc)[:300]})
                return PlainTextResponse(str(exc), status_code=exc.status)
            except MissionError as exc:
                return PlainTextResponse(str(exc) or type(exc).__name__, status_code=exc.status)

        return endpoint

    async def _body(self, request: Request) -> bytes:
        limit = self._ctx.settings.max_http_body_bytes
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise BodyTooLarge("body too large")
        return body

    def _ok(self, kind: str, data: object, status: int = 200) -> Response:
        return JSONResponse(js.envelope(kind, data, self._ctx.settings.node_id), status_code=status)

    async def _full(self, caller: Caller, mission: Mission) -> dict[str, object]:
        found = await self.service.details(caller, mission)
        return js.mission_json(mission, contents=found.contents, items=found.items)

    # -- missions -----------------------------------------------------------------------------

    async def list_missions(self, request: Request, caller: Caller) -> Response:
        missions = await self.service.visible(caller)
        return self._ok(js.MISSION_TYPE, [await self._full(caller, m) for m in missions])

    async def create(self, request: Request, caller: Caller) -> Response:
        p = request.query_params
        default_role = role_param(p, "defaultRole")
        req = CreateRequest(
            name=request.path_params["name"],
            groups=tuple(p.getlist("group")),
            description=p.get("description", ""),
            tool=p.get("tool", "public"),
            keywords=tuple(k for k in p.getlist("keywords") if k),
            password=p.get("password") or None,
            default_role=default_role or Role.SUBSCRIBER,
            invite_only=flag(p.get("inviteOnly")),
            expiration=integer(p, "expiration", -1),
            chat_room=p.get("chatRoom", ""),
            classification=p.get("classification", ""),
        )
        mission, sub, created = await self.service.create(caller, req)
        if created:
            self._ctx.auditor.record(caller.principal or "anonymous", "mission.create", mission.name,
                                     {"groups": ",".join(sorted(mission.groups))})
        doc = await self._full(caller, mission)
        if sub is not None:
            doc["token"] = sub.token
            doc["role"] = js.role_json(sub.role)
        return self._ok(js.MISSION_TYPE, [doc], 201 if created else 200)

    async def get_mission(self, request: Request, caller: Caller) -> Response:
        mission = await self.service.find(caller, request.path_params["name"])
        return await self._one(request, caller, mission)

    async def get_by_guid(self, request: Request, caller: Caller) -> Response:
        mission = await self.service.find_guid(caller, request.path_params["guid"])
        return await self._one(request, caller, mission)

    async def _one(self, request: Request, caller: Caller, mission: Mission) -> Response:
        # As TAK Server: ``changes=true`` adds the change log and ``logs=true`` the mission log, both
        # limited by ``start``/``end``/``secago``. Rallypoint keeps no mission log, so it is empty.
        found = await self.service.details(caller, mission)
        doc = js.mission_json(mission, contents=found.contents, items=found.items)
        p = request.query_params
        if flag(p.get("changes")):
            since, until = time_window(request, self._ctx.clock.now_ms())
            changes = await self.service.changes(caller, mission, since_ms=since, until_ms=until)
            contents = {c.hash: c for c in found.contents}
            doc["missionChanges"] = [js.change_json(c, contents) for c in changes]
        if flag(p.get("logs")):
            doc["logs"] = []
        return self._ok(js.MISSION_TYPE, [doc])

    async def delete(self, request: Request, caller: Caller) -> Response:
        mission = await self.service.delete(caller, request.path_params["name"])
        self._ctx.auditor.record(caller.principal or "anonymous", "mission.delete", mission.name, {})
        return self._ok(js.MISSION_TYPE, [js.mission_json(mission)])

    # -- subscriptions ------------------------------------------------------------------------

    async def subscribe(self, request: Request, caller: Caller) -> Response:
        name = request.path_params["name"]
        sub = await self.service.subscribe(caller, name, request.query_params.get("password"))
        mission = await self.service.find(caller, name)
        return self._ok(js.SUBSCRIPTION_TYPE, js.subscription_json(sub, mission=await self._full(caller, mission)),
                        201)

    async def own_subscription(self, request: Request, caller: Caller) -> Response:
        mission = await self.service.find(caller, request.path_params["name"])
        sub = self.service.subscription_of(caller, mission)
        if sub is None:
            return PlainTextResponse("not subscribed", status_code=404)
        return self._ok(js.SUBSCRIPTION_TYPE, js.subscription_json(sub))

    async def unsubscribe(self, request: Request, caller: Caller) -> Response:
        if not await self.service.unsubscribe(caller, request.path_params["name"]):
            return PlainTextResponse("not subscribed", status_code=404)
        return Response(status_code=200)

    async def subscriptions(self, request: Request, caller: Caller) -> Response:
        subs = await self.service.subscriptions(caller, request.path_params["name"])
        return self._ok("MissionSubscription", [s.client_uid for s in subs])

    async def subscription_roles(self, request: Request, caller: Caller) -> Response:
        subs = await self.service.subscriptions(caller, request.path_params["name"])
        return self._ok(js.SUBSCRIPTION_TYPE, [js.subscription_json(s, with_token=False) for s in subs])

    async def set_role(self, request: Request, caller: Caller) -> Response:
        p = request.query_params
        target = p.get("clientUid", "")
        new_role = role_param(p, "role")
        if not target or new_role is None:
            raise InvalidMissionRequest("clientUid and role are required")
        # clientUid names the subscriber being changed; the caller is known by creatorUid or token
        # (the route reads only creatorUid as the caller's uid).
        await self.service.set_role(caller, request.path_params["name"], target, new_role)
        return Response(status_code=200)

    async def invite(self, request: Request, caller: Caller) -> Response:
        kind_text = request.path_params["kind"]
        kind = next((k for k in InviteType if k.value.lower() == kind_text.lower()), None)
        if kind is None:
            raise InvalidMissionRequest(f"the invitation type must be one of: clientUid, callsign, group "
                                        f"(got {kind_text[:64]!r})")
        invited_role = role_param(request.query_params, "role")
        await self.service.invite(caller, request.path_params["name"], kind, request.path_params["invitee"],
                                  invited_role)
        return Response(status_code=200)

    # -- contents -----------------------------------------------------------------------------

    async def add_contents(self, request: Request, caller: Caller) -> Response:
        body = await self._body(request)
        try:
            parsed = decode_json(body or b"{}", ContentsBody)
        except InvalidJson as exc:
            raise InvalidMissionRequest(exc.detail) from None
        name = request.path_params["name"]
        await self.service.add(caller, name, parsed.hashes, parsed.uids)
        mission = await self.service.find(caller, name)
        return self._ok(js.MISSION_TYPE, [await self._full(caller, mission)])

    async def remove_contents(self, request: Request, caller: Caller) -> Response:
        p = request.query_params
        name = request.path_params["name"]
        await self.service.remove(caller, name, content_hash=p.get("hash") or None, uid=p.get("uid") or None)
        mission = await self.service.find(caller, name)
        return self._ok(js.MISSION_TYPE, [await self._full(caller, mission)])

    async def set_keywords(self, request: Request, caller: Caller) -> Response:
        body = await self._body(request)
        try:
            keywords = decode_json(body or b"[]", list[str])
        except InvalidJson as exc:
            raise InvalidMissionRequest(exc.detail) from None
        mission = await self.service.set_keywords(caller, request.path_params["name"], keywords)
        return self._ok(js.MISSION_TYPE, [await self._full(caller, mission)])

    async def clear_keywords(self, request: Request, caller: Caller) -> Response:
        mission = await self.service.set_keywords(caller, request.path_params["name"], [])
        return self._ok(js.MISSION_TYPE, [await self._full(caller, mission)])

    async def remove_keyword(self, request: Request, caller: Caller) -> Response:
        p = request.path_params
        mission = await self.service.remove_keyword(caller, p["name"], p["keyword"])
        return self._ok(js.MISSION_TYPE, [await self._full(caller, mission)])

    async def changes(self, request: Request, caller: Caller) -> Response:
        mission = await self.service.find(caller, request.path_params["name"])
        return await self._changes(request, caller, mission)

    async def changes_by_guid(self, request: Request, caller: Caller) -> Response:
        mission = await self.service.find_guid(caller, request.path_params["guid"])
        return await self._changes(request, caller, mission)

    async def _changes(self, request: Request, caller: Caller, mission: Mission) -> Response:
        since, until = time_window(request, self._ctx.clock.now_ms())
        found = await self.service.changes(caller, mission, since_ms=since, until_ms=until)
        contents = {c.hash: c for c in (await self.service.details(caller, mission)).contents}
        return self._ok(js.CHANGE_TYPE, [js.change_json(c, contents) for c in found])

    async def cot(self, request: Request, caller: Caller) -> Response:
        mission = await self.service.find(caller, request.path_params["name"])
        return await self._cot(caller, mission)

    async def cot_by_guid(self, request: Request, caller: Caller) -> Response:
        mission = await self.service.find_guid(caller, request.path_params["guid"])
        return await self._cot(caller, mission)

    async def _cot(self, caller: Caller, mission: Mission) -> Response:
        found = await self.service.details(caller, mission)
        body = b"<?xml version='1.0' encoding='UTF-8' standalone='yes'?><events>"
        body += b"".join(i.xml for i in found.items if i.xml) + b"</events>"
        return Response(body, media_type="application/xml")


def build(ctx: WebContext) -> Feature:
    """The Mission API over the context's mission service."""
    if ctx.missions is None:
        raise ValueError("the Mission API feature needs WebContext.missions")
    return MissionsFeature(ctx, ctx.missions)
