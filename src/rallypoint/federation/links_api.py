"""``GET /api/links``: the state of every federation link (JSON list), for operators and dashboards."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route


def links_routes(snapshot: Callable[[], Sequence[dict[str, object]]]) -> list[BaseRoute]:
    """Routes serving ``snapshot()``; mounted by whoever owns the links (the federation feature)."""

    async def links(request: Request) -> JSONResponse:
        return JSONResponse({"links": list(snapshot())})

    return [Route("/api/links", links, methods=["GET"])]
