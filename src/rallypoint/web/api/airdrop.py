"""``POST /api/airdrop/plan``: an advisory cargo drop plan from the same fields as the TOML file.

The computation is pure (``services.airdrop``) and CPU-bound, so it runs in a worker thread, at most
``MAX_CONCURRENT_PLANS`` at a time, keeping the event loop free for the live picture.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response

from rallypoint.errors import LimitExceeded
from rallypoint.model.airdrop import AirdropPlan, PlanRequest
from rallypoint.services.airdrop import PlanError, decode_json, plan
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.common import ApiError, Endpoint, json_response
from rallypoint.web.api.schemas import ErrorBody
from rallypoint.web.context import WebContext
from rallypoint.web.enrollment_auth import read_limited_body

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024  # 500 polygon vertices and 50 wind layers fit several times over
MAX_CONCURRENT_PLANS = 2


class AirdropApi:
    """The airdrop planner over HTTP; counts plans answered and refused."""

    def __init__(self, ctx: WebContext, auth: ApiAuth) -> None:
        self._auth = auth
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_PLANS)
        self.planned = 0
        self.refused = 0
        ctx.metrics.add_counters(self._counters)

    def _counters(self) -> Iterable[tuple[str, str, float]]:
        return [
            ("rallypoint_airdrop_plans", "Airdrop plans computed", float(self.planned)),
            ("rallypoint_airdrop_plans_refused", "Airdrop plan requests refused as invalid", float(self.refused)),
        ]

    async def compute(self, body: bytes) -> AirdropPlan:
        """Decode, validate and compute; ``ApiError`` 400 with the reason for an invalid request."""
        try:
            request = decode_json(body)
            async with self._slots:
                result = await asyncio.to_thread(plan, request)
        except PlanError as exc:
            self.refused += 1
            log.info("airdrop plan refused", extra={"reason": str(exc)[:300]})
            raise ApiError(400, "invalid_plan", str(exc)) from exc
        self.planned += 1
        return result

    def endpoints(self) -> list[Endpoint]:
        """The route table of this module."""

        async def plan_route(request: Request) -> Response:
            await self._auth.principal(request)
            ctype = request.headers.get("content-type", "")
            if ctype.split(";")[0].strip().lower() not in ("application/json", ""):
                raise ApiError(415, "unsupported_media_type", "send application/json")
            try:
                body = await read_limited_body(request, MAX_BODY_BYTES)
            except LimitExceeded as exc:
                self.refused += 1
                raise ApiError(413, "body_too_large", f"at most {MAX_BODY_BYTES} bytes") from exc
            return json_response(await self.compute(body))

        return [
            Endpoint(
                "POST", "/api/airdrop/plan", plan_route,
                "Advisory cargo airdrop plan: CARP, run-in, green light, DZ check, dispersion", "planning",
                {200: ("The plan (advisory, with its assumptions)", AirdropPlan),
                 400: ("Invalid request: the detail says what to fix", ErrorBody),
                 401: ("Not logged in", ErrorBody), 403: ("Refused", ErrorBody),
                 413: ("Body too large", ErrorBody), 415: ("Not JSON", ErrorBody)},
                body=PlanRequest, operation_id="planAirdrop",
            ),
        ]
