"""OpenAPI 3.1 document built from the route table and the msgspec structs, and a small docs page."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import msgspec

from rallypoint.web.api.common import Endpoint, Media
from rallypoint.web.api.schemas import COMPONENTS

_REF = "#/components/schemas/{name}"
_SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Token from POST /api/auth/token"},
    "basic": {"type": "http", "scheme": "basic", "description": "Account name and password"},
    "mutualTLS": {"type": "mutualTLS", "description": "Client certificate issued by the server's CA"},
}


def openapi_document(endpoints: Sequence[Endpoint], *, version: str, servers: Sequence[str] = ()) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``endpoints``."""
    types: list[Any] = list(COMPONENTS)
    slots: list[tuple[int, int | None, str]] = []  # (endpoint index, status or None for the body, where)
    for i, e in enumerate(endpoints):
        if e.body is not None and not isinstance(e.body, Media):
            slots.append((i, None, "body"))
            types.append(e.body)
        for status, (_, typ) in e.responses.items():
            if typ is not None and not isinstance(typ, Media):
                slots.append((i, status, "response"))
                types.append(typ)
    schemas, components = msgspec.json.schema_components(types, ref_template=_REF)
    by_slot = dict(zip([(i, s) for i, s, _ in slots], schemas[len(COMPONENTS):], strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for i, e in enumerate(endpoints):
        op: dict[str, Any] = {
            "summary": e.summary,
            "operationId": e.operation_id or f"{e.method.lower()}{e.path}",
            "tags": [e.tag],
            "security": [{name: []} for name in e.security] + ([{}] if e.security == ("bearer", "mutualTLS") else []),
            "responses": {},
        }
        if e.params:
            op["parameters"] = [
                {"name": p.name, "in": p.where, "required": p.required or p.where == "path",
                 "schema": p.schema, **({"description": p.description} if p.description else {})}
                for p in e.params
            ]
        if isinstance(e.body, Media):
            op["requestBody"] = {"required": True, "content": {m: {"schema": s} for m, s in e.body.content.items()}}
        elif e.body is not None:
            op["requestBody"] = {
                "required": True, "content": {"application/json": {"schema": by_slot[(i, None)]}},
            }
        for status, (description, typ) in sorted(e.responses.items()):
            entry: dict[str, Any] = {"description": description}
            if isinstance(typ, Media):
                entry["content"] = {m: {"schema": s} for m, s in typ.content.items()}
            elif typ is not None:
                entry["content"] = {"application/json": {"schema": by_slot[(i, status)]}}
                if status in e.alt_media:
                    entry["content"][e.alt_media[status]] = {"schema": by_slot[(i, status)]}
            op["responses"][str(status)] = entry
        op.update(e.extra)
        paths.setdefault(e.path, {})[e.method.lower()] = op
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Rallypoint API",
            "version": version,
            "description": "Native JSON API of a Rallypoint server. Reads are filtered by the caller's read groups; "
            "writes carry the caller's write groups. Anonymous callers (plain HTTP on loopback) act as __ANON__.",
        },
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": _SECURITY_SCHEMES},
    }
    if servers:
        doc["servers"] = [{"url": url} for url in servers]
    return doc


def docs_page(endpoints: Sequence[Endpoint], schema_url: str) -> str:
    """A self-contained HTML index of the operations, linking the schema (no external assets)."""
    rows = "\n".join(
        f"<tr><td><code>{html.escape(e.method)}</code></td><td><code>{html.escape(e.path)}</code></td>"
        f"<td>{html.escape(e.summary)}</td></tr>"
        for e in endpoints
    )
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Rallypoint API</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{padding:.2em .8em;border-bottom:1px solid #ddd}</style>"
        "</head><body><h1>Rallypoint API</h1>"
        f"<p>OpenAPI 3.1 schema: <a href=\"{html.escape(schema_url)}\">{html.escape(schema_url)}</a></p>"
        "<p>Authenticate with <code>POST /api/auth/token</code> (HTTP Basic or a client certificate), then send "
        "<code>Authorization: Bearer &lt;token&gt;</code>.</p>"
        f"<table><thead><tr><th>Method</th><th>Path</th><th>What</th></tr></thead><tbody>{rows}</tbody></table>"
        "</body></html>"
    )
