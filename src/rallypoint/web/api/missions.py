"""``/api/missions`` writes: create, delete, subscribe, contents and the change log.

Every operation goes through :class:`MissionService`, the same rules the Marti endpoints apply:
group visibility (a mission the caller cannot see answers 404), roles (writing needs a
subscription whose role allows it; the creator and admins act as owners), and ``t-x-m-*``
notices to the mission's connected subscribers.

An API caller acts from a device uid: the ``uid`` it names (a device of its own: a uid bound to
another principal is refused), else its API sender uid ``rallypoint-api-<name>``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from rallypoint.model.mission import CreateRequest, MissionChange, Subscription
from rallypoint.services.missions import MissionService
from rallypoint.services.missions_access import Caller, MissionError, check_keyword
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.catalog import CatalogApi
from rallypoint.web.api.common import (
    ApiError,
    Endpoint,
    Param,
    check_only,
    json_response,
    parse_text,
    parse_time,
    read_body,
    xml_safe,
)
from rallypoint.web.api.messaging import sender_uid
from rallypoint.web.api.schemas import (
    Deleted,
    ErrorBody,
    MissionChangeView,
    MissionContentsChange,
    MissionCreate,
    MissionDetail,
    MissionSubscribe,
    SubscriptionView,
)
from rallypoint.web.context import RequestIdentity, WebContext

T = TypeVar("T")
_NAME = Param("name", "path", {"type": "string"}, "mission name (case-sensitive)", required=True)
_UID = Param("uid", "query", {"type": "string", "maxLength": 256}, "device uid (default: your API sender uid)")
_ERRORS = {400: ("Bad request", ErrorBody), 401: ("Not authenticated", ErrorBody),
           403: ("Refused (role or groups)", ErrorBody), 404: ("No such mission the caller can see", ErrorBody),
           503: ("This server runs without missions", ErrorBody)}
_BODY_ERRORS = {413: ("Body too large", ErrorBody), 415: ("Not JSON", ErrorBody), 422: ("Invalid body", ErrorBody)}


def change_view(change: MissionChange) -> MissionChangeView:
    """A change-log entry as the API shows it."""
    return MissionChangeView(
        type=change.type, mission=change.mission, creator_uid=change.creator_uid, time_ms=change.timestamp,
        content_hash=change.content_hash, content_uid=change.content_uid,
    )


def subscription_view(sub: Subscription, *, with_token: bool) -> SubscriptionView:
    """A subscription; its token only for its own holder."""
    return SubscriptionView(mission=sub.mission, uid=sub.client_uid, role=sub.role, created_ms=sub.create_time,
                            token=sub.token if with_token else None)


class MissionsApi:
    """Mission changes as the caller."""

    def __init__(self, ctx: WebContext, auth: ApiAuth, catalog: CatalogApi) -> None:
        self._ctx = ctx
        self._auth = auth
        self._catalog = catalog

    def _service(self) -> MissionService:
        if self._ctx.missions is None:
            raise ApiError(503, "unavailable", "missions are not enabled")
        return self._ctx.missions

    def caller(self, identity: RequestIdentity, uid: str | None) -> Caller:
        """The mission service's view of the caller acting from ``uid`` (or its API sender uid)."""
        xml_safe("uid", uid)
        own = sender_uid(identity.principal or "anonymous")
        client_uid = uid or own
        held = client_uid == own or identity.principal is None
        if uid:
            policy = self._ctx.identity
            holder = policy.holder_of(uid) if policy is not None else None
            if holder is not None and holder != identity.principal:
                raise ApiError(403, "forbidden", "this uid belongs to another identity")
            held = held or holder is not None
        return Caller(
            principal=identity.principal, write_groups=identity.write_groups, read_groups=identity.read_groups,
            client_uid=client_uid, admin=identity.role == "admin", uid_held=held,
        )

    async def _run(self, work: Awaitable[T]) -> T:
        try:
            return await work
        except MissionError as exc:
            labels = {400: "invalid", 403: "forbidden", 404: "not_found", 409: "conflict"}
            raise ApiError(exc.status, labels.get(exc.status, "refused"), str(exc)) from exc

    async def create(self, identity: RequestIdentity, body: MissionCreate) -> tuple[MissionDetail, bool]:
        """Create a mission owned by the caller (its device subscribed as owner)."""
        # Mission notices carry these in CoT: refuse what XML cannot hold before anything is stored.
        for field, value in (("description", body.description), ("tool", body.tool), ("uid", body.uid),
                             *(("keywords", k) for k in body.keywords)):
            xml_safe(field, value)
        caller = self.caller(identity, body.uid)
        try:
            keywords = tuple(dict.fromkeys(check_keyword(k) for k in body.keywords))
        except MissionError as exc:
            raise ApiError(422, "invalid", str(exc)) from exc
        request = CreateRequest(
            name=body.name, groups=tuple(body.groups), description=body.description, tool=body.tool,
            keywords=keywords, password=body.password, default_role=body.default_role,
            invite_only=body.invite_only,
        )
        mission, _, created = await self._run(self._service().create(caller, request))
        if created:
            self._ctx.auditor.record(identity.principal or "-", "mission.create", mission.name, {"via": "api"})
        return await self._catalog.mission(identity, mission.name), created

    async def delete(self, identity: RequestIdentity, name: str) -> Deleted:
        """Delete a mission (owner or admin); its subscribers are told."""
        mission = await self._run(self._service().delete(self.caller(identity, None), name))
        self._ctx.auditor.record(identity.principal or "-", "mission.delete", mission.name, {"via": "api"})
        return Deleted(id=mission.name, deleted=True)

    async def subscribe(self, identity: RequestIdentity, name: str, body: MissionSubscribe) -> SubscriptionView:
        """Subscribe a device of the caller's (it then hears the mission's changes)."""
        sub = await self._run(self._service().subscribe(self.caller(identity, body.uid), name, body.password))
        return subscription_view(sub, with_token=True)

    async def unsubscribe(self, identity: RequestIdentity, name: str, uid: str | None) -> Deleted:
        """Drop the caller's subscription from ``uid``; ``deleted`` False if there was none."""
        caller = self.caller(identity, uid)
        removed = await self._run(self._service().unsubscribe(caller, name))
        return Deleted(id=caller.client_uid, deleted=removed)

    async def subscribers(self, identity: RequestIdentity, name: str) -> list[SubscriptionView]:
        """A readable mission's subscriptions (tokens withheld)."""
        subs = await self._run(self._service().subscriptions(self.caller(identity, None), name))
        return [subscription_view(s, with_token=False) for s in sorted(subs, key=lambda s: s.client_uid)]

    async def add(self, identity: RequestIdentity, name: str, uid: str | None,
                  body: MissionContentsChange) -> list[MissionChangeView]:
        """Add packages and uids (needs write access: a subscription, or ownership)."""
        if not body.hashes and not body.uids:
            raise ApiError(422, "invalid", "give hashes, uids or both")
        for item in body.uids:
            xml_safe("uids", item)
        changes = await self._run(self._service().add(self.caller(identity, uid), name, body.hashes, body.uids))
        return [change_view(c) for c in changes]

    async def remove(self, identity: RequestIdentity, name: str, uid: str | None, *,
                     content_hash: str | None = None, item_uid: str | None = None) -> list[MissionChangeView]:
        """Remove one package or one uid; 404 when the mission does not hold it."""
        if item_uid is not None and not item_uid.isprintable():
            raise ApiError(400, "bad_parameter", "uid: printable characters only")
        changes = await self._run(self._service().remove(
            self.caller(identity, uid), name, content_hash=content_hash, uid=item_uid))
        if not changes:
            raise ApiError(404, "not_found", "the mission does not hold that")
        return [change_view(c) for c in changes]

    async def changes(self, identity: RequestIdentity, name: str, since_ms: int | None,
                      until_ms: int | None) -> list[MissionChangeView]:
        """The change log of a readable mission, oldest first."""
        service = self._service()
        caller = self.caller(identity, None)
        mission = await self._run(service.find(caller, name))
        found = await self._run(service.changes(caller, mission, since_ms=since_ms or 0, until_ms=until_ms))
        return [change_view(c) for c in found]

    def endpoints(self) -> list[Endpoint]:
        """The route table of this module."""
        auth = self._auth
        limit = self._ctx.settings.max_http_body_bytes

        async def create(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.caller(request)
            detail, created = await self.create(identity, await read_body(request, MissionCreate, limit))
            return json_response(detail, status=201 if created else 200)

        async def delete(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.caller(request)
            return json_response(await self.delete(identity, request.path_params["name"]))

        async def subscribe(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.caller(request)
            body = await read_body(request, MissionSubscribe, limit)
            return json_response(await self.subscribe(identity, request.path_params["name"], body))

        async def unsubscribe(request: Request) -> Response:
            check_only(request, frozenset({"uid"}))
            identity = await auth.caller(request)
            uid = parse_text(request, "uid")
            return json_response(await self.unsubscribe(identity, request.path_params["name"], uid))

        async def subscribers(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.caller(request)
            return json_response(await self.subscribers(identity, request.path_params["name"]))

        async def add(request: Request) -> Response:
            check_only(request, frozenset({"uid"}))
            identity = await auth.caller(request)
            uid = parse_text(request, "uid")
            body = await read_body(request, MissionContentsChange, limit)
            return json_response(await self.add(identity, request.path_params["name"], uid, body))

        async def remove_content(request: Request) -> Response:
            check_only(request, frozenset({"uid"}))
            identity = await auth.caller(request)
            return json_response(await self.remove(identity, request.path_params["name"], parse_text(request, "uid"),
                                                   content_hash=request.path_params["hash"]))

        async def remove_uid(request: Request) -> Response:
            check_only(request, frozenset({"uid"}))
            identity = await auth.caller(request)
            return json_response(await self.remove(identity, request.path_params["name"], parse_text(request, "uid"),
                                                   item_uid=request.path_params["item"]))

        async def changes(request: Request) -> Response:
            check_only(request, frozenset({"since", "until"}))
            identity = await auth.caller(request)
            return json_response(await self.changes(identity, request.path_params["name"],
                                                    parse_time(request, "since"), parse_time(request, "until")))

        time = {"type": "string", "description": "epoch milliseconds or ISO 8601 time with zone"}
        changed = list[MissionChangeView]
        return [
            Endpoint("POST", "/api/missions", create, "Create a mission owned by the caller", "missions",
                     {201: ("Created", MissionDetail), 200: ("Yours already, unchanged", MissionDetail),
                      409: ("Name taken", ErrorBody), **_ERRORS, **_BODY_ERRORS},
                     body=MissionCreate, operation_id="createMission"),
            Endpoint("DELETE", "/api/missions/{name}", delete, "Delete a mission (owner or admin)", "missions",
                     {200: ("Deleted", Deleted), **_ERRORS}, params=(_NAME,), operation_id="deleteMission"),
            Endpoint("GET", "/api/missions/{name}/subscriptions", subscribers, "Who is subscribed", "missions",
                     {200: ("Subscriptions", list[SubscriptionView]), **_ERRORS}, params=(_NAME,),
                     operation_id="listMissionSubscriptions"),
            Endpoint("PUT", "/api/missions/{name}/subscription", subscribe,
                     "Subscribe a device of yours (default: your API sender uid)", "missions",
                     {200: ("Subscribed", SubscriptionView), **_ERRORS, **_BODY_ERRORS},
                     body=MissionSubscribe, params=(_NAME,), operation_id="subscribeMission"),
            Endpoint("DELETE", "/api/missions/{name}/subscription", unsubscribe, "Unsubscribe a device of yours",
                     "missions", {200: ("Done (deleted false: was not subscribed)", Deleted), **_ERRORS},
                     params=(_NAME, _UID), operation_id="unsubscribeMission"),
            Endpoint("POST", "/api/missions/{name}/contents", add, "Add data packages and uids", "missions",
                     {200: ("Changes made", changed), **_ERRORS, **_BODY_ERRORS},
                     body=MissionContentsChange, params=(_NAME, _UID), operation_id="addMissionContents"),
            Endpoint("DELETE", "/api/missions/{name}/contents/{hash}", remove_content,
                     "Remove a data package from a mission", "missions", {200: ("Changes made", changed), **_ERRORS},
                     params=(_NAME, Param("hash", "path", {"type": "string"}, "SHA-256", required=True), _UID),
                     operation_id="removeMissionContent"),
            Endpoint("DELETE", "/api/missions/{name}/uids/{item}", remove_uid, "Remove a uid from a mission",
                     "missions", {200: ("Changes made", changed), **_ERRORS},
                     params=(_NAME, Param("item", "path", {"type": "string"}, "the uid to remove", required=True),
                             _UID),
                     operation_id="removeMissionUid"),
            Endpoint("GET", "/api/missions/{name}/changes", changes, "The mission's change log", "missions",
                     {200: ("Changes, oldest first", changed), **_ERRORS},
                     params=(_NAME, Param("since", "query", time, "from (inclusive)"),
                             Param("until", "query", time, "until (exclusive)")),
                     operation_id="listMissionChanges"),
        ]
