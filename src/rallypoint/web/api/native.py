"""Rallypoint's native JSON API under ``/api/``: token auth, picture reads, chat, emergencies, admin,
packages and missions.

The route table (``Endpoint`` rows) serves the requests and generates ``/api/openapi.json``.
Tokens live in ``DATA_DIR/tokens.db`` (see ``security.tokens``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute

from rallypoint import __version__
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience
from rallypoint.web.api.admin import AdminApi
from rallypoint.web.api.airdrop import AirdropApi
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.catalog import CatalogApi
from rallypoint.web.api.common import Endpoint, json_response, routes_of
from rallypoint.web.api.designations import DesignationsApi
from rallypoint.web.api.exercises import ExercisesApi
from rallypoint.web.api.feeds import FeedsApi
from rallypoint.web.api.history import HistoryApi
from rallypoint.web.api.items import ItemsApi
from rallypoint.web.api.messaging import MessagingApi
from rallypoint.web.api.missions import MissionsApi
from rallypoint.web.api.openapi import docs_page, openapi_document
from rallypoint.web.api.package_send import PackageSendApi
from rallypoint.web.api.packages import PackagesApi
from rallypoint.web.api.picture import PictureApi
from rallypoint.web.api.plans import PlansApi
from rallypoint.web.api.replay import ReplayApi
from rallypoint.web.api.tasks import TasksApi
from rallypoint.web.api.video import VideoApi
from rallypoint.web.context import WebContext
from rallypoint.web.features import Feature
from rallypoint.web.oauth import OAuthTokens

log = logging.getLogger(__name__)

SCHEMA_PATH = "/api/openapi.json"


class NativeApi:
    """The native API feature: its routes, TAK's ``POST /oauth/token`` and the token store (closed with it)."""

    def __init__(self, ctx: WebContext) -> None:
        self.tokens = ctx.tokens
        self.auth = ApiAuth(ctx, self.tokens)
        self.oauth = OAuthTokens(users=ctx.users, tokens=self.tokens, auditor=ctx.auditor, clock=ctx.clock,
                                 metrics=ctx.metrics)
        catalog = CatalogApi(ctx, self.auth)
        self.endpoints: list[Endpoint] = [
            *self.auth.endpoints(),
            *PictureApi(ctx, self.auth).endpoints(),
            *HistoryApi(ctx, self.auth).endpoints(),
            *ReplayApi(ctx, self.auth).endpoints(),
            *MessagingApi(ctx, self.auth, ctx.emergencies).endpoints(),
            *ItemsApi(ctx, self.auth).endpoints(),
            *AdminApi(ctx, self.auth).endpoints(),
            *catalog.endpoints(),
            *PackagesApi(ctx, self.auth).endpoints(),
            *PackageSendApi(ctx, self.auth).endpoints(),
            *MissionsApi(ctx, self.auth, catalog).endpoints(),
            *AirdropApi(ctx, self.auth).endpoints(),
            *FeedsApi(ctx, self.auth).endpoints(),
            *TasksApi(ctx, self.auth, ctx.tasks).endpoints(),
            *DesignationsApi(ctx, self.auth, ctx.designations).endpoints(),
            *PlansApi(ctx, self.auth).endpoints(),
            *VideoApi(ctx, self.auth).endpoints(),
            *ExercisesApi(ctx, self.auth).endpoints(),
        ]
        self.endpoints.append(
            Endpoint("GET", SCHEMA_PATH, self._schema, "This OpenAPI document", "meta",
                     {200: ("OpenAPI 3.1 document", None)}, security=(), operation_id="openapi")
        )
        self.endpoints.append(
            Endpoint("GET", "/api/docs", self._docs, "Human-readable index of the API", "meta",
                     {200: ("HTML page", None)}, security=(), operation_id="docs")
        )
        self._document = openapi_document(self.endpoints, version=__version__)
        self._routes = [*routes_of(self.endpoints), *self.oauth.routes]

    @property
    def routes(self) -> Sequence[BaseRoute]:
        return self._routes

    # Nothing to observe: the ingest path does not call observe (every event would pay for the call).
    observes = False

    def observe(self, envelope: Envelope, audience: Audience) -> None:
        return None

    async def run(self) -> None:
        # Expired tokens are refused on sight; pruning them once at start keeps the file small.
        removed = await self.tokens.prune()
        if removed:
            log.info("expired API tokens pruned", extra={"count": removed})

    async def close(self) -> None:
        await self.tokens.close()

    async def _schema(self, request: Request) -> Response:
        return json_response(self._document)

    async def _docs(self, request: Request) -> Response:
        return HTMLResponse(docs_page(self.endpoints, SCHEMA_PATH))


def build(ctx: WebContext) -> Feature:
    """Construct the native API (bearer tokens identify callers of every feature through ``ctx.token_identity``)."""
    return NativeApi(ctx)
