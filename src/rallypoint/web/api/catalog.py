"""``/api/packages`` and ``/api/missions`` reads: data packages and Data Sync missions.

Changes are served by ``packages.py`` and ``missions.py``. Both answer from the service
instances the Marti features own (``ctx.packages``, ``ctx.missions``) and apply the same group
rules: anything the caller may not read does not exist for it (404).
"""

from __future__ import annotations

from urllib.parse import quote

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from rallypoint.model.mission import MissionDetails
from rallypoint.services.datapackages import TOOLS, DataPackageService
from rallypoint.services.missions import MissionService
from rallypoint.services.missions_access import Caller, MissionError
from rallypoint.storage.base.packages import PackageRecord
from rallypoint.storage.export import iso_ms
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.common import ApiError, Endpoint, Param, check_only, json_response, parse_text
from rallypoint.web.api.schemas import ErrorBody, MissionContentRef, MissionDetail, MissionInfo, PackageInfo
from rallypoint.web.context import RequestIdentity, WebContext

_ERRORS = {401: ("Token not live", ErrorBody), 403: ("Refused", ErrorBody)}
_NOT_FOUND = {404: ("Not found, or not readable by the caller", ErrorBody)}
_UNAVAILABLE = {503: ("This server runs without the feature", ErrorBody)}


def _submitter(identity: RequestIdentity) -> str:
    # The name the Marti upload path records as submitter for anonymous uploads.
    return identity.principal or "anonymous"


def caller_of(identity: RequestIdentity) -> Caller:
    """The mission service's view of an API caller (no device uid, no subscription token)."""
    return Caller(
        principal=identity.principal, write_groups=identity.write_groups, read_groups=identity.read_groups,
        admin=identity.role == "admin",
    )


def package_info(record: PackageRecord, base_url: str) -> PackageInfo:
    """A package record as the API shows it."""
    return PackageInfo(
        hash=record.hash, name=record.name, size=record.size, mime=record.mime, keywords=list(record.keywords),
        tool=record.tool, submitter=record.submitter, creator_uid=record.creator_uid,
        submitted=iso_ms(record.submitted_ms), groups=sorted(record.groups),
        download_url=f"{base_url}/Marti/sync/content?hash={quote(record.hash)}",
    )


def mission_info(details: MissionDetails) -> MissionInfo:
    """A mission as the API lists it: its attributes and how much it holds."""
    m = details.mission
    return MissionInfo(
        name=m.name, guid=m.guid, description=m.description, tool=m.tool, creator_uid=m.creator_uid,
        created=iso_ms(m.create_time), groups=sorted(m.groups), keywords=list(m.keywords),
        contents_count=len(details.contents), uids_count=len(details.items),
    )


def mission_detail(details: MissionDetails, subscribers: int) -> MissionDetail:
    """A mission as the API shows it alone: what :func:`mission_info` says, its contents, uids and the reader's role."""
    return MissionDetail(
        **msgspec.structs.asdict(mission_info(details)),
        contents=[MissionContentRef(hash=c.hash, name=c.name) for c in details.contents],
        uids=[i.uid for i in details.items], subscribers=subscribers, role=details.role,
    )


class CatalogApi:
    """Data packages and missions, filtered by the caller's read groups."""

    def __init__(self, ctx: WebContext, auth: ApiAuth) -> None:
        self._ctx = ctx
        self._auth = auth

    def _packages(self) -> DataPackageService:
        # Read at request time: the owning feature may be built after this one in tests.
        if self._ctx.packages is None:
            raise ApiError(503, "unavailable", "data packages are not enabled")
        return self._ctx.packages

    def _missions(self) -> MissionService:
        if self._ctx.missions is None:
            raise ApiError(503, "unavailable", "missions are not enabled")
        return self._ctx.missions

    async def packages_for(
        self, identity: RequestIdentity, base_url: str, *, keyword: str | None, tool: str | None
    ) -> list[PackageInfo]:
        """Readable packages, as Marti's search answers them (private ones only for their submitter)."""
        found = await self._packages().search(
            identity.read_groups, _submitter(identity), keyword=keyword, tool=tool
        )
        return [package_info(r, base_url) for r in found]

    async def package(self, identity: RequestIdentity, digest: str, base_url: str) -> PackageInfo:
        """One readable package by SHA-256, else 404."""
        record = await self._packages().find(digest, identity.read_groups, _submitter(identity))
        if record is None:
            raise ApiError(404, "not_found", "no such package")
        return package_info(record, base_url)

    async def missions_for(self, identity: RequestIdentity) -> list[MissionInfo]:
        """Missions the caller can see, by name, with their content and uid counts."""
        service = self._missions()
        caller = caller_of(identity)
        out = []
        for mission in await service.visible(caller):
            try:
                details = await service.details(caller, mission)
            except MissionError:
                continue  # deleted meanwhile, or no read role: leave it out
            out.append(mission_info(details))
        return out

    async def mission(self, identity: RequestIdentity, name: str) -> MissionDetail:
        """One visible mission with its contents and uids, else 404."""
        service = self._missions()
        caller = caller_of(identity)
        try:
            mission = await service.find(caller, name)
            details = await service.details(caller, mission)
            subscribers = await service.subscriptions(caller, name)
        except MissionError as exc:
            if exc.status == 403:
                raise ApiError(404, "not_found", "no such mission") from exc
            raise ApiError(exc.status, "not_found" if exc.status == 404 else "invalid", str(exc)) from exc
        return mission_detail(details, len(subscribers))

    def endpoints(self) -> list[Endpoint]:
        """The route table of this module."""
        auth = self._auth
        ctx = self._ctx

        async def list_packages(request: Request) -> Response:
            check_only(request, frozenset({"keyword", "tool"}))
            identity = await auth.caller(request)
            tool = parse_text(request, "tool")
            if tool is not None and tool not in TOOLS:
                raise ApiError(400, "bad_parameter", "tool: public or private")
            found = await self.packages_for(
                identity, ctx.base_url(request), keyword=parse_text(request, "keyword", max_length=100), tool=tool
            )
            return json_response(found)

        async def get_package(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.caller(request)
            return json_response(await self.package(identity, request.path_params["hash"], ctx.base_url(request)))

        async def list_missions(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.caller(request)
            return json_response(await self.missions_for(identity))

        async def get_mission(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.caller(request)
            return json_response(await self.mission(identity, request.path_params["name"]))

        return [
            Endpoint(
                "GET", "/api/packages", list_packages, "Data packages the caller can read", "packages",
                {200: ("Packages", list[PackageInfo]), 400: ("Bad query parameter", ErrorBody), **_ERRORS,
                 **_UNAVAILABLE},
                params=(
                    Param("keyword", "query", {"type": "string", "maxLength": 100}, "only packages with this keyword"),
                    Param("tool", "query", {"type": "string", "enum": sorted(TOOLS)},
                          "only this tool (private packages of others are listed only with tool=private)"),
                ),
                operation_id="listPackages",
            ),
            Endpoint(
                "GET", "/api/packages/{hash}", get_package, "One data package by SHA-256", "packages",
                {200: ("Package", PackageInfo), 400: ("Bad query parameter", ErrorBody), **_ERRORS, **_NOT_FOUND,
                 **_UNAVAILABLE},
                params=(Param("hash", "path", {"type": "string"}, "SHA-256 of the content (64 hex digits)"),),
                operation_id="getPackage",
            ),
            Endpoint(
                "GET", "/api/missions", list_missions, "Data Sync missions the caller can see", "missions",
                {200: ("Missions", list[MissionInfo]), 400: ("Bad query parameter", ErrorBody), **_ERRORS,
                 **_UNAVAILABLE},
                operation_id="listMissions",
            ),
            Endpoint(
                "GET", "/api/missions/{name}", get_mission, "One mission with its contents and uids", "missions",
                {200: ("Mission", MissionDetail), 400: ("Bad query parameter", ErrorBody), **_ERRORS, **_NOT_FOUND,
                 **_UNAVAILABLE},
                params=(Param("name", "path", {"type": "string"}, "mission name (case-sensitive)"),),
                operation_id="getMission",
            ),
        ]
