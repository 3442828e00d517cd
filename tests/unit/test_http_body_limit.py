"""Every HTTP endpoint refuses oversized bodies, declared or streamed; uploads get their own limit."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from rallypoint.web.limits import BodySizeLimit


async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(len(await request.body())))


def _client() -> TestClient:
    app = Starlette(
        routes=[Route("/small", echo, methods=["POST"]), Route("/upload", echo, methods=["POST"])],
        middleware=[Middleware(BodySizeLimit, max_bytes=100, per_path={"/upload": 1000})],
    )
    return TestClient(app)


def test_declared_and_streamed_limits() -> None:
    client = _client()
    assert client.post("/small", content=b"x" * 100).text == "100"
    assert client.post("/small", content=b"x" * 101).status_code == 413
    assert client.post("/upload", content=b"x" * 1000).text == "1000"
    assert client.post("/upload", content=b"x" * 1001).status_code == 413

    def chunks() -> object:
        for _ in range(20):
            yield b"y" * 10  # no Content-Length: chunked

    assert client.post("/small", content=chunks()).status_code == 413  # type: ignore[arg-type]
    assert client.post("/small", headers={"content-length": "nope"}, content=b"").status_code == 413
