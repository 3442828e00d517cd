"""Marti data package endpoints (``/Marti/sync/*``): what ATAK's mission package sender calls.

Every lookup is filtered by the caller's read groups; a package the caller cannot read answers
404, exactly like one that does not exist. Uploads stream to a spool file inside the blob store
(never into memory), are hashed by the server, checked (zip safety, manifest) and kept under
their SHA-256.

Re-uploading content that is already stored keeps one blob and answers 200 with the same URL
(TAK Server answers 403 there). The description (name, keywords, tool, submitter, groups) is
kept per uploader, so uploading bytes another group also holds shows neither group the other's
description; a caller always sees its own upload first. The download URL is built from the
request's Host (or the configured public host), never from the address the server is bound to.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from rallypoint.clock import ms_to_datetime
from rallypoint.errors import LimitExceeded, RemoteProtocolError
from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience
from rallypoint.services.datapackages import (
    DataPackageService,
    PackageRejected,
    Upload,
    clean_keywords,
    sanitize_filename,
)
from rallypoint.storage.base.packages import PackageRecord
from rallypoint.storage.files import BlobWriter
from rallypoint.web.context import RequestIdentity, WebContext
from rallypoint.web.features import Feature
from rallypoint.web.marti.sync_multipart import MultipartReader, PartData, PartEnd, PartStart, boundary_of

log = logging.getLogger(__name__)

FILE_PARTS = frozenset({"assetfile", "resource", "file"})
MAX_FIELD_BYTES = 8 * 1024
MAX_FIELDS = 32
# Room for multipart framing and small fields on top of the file itself.
MULTIPART_OVERHEAD = 1024 * 1024


# TAK Server's servlets (search, upload) answer with a charset; its REST controllers do not. node-tak
# parses only an exact ``application/json`` itself and JSON.parse()s the text of anything else, so
# the servlet answers must carry the charset as TAK Server's do.
SERVLET_JSON = "application/json;charset=UTF-8"


def metadata_json(record: PackageRecord) -> dict[str, object]:
    """A package in TAK Server's ``Metadata`` JSON shape (field names as TAK clients read them).

    TAK Server keeps every metadata field as a string (``Metadata.toJSONObject``), so numbers
    (``PrimaryKey``, ``Size``, ``EXPIRATION``) are sent as decimal strings; clients type them so.
    """
    return {
        "UID": record.uid,
        "Name": record.name,
        "Hash": record.hash,
        "PrimaryKey": str(record.id),
        "SubmissionDateTime": _iso(record.submitted_ms),
        "SubmissionUser": record.submitter,
        "CreatorUid": record.creator_uid,
        "Keywords": list(record.keywords),
        "MIMEType": record.mime,
        "Size": str(record.size),
        "Tool": record.tool,
        "EXPIRATION": "-1" if record.expiration_ms is None else str(record.expiration_ms // 1000),
        "Groups": sorted(record.groups),
    }


def _iso(ms: int) -> str:
    return ms_to_datetime(ms).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class SyncFeature:
    """Routes plus the package service they share; the service closes with the node."""

    def __init__(self, ctx: WebContext, service: DataPackageService) -> None:
        self._ctx = ctx
        self.service = service

    @property
    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/Marti/sync/missionquery", self.mission_query, methods=["GET"]),
            Route("/Marti/sync/missionupload", self.mission_upload, methods=["POST"]),
            Route("/Marti/sync/upload", self.upload, methods=["POST"]),
            Route("/Marti/sync/content", self.content, methods=["GET", "HEAD"]),
            Route("/Marti/sync/search", self.search, methods=["GET"]),
            Route("/Marti/api/sync/metadata/{hash}/tool", self.set_tool, methods=["PUT"]),
        ]

    # Nothing to observe: the ingest path does not call observe (every event would pay for the call).
    observes = False

    def observe(self, envelope: Envelope, audience: Audience) -> None:
        return None

    async def run(self) -> None:
        return None

    async def close(self) -> None:
        await self.service.close()

    # --- endpoints ----------------------------------------------------------------------------
    async def mission_query(self, request: Request) -> Response:
        who = await self._ctx.identify(request)
        if who is None:
            return _forbidden()
        record = await self.service.find(request.query_params.get("hash", ""), who.read_groups, _submitter(who))
        if record is None:
            return PlainTextResponse("not found", status_code=404)
        return PlainTextResponse(self._content_url(request, record.hash))

    async def mission_upload(self, request: Request) -> Response:
        result = await self._upload(request, mission=True)
        if isinstance(result, Response):
            return result
        return PlainTextResponse(self._content_url(request, result.hash))

    async def upload(self, request: Request) -> Response:
        result = await self._upload(request, mission=False)
        if isinstance(result, Response):
            return result
        return JSONResponse(metadata_json(result), media_type=SERVLET_JSON)

    async def content(self, request: Request) -> Response:
        who = await self._ctx.identify(request)
        if who is None:
            return _forbidden()
        record = await self.service.find(request.query_params.get("hash", ""), who.read_groups, _submitter(who))
        path = None if record is None else self.service.blobs.path(record.hash)
        if record is None or path is None:
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(
            path, media_type=record.mime, filename=sanitize_filename(record.name, "download"),
            content_disposition_type="attachment",
        )

    async def search(self, request: Request) -> Response:
        who = await self._ctx.identify(request)
        if who is None:
            return _forbidden()
        keywords = clean_keywords(request.query_params.getlist("keywords") + request.query_params.getlist("keyword"))
        tool = request.query_params.get("tool") or None
        found = await self.service.search(
            who.read_groups, _submitter(who), keyword=keywords[0] if keywords else None, tool=tool
        )
        found = [r for r in found if all(k in r.keywords for k in keywords)]
        body = {"resultCount": len(found), "results": [metadata_json(r) for r in found]}
        return JSONResponse(body, media_type=SERVLET_JSON)

    async def set_tool(self, request: Request) -> Response:
        who = await self._ctx.identify(request)
        if who is None:
            return _forbidden()
        body = await _small_body(request, 64)
        tool = (body or b"").decode("utf-8", "replace").strip().strip('"').lower()
        try:
            record = await self.service.set_tool(
                request.path_params["hash"], tool, read_groups=who.read_groups, write_groups=who.write_groups,
                submitter=_submitter(who), admin=who.role == "admin",
            )
        except PackageRejected as exc:
            return self._rejected(exc.reason, exc.detail, exc.status, who)
        if record is None:
            return PlainTextResponse("not found", status_code=404)
        self._ctx.auditor.record(_submitter(who), "package.tool", record.hash, {"tool": tool})
        return PlainTextResponse("")

    # --- upload plumbing ----------------------------------------------------------------------
    async def _upload(self, request: Request, *, mission: bool) -> PackageRecord | Response:
        who = await self._ctx.identify(request)
        if who is None:
            return _forbidden()
        limit = self.service.limits.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
            return self._rejected("upload_too_large", f"limit {limit}", 413, who)
        q = request.query_params
        with self.service.spool() as writer:
            try:
                fields, part_name = await receive_upload(request, writer, limit + MULTIPART_OVERHEAD)
            except LimitExceeded as exc:
                return self._rejected(exc.reason, exc.detail, 413, who)
            except RemoteProtocolError as exc:
                return self._rejected(exc.reason, exc.detail, 400, who)
            except ClientDisconnect:
                log.info("upload abandoned by client", extra={"principal": who.principal})
                return PlainTextResponse("incomplete upload", status_code=400)
            if part_name is False:
                return self._rejected("missing_file", "no assetfile part", 400, who)
            part_filename = part_name if isinstance(part_name, str) else None

            def param(*names: str) -> str | None:
                for name in names:
                    value = q.get(name) or fields.get(name)
                    if value:
                        return value
                return None

            default_name = "package.zip" if mission else "upload"
            keywords = clean_keywords(
                q.getlist("keywords") + q.getlist("keyword")
                + [v for k, v in fields.items() if k in ("keywords", "keyword")]
            )
            upload = Upload(
                filename=sanitize_filename(param("filename", "name") or part_filename, default_name),
                submitter=_submitter(who),
                groups=who.write_groups,
                creator_uid=param("creatorUid") or "",
                mime=param("mimetype", "mimeType") or request.headers.get("x-content-type") or _raw_type(request),
                keywords=keywords or (("missionpackage",) if mission else ()),
                tool=(param("tool") or "public").lower(),
                expected_hash=param("hash"),
                require_zip=mission,
            )
            try:
                record, created = await self.service.store(writer, upload)
            except PackageRejected as exc:
                return self._rejected(exc.reason, exc.detail, exc.status, who)
        self._ctx.auditor.record(
            upload.submitter, "package.upload", record.hash,
            {"name": record.name, "size": str(record.size), "new": str(created).lower()},
        )
        log.info("package stored", extra={"hash": record.hash, "size": record.size, "principal": who.principal})
        return record

    def _rejected(self, reason: str, detail: str, status: int, who: RequestIdentity) -> Response:
        self._ctx.metrics.rejected.labels(reason, "http").inc()
        log.warning("upload rejected", extra={"reason": reason, "detail": detail, "principal": who.principal})
        return PlainTextResponse(f"{reason}: {detail}" if detail else reason, status_code=status)

    def _content_url(self, request: Request, digest: str) -> str:
        return f"{self._ctx.base_url(request)}/Marti/sync/content?hash={digest}"


async def receive_upload(
    request: Request, writer: BlobWriter, max_body: int
) -> tuple[dict[str, str], str | bool | None]:
    """Stream the body into ``writer``; returns small form fields and the file part's filename.

    A raw (non-multipart) body is the file itself. The second value is False when a multipart
    body carried no file part.
    """
    boundary = boundary_of(request.headers.get("content-type", ""))
    total = 0
    if boundary is None:
        async for chunk in request.stream():
            total += len(chunk)
            writer.write(chunk)
        return {}, None
    reader = MultipartReader(boundary)
    fields: dict[str, str] = {}
    filename: str | bool | None = False
    target: str | None = None  # "file", a field name, or None (ignored part)
    field_buf = bytearray()
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_body:
            raise LimitExceeded("upload", limit=max_body, got=total)
        for ev in reader.feed(chunk):
            if isinstance(ev, PartStart):
                if ev.name in FILE_PARTS or ev.filename is not None:
                    if filename is not False:
                        raise RemoteProtocolError("multiple_files", "one file per upload")
                    filename, target = ev.filename, "file"
                elif len(fields) < MAX_FIELDS:
                    target = ev.name
                    field_buf.clear()
                else:
                    target = None
            elif isinstance(ev, PartData):
                if target == "file":
                    writer.write(ev.data)
                elif target is not None:
                    field_buf += ev.data
                    if len(field_buf) > MAX_FIELD_BYTES:
                        raise LimitExceeded("form_field", limit=MAX_FIELD_BYTES, got=len(field_buf))
            elif isinstance(ev, PartEnd):
                if target not in (None, "file"):
                    fields[target] = field_buf.decode("utf-8", "replace").strip()
                target = None
    if not reader.done:
        raise RemoteProtocolError("multipart_malformed", "body ended before the closing boundary")
    return fields, filename


async def _small_body(request: Request, limit: int) -> bytes | None:
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


def _raw_type(request: Request) -> str:
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    if not ctype or ctype.startswith("multipart/"):
        return "application/octet-stream"
    return ctype


def _submitter(who: RequestIdentity) -> str:
    return who.principal or "anonymous"


def _forbidden() -> Response:
    return PlainTextResponse("forbidden", status_code=403)


def build(ctx: WebContext) -> Feature:
    """The data package feature over the context's package service."""
    if ctx.packages is None:
        raise ValueError("the data package feature needs WebContext.packages")
    return SyncFeature(ctx, ctx.packages)
