"""``/api/feeds``: list, add, pause, resume and remove source feeds at run time, and decide the
tracker's merge proposals (role ``admin``).

Feeds added here run on this node until removed; they are kept in the feed store under this
node's id and started again when it restarts (docs/feeds.md, "API"). Every change and decision is audited with the
operator's identity.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import unquote, urlsplit

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from rallypoint.config import FeedConfig
from rallypoint.errors import ConfigError, StorageError
from rallypoint.fusion.pairing import MergeProposal
from rallypoint.services.feeds import FeedError, FeedService, FeedView
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.common import ApiError, Endpoint, Handler, Param, check_only, json_response, read_body
from rallypoint.web.api.schemas import ErrorBody
from rallypoint.web.context import WebContext

log = logging.getLogger(__name__)

_NAME = Param("name", "path", {"type": "string", "minLength": 1, "maxLength": 64}, "feed name", required=True)
_ERRORS = {401: ("Not authenticated", ErrorBody), 403: ("Not an admin", ErrorBody),
           503: ("Feeds are not available on this node", ErrorBody)}
_PROPOSAL = Param("id", "path", {"type": "string", "minLength": 1, "maxLength": 64}, "merge proposal id",
                  required=True)
_STATUS = {"not_found": 404, "exists": 409, "too_many": 409, "no_proposal": 404}
# Where file feeds added through the API must be, under the data directory.
LAYER_DIR = "layers"


class FeedCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A feed to add: the same fields as ``[[feeds]]`` in the configuration."""

    url: str
    name: str = ""
    groups: list[str] = msgspec.field(default_factory=list)
    stale_s: float | None = None
    quality: float | None = None
    # A scripted exercise's feed: its tracks carry that exercise's marking (docs/exercises.md).
    exercise: str | None = None


def file_allowed(url: str, layers: Path) -> bool:
    """False for a ``+file`` feed outside ``layers``: over the API, files are read from there only
    (the configuration may name any file; an API caller should not make the server read /etc)."""
    parts = urlsplit(url.strip())
    if not parts.scheme.lower().endswith("+file"):
        return True
    path = Path(unquote(parts.path)).resolve()
    return path == layers or layers in path.parents


class FeedsApi:
    """The feed endpoints over the node's feed service (503 when the node has none)."""

    def __init__(self, ctx: WebContext, auth: ApiAuth) -> None:
        self._ctx = ctx
        self._auth = auth
        self._layers = Path(ctx.settings.data_dir, LAYER_DIR).resolve()
        self.refused = 0

    def _service(self) -> FeedService:
        service = self._ctx.feeds
        if service is None:
            raise ApiError(503, "unavailable", "this node runs no feed service")
        return service

    def endpoints(self) -> list[Endpoint]:
        """The route table of this module."""
        ctx = self._ctx
        auth = self._auth
        limit = ctx.settings.max_http_body_bytes

        async def list_feeds(request: Request) -> Response:
            check_only(request, frozenset())
            await auth.with_role(request, "admin")
            return json_response(self._service().list())

        async def add_feed(request: Request) -> Response:
            check_only(request, frozenset())
            admin = await auth.with_role(request, "admin")
            service = self._service()
            body = await read_body(request, FeedCreate, limit)
            config = FeedConfig(name=body.name, url=body.url, groups=tuple(body.groups), stale_s=body.stale_s,
                                quality=body.quality, exercise=body.exercise)
            if ctx.settings.workers > 1:
                # As in the configuration: every worker would run the feed after a restart.
                raise ApiError(409, "workers", "run feeds in a server with workers = 1")
            layers = self._layers
            if not file_allowed(body.url, layers):
                self.refused += 1
                raise ApiError(400, "invalid_feed", f"a file feed added at run time must be under {layers}")
            try:
                view = await service.kept.add(config, admin.principal or "-")
            except FeedError as exc:
                raise ApiError(_STATUS.get(exc.reason, 409), exc.reason, exc.detail) from exc
            except ConfigError as exc:
                self.refused += 1
                log.info("feed refused", extra={"reason": str(exc)[:300]})
                raise ApiError(400, "invalid_feed", str(exc)) from exc
            except StorageError as exc:
                log.error("feed not kept", extra={"feed": body.name[:64], "error": str(exc)[:300]})
                raise ApiError(503, "unavailable", "the feed cannot be stored now; it was not added") from exc
            detail = {"url": view.url, "groups": ",".join(view.groups)}
            if view.exercise is not None:
                detail["exercise"] = view.exercise
            ctx.auditor.record(admin.principal or "-", "admin.feed.add", view.name, detail)
            return json_response(view, status=201)

        def change(action: str) -> Handler:
            async def handler(request: Request) -> Response:
                check_only(request, frozenset())
                admin = await auth.with_role(request, "admin")
                service = self._service()
                name = request.path_params["name"]
                try:
                    match action:
                        case "pause":
                            view = service.pause(name)
                        case "resume":
                            view = service.resume(name)
                        case _:
                            view = await service.kept.remove(name)
                except FeedError as exc:
                    raise ApiError(_STATUS.get(exc.reason, 409), exc.reason, exc.detail) from exc
                except StorageError as exc:
                    log.error("feed not forgotten", extra={"feed": name[:64], "error": str(exc)[:300]})
                    raise ApiError(503, "unavailable",
                                   "the feed store cannot be written now; the feed runs on") from exc
                ctx.auditor.record(admin.principal or "-", f"admin.feed.{action}", view.name, {})
                return json_response(view)

            return handler

        async def list_proposals(request: Request) -> Response:
            check_only(request, frozenset())
            await auth.with_role(request, "admin")
            return json_response(self._service().merges.proposals())

        def decide(action: str) -> Handler:
            async def handler(request: Request) -> Response:
                check_only(request, frozenset())
                admin = await auth.with_role(request, "admin")
                desk = self._service().merges
                operator = admin.principal or "-"
                proposal_id = request.path_params["id"]
                try:
                    if action == "accept":
                        proposal = await desk.accept(proposal_id, operator)
                    else:
                        proposal = desk.reject(proposal_id, operator)
                except FeedError as exc:
                    raise ApiError(_STATUS.get(exc.reason, 409), exc.reason, exc.detail) from exc
                except StorageError as exc:
                    log.error("merge not kept", extra={"proposal": proposal_id, "error": str(exc)[:300]})
                    raise ApiError(503, "unavailable",
                                   "the accepted merge cannot be stored now; nothing merged") from exc
                ctx.auditor.record(operator, f"admin.feed.merge.{action}", proposal.id,
                                   {"primary": proposal.primary, "secondary": proposal.secondary})
                return json_response(proposal)

            return handler

        return [
            Endpoint("GET", "/api/feeds/proposals", list_proposals,
                     "Open merge proposals: two identified tracks that move together", "feeds",
                     {200: ("Proposals, oldest first", list[MergeProposal]), **_ERRORS},
                     operation_id="listMergeProposals"),
            Endpoint("POST", "/api/feeds/proposals/{id}/accept", decide("accept"),
                     "Accept a merge proposal: the secondary track joins the primary (kept across restarts)",
                     "feeds",
                     {200: ("Merged", MergeProposal), 404: ("No open proposal by that id", ErrorBody),
                      **_ERRORS},
                     params=(_PROPOSAL,), operation_id="acceptMergeProposal"),
            Endpoint("POST", "/api/feeds/proposals/{id}/reject", decide("reject"),
                     "Reject a merge proposal: that pair is not proposed again", "feeds",
                     {200: ("Rejected", MergeProposal), 404: ("No open proposal by that id", ErrorBody),
                      **_ERRORS},
                     params=(_PROPOSAL,), operation_id="rejectMergeProposal"),
            Endpoint("GET", "/api/feeds", list_feeds, "Source feeds with their statistics", "feeds",
                     {200: ("Feeds", list[FeedView]), **_ERRORS}, operation_id="listFeeds"),
            Endpoint("POST", "/api/feeds", add_feed,
                     "Add and start a source feed on this node (kept across restarts until removed)", "feeds",
                     {201: ("Started", FeedView), 400: ("The feed cannot be used: the detail says why", ErrorBody),
                      409: ("Name taken, too many feeds, or a server with several workers", ErrorBody),
                      413: ("Body too large", ErrorBody),
                      415: ("Not JSON", ErrorBody), 422: ("Invalid body", ErrorBody), **_ERRORS},
                     body=FeedCreate, operation_id="addFeed"),
            Endpoint("POST", "/api/feeds/{name}/pause", change("pause"),
                     "Pause a feed (streams stop reading; datagrams are dropped and counted)", "feeds",
                     {200: ("Paused", FeedView), 404: ("No such feed", ErrorBody), **_ERRORS},
                     params=(_NAME,), operation_id="pauseFeed"),
            Endpoint("POST", "/api/feeds/{name}/resume", change("resume"),
                     "Resume a paused feed", "feeds",
                     {200: ("Resumed", FeedView), 404: ("No such feed", ErrorBody), **_ERRORS},
                     params=(_NAME,), operation_id="resumeFeed"),
            Endpoint("DELETE", "/api/feeds/{name}", change("remove"),
                     "Stop and remove a feed (its tracks leave maps when stale)", "feeds",
                     {200: ("Removed", FeedView), 404: ("No such feed", ErrorBody), **_ERRORS},
                     params=(_NAME,), operation_id="removeFeed"),
        ]
