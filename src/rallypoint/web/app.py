"""Starlette application factory for the operational endpoints."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from rallypoint.services.metrics import ServerMetrics
from rallypoint.web.guard import PageGuard
from rallypoint.web.limits import BodySizeLimit


def create_app(
    *,
    metrics: ServerMetrics,
    health: Callable[[], dict[str, Any]],
    crl: Callable[[], bytes] | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    max_body_bytes: int = 64 * 1024,
    upload_paths: Sequence[str] = (),
    max_upload_bytes: int = 100 * 1024 * 1024,
    large_paths: Sequence[tuple[str, int]] = (),
    on_body_too_large: Callable[[], None] | None = None,
    tile_origin: str | None = None,
) -> Starlette:
    """Build the HTTP app. ``health`` returns the status document; ``ready`` False answers 503.

    ``on_body_too_large`` is called for every request refused for its body size (metrics).
    ``tile_origin``: the origin of the configured tile URL, allowed by the pages' CSP (``web.guard``).
    """

    async def health_endpoint(request: Request) -> Response:
        doc = health()
        return JSONResponse(doc, status_code=200 if doc.get("ready") else 503)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def crl_endpoint(request: Request) -> Response:
        if crl is None:
            return Response(status_code=404)
        return Response(crl(), media_type="application/pkix-crl")

    return Starlette(
        middleware=[
            Middleware(
                BodySizeLimit, max_bytes=max_body_bytes, per_path=dict.fromkeys(upload_paths, max_upload_bytes),
                per_pattern=large_paths,
                on_reject=on_body_too_large,
            ),
            Middleware(PageGuard, on_refuse=lambda: metrics.rejected.labels("cross_origin", "http").inc(),
                       tile_origin=tile_origin),
        ],
        routes=[
            Route("/api/health", health_endpoint, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/crl.pem", crl_endpoint, methods=["GET"]),
            *extra_routes,
        ]
    )
