"""``/api/designations``: propose, list, read, approve, reject and withdraw designations.

The handlers translate HTTP to ``services.designations`` and back: bodies are decoded strictly
(anything invalid answers 400 with what to fix), the workflow's refusals become 403, 404 and 409.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from rallypoint.errors import LimitExceeded
from rallypoint.model.designation import Approval, Designation, InvalidDesignation, Proposal, Rejection, State
from rallypoint.services.designations import (
    Actor,
    DesignationConflict,
    DesignationForbidden,
    DesignationNotFound,
    DesignationService,
)
from rallypoint.validation_errors import InvalidJson, decode_json
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.common import ApiError, Endpoint, Param, check_only, json_response
from rallypoint.web.api.schemas import ErrorBody
from rallypoint.web.context import RequestIdentity, WebContext
from rallypoint.web.enrollment_auth import read_limited_body

log = logging.getLogger(__name__)
S = TypeVar("S")
T = TypeVar("T")

# 200 vertices and 4,000 characters of notes fit several times over.
MAX_BODY_BYTES = 64 * 1024
_ID = re.compile(r"^[0-9a-f]{32}$")
_ID_PARAM = Param("id", "path", {"type": "string", "pattern": "^[0-9a-f]{32}$"}, "designation id", required=True)


def actor_of(identity: RequestIdentity) -> Actor:
    """The service's view of an authenticated caller."""
    assert identity.principal is not None
    return Actor(principal=identity.principal, write_groups=identity.write_groups,
                 read_groups=identity.read_groups, role=identity.role)


class DesignationsApi:
    """The designation routes over the node's :class:`DesignationService` (503 when there is none)."""

    def __init__(self, ctx: WebContext, auth: ApiAuth, service: DesignationService | None) -> None:
        self._auth = auth
        self._service = service
        self._ctx = ctx

    def endpoints(self) -> list[Endpoint]:
        """The route table of this module."""

        async def propose(request: Request) -> Response:
            check_only(request, frozenset())
            actor, service = await self._caller(request)
            proposal = await self._body(request, Proposal, allow_empty=False)
            assert proposal is not None
            return json_response(await _answer(service.propose(actor, proposal)), status=201)

        async def listing(request: Request) -> Response:
            check_only(request, frozenset({"state"}))
            actor, service = await self._caller(request)
            raw = request.query_params.get("state")
            try:
                state = State(raw) if raw else None
            except ValueError as exc:
                raise ApiError(400, "bad_parameter", f"state: one of {', '.join(s.value for s in State)}") from exc
            return Response(await service.list_json(actor, state=state), media_type="application/json")

        async def show(request: Request) -> Response:
            check_only(request, frozenset())
            actor, service = await self._caller(request)
            return json_response(await _answer(service.get(actor, _id_of(request))))

        async def approve(request: Request) -> Response:
            check_only(request, frozenset())
            actor, service = await self._caller(request)
            approval = await self._body(request, Approval, allow_empty=True) or Approval()
            return json_response(await _answer(service.approve(actor, _id_of(request), approval)))

        async def reject(request: Request) -> Response:
            check_only(request, frozenset())
            actor, service = await self._caller(request)
            rejection = await self._body(request, Rejection, allow_empty=False)
            assert rejection is not None
            return json_response(await _answer(service.reject(actor, _id_of(request), rejection)))

        async def withdraw(request: Request) -> Response:
            check_only(request, frozenset())
            actor, service = await self._caller(request)
            return json_response(await _answer(service.withdraw(actor, _id_of(request))))

        common = {401: ("Not authenticated", ErrorBody), 403: ("Refused", ErrorBody),
                  503: ("Designations are not available on this server", ErrorBody)}
        body_errors = {400: ("Invalid body: the detail says what to fix", ErrorBody),
                       413: ("Body too large", ErrorBody), 415: ("Not JSON", ErrorBody)}
        decided = {404: ("No designation with that id you can see", ErrorBody),
                   409: ("Already decided (approved, rejected or withdrawn)", ErrorBody)}
        tag = "designations"
        return [
            Endpoint("POST", "/api/designations", propose,
                     "Propose a designation (visible to your groups, unapproved, until an approver decides)", tag,
                     {201: ("Proposed", Designation), **body_errors, **common}, body=Proposal,
                     operation_id="proposeDesignation"),
            Endpoint("GET", "/api/designations", listing, "Designations you may see, oldest first", tag,
                     {200: ("Designations", list[Designation]), 400: ("Bad query", ErrorBody), **common},
                     params=(Param("state", "query", {"type": "string", "enum": [s.value for s in State]},
                                   "only designations in this state"),),
                     operation_id="listDesignations"),
            Endpoint("GET", "/api/designations/{id}", show, "One designation you may see", tag,
                     {200: ("The designation", Designation), 400: ("Bad query", ErrorBody), 404: decided[404],
                      **common}, params=(_ID_PARAM,),
                     operation_id="getDesignation"),
            Endpoint("POST", "/api/designations/{id}/approve", approve,
                     "Approve (role approver, not the proposer) and share with groups (default: the proposer's)",
                     tag, {200: ("Approved", Designation), **body_errors, **decided, **common}, body=Approval,
                     params=(_ID_PARAM,), operation_id="approveDesignation"),
            Endpoint("POST", "/api/designations/{id}/reject", reject,
                     "Reject with a reason (role approver, not the proposer)", tag,
                     {200: ("Rejected", Designation), **body_errors, **decided, **common}, body=Rejection,
                     params=(_ID_PARAM,), operation_id="rejectDesignation"),
            Endpoint("DELETE", "/api/designations/{id}", withdraw, "Withdraw your own proposal", tag,
                     {200: ("Withdrawn", Designation), 400: ("Bad query", ErrorBody), **decided, **common},
                     params=(_ID_PARAM,),
                     operation_id="withdrawDesignation"),
        ]

    async def _caller(self, request: Request) -> tuple[Actor, DesignationService]:
        identity = await self._auth.principal(request)
        if self._service is None:
            raise ApiError(503, "unavailable", "designations are not available on this server")
        return actor_of(identity), self._service

    async def _body(self, request: Request, struct: type[S], *, allow_empty: bool) -> S | None:
        try:
            return await _body(request, struct, allow_empty=allow_empty)
        except ApiError as exc:
            # Bad input is counted and logged like the proposals the service refuses.
            if self._service is not None:
                self._service.counts["invalid"] += 1
            log.info("designation request refused", extra={"path": request.url.path[:120], "status": exc.status,
                                                           "reason": exc.detail[:200]})
            raise


def _id_of(request: Request) -> str:
    value = str(request.path_params["id"])
    if not _ID.fullmatch(value):
        raise ApiError(404, "not_found", "no designation with that id you can see")
    return value


async def _body(request: Request, struct: type[S], *, allow_empty: bool) -> S | None:
    ctype = request.headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() not in ("application/json", ""):
        raise ApiError(415, "unsupported_media_type", "send application/json")
    try:
        raw = await read_limited_body(request, MAX_BODY_BYTES)
    except LimitExceeded as exc:
        raise ApiError(413, "body_too_large", f"at most {MAX_BODY_BYTES} bytes") from exc
    if not raw.strip():
        if allow_empty:
            return None
        raise ApiError(400, "invalid_designation", "a JSON body is required")
    try:
        return decode_json(raw, struct)
    except InvalidJson as exc:
        raise ApiError(400, "invalid_designation", exc.detail) from exc


async def _answer(pending: Awaitable[T]) -> T:
    """Await a service call, turning its refusals into API errors."""
    try:
        return await pending
    except InvalidDesignation as exc:
        raise ApiError(400, "invalid_designation", str(exc)) from exc
    except DesignationNotFound as exc:
        raise ApiError(404, "not_found", "no designation with that id you can see") from exc
    except DesignationForbidden as exc:
        raise ApiError(403, "forbidden", str(exc)) from exc
    except DesignationConflict as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
