"""``/api/packages`` writes and content: upload, download, delete.

Uploads go through the same :class:`DataPackageService` and body reader as ``/Marti/sync/upload``,
so they meet the same limits and zip-safety checks; only the answers differ (JSON here).
A package the caller cannot read answers 404 on every operation, exactly like a missing one.
"""

from __future__ import annotations

import logging

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response

from rallypoint.errors import LimitExceeded, RemoteProtocolError
from rallypoint.services.datapackages import TOOLS, DataPackageService, PackageRejected, Upload, clean_keywords
from rallypoint.services.datapackages import sanitize_filename as safe_name
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.catalog import package_info
from rallypoint.web.api.common import BINARY, ApiError, Endpoint, Media, Param, check_only, json_response, parse_text
from rallypoint.web.api.schemas import Deleted, ErrorBody, PackageUploaded
from rallypoint.web.context import RequestIdentity, WebContext
from rallypoint.web.marti.sync import MULTIPART_OVERHEAD, receive_upload

log = logging.getLogger(__name__)

_HASH = Param("hash", "path", {"type": "string"}, "SHA-256 of the content (64 hex digits)", required=True)
_ERRORS = {401: ("Not authenticated", ErrorBody), 403: ("Refused", ErrorBody)}
_NOT_FOUND = {404: ("Not found, or not readable by the caller", ErrorBody)}
_UNAVAILABLE = {503: ("This server runs without data packages", ErrorBody)}
_UPLOAD_BODY = Media({
    "application/octet-stream": {"type": "string", "format": "binary"},
    "multipart/form-data": {
        "type": "object", "properties": {"assetfile": {"type": "string", "format": "binary"}},
        "required": ["assetfile"],
    },
})
_UPLOAD_PARAMS = frozenset({"name", "keywords", "tool", "creator_uid", "hash"})


def _submitter(identity: RequestIdentity) -> str:
    # The name the Marti upload path records for anonymous uploads.
    return identity.principal or "anonymous"


class PackagesApi:
    """Upload, download and delete data packages as the caller."""

    def __init__(self, ctx: WebContext, auth: ApiAuth) -> None:
        self._ctx = ctx
        self._auth = auth

    def _service(self) -> DataPackageService:
        # Read at request time: the owning feature may be built after this one.
        if self._ctx.packages is None:
            raise ApiError(503, "unavailable", "data packages are not enabled")
        return self._ctx.packages

    def _rejected(self, reason: str, detail: str, status: int, identity: RequestIdentity) -> ApiError:
        self._ctx.metrics.rejected.labels(reason, "http").inc()
        log.warning("upload rejected", extra={"reason": reason, "detail": detail, "principal": identity.principal})
        return ApiError(status, reason, detail)

    async def upload(self, request: Request, identity: RequestIdentity) -> tuple[PackageUploaded, bool]:
        """Receive the body (raw, or multipart with an ``assetfile`` part) and keep it as a package."""
        service = self._service()
        tool = (parse_text(request, "tool") or "public").lower()
        if tool not in TOOLS:
            raise ApiError(400, "bad_parameter", "tool: public or private")
        limit = service.limits.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
            raise self._rejected("upload_too_large", f"limit {limit}", 413, identity)
        q = request.query_params
        with service.spool() as writer:
            try:
                _fields, part_name = await receive_upload(request, writer, limit + MULTIPART_OVERHEAD)
            except LimitExceeded as exc:
                raise self._rejected(exc.reason, exc.detail, 413, identity) from exc
            except RemoteProtocolError as exc:
                raise self._rejected(exc.reason, exc.detail, 400, identity) from exc
            except ClientDisconnect as exc:
                raise ApiError(400, "incomplete_upload", "the body ended early") from exc
            if part_name is False:
                raise self._rejected("missing_file", "no assetfile part", 400, identity)
            ctype = request.headers.get("content-type", "").split(";")[0].strip()
            mime = "application/octet-stream" if not ctype or ctype.startswith("multipart/") else ctype
            upload = Upload(
                filename=safe_name(q.get("name") or (part_name if isinstance(part_name, str) else None), "upload"),
                submitter=_submitter(identity), groups=identity.write_groups,
                creator_uid=parse_text(request, "creator_uid") or "", mime=mime,
                keywords=clean_keywords((q.get("keywords") or "").split(",")), tool=tool,
                expected_hash=parse_text(request, "hash", max_length=64),
            )
            try:
                record, created = await service.store(writer, upload)
            except PackageRejected as exc:
                raise self._rejected(exc.reason, exc.detail, exc.status, identity) from exc
        self._ctx.auditor.record(
            upload.submitter, "package.upload", record.hash,
            {"name": record.name, "size": str(record.size), "new": str(created).lower(), "via": "api"},
        )
        info = package_info(record, self._ctx.base_url(request))
        return PackageUploaded(**msgspec.structs.asdict(info), created=created), created

    async def delete(self, identity: RequestIdentity, digest: str) -> Deleted:
        """Remove a package the caller submitted (any readable one for admins)."""
        try:
            record = await self._service().delete(
                digest, read_groups=identity.read_groups, principal=identity.principal,
                admin=identity.role == "admin",
            )
        except PackageRejected as exc:
            raise ApiError(exc.status, exc.reason, exc.detail) from exc
        if record is None:
            raise ApiError(404, "not_found", "no such package")
        self._ctx.auditor.record(_submitter(identity), "package.delete", record.hash, {"name": record.name})
        return Deleted(id=record.hash, deleted=True)

    def endpoints(self) -> list[Endpoint]:
        """The route table of this module."""
        auth = self._auth

        async def upload(request: Request) -> Response:
            check_only(request, _UPLOAD_PARAMS)
            identity = await auth.caller(request)
            info, created = await self.upload(request, identity)
            return json_response(info, status=201 if created else 200)

        async def content(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.caller(request)
            service = self._service()
            record = await service.find(request.path_params["hash"], identity.read_groups, _submitter(identity))
            path = None if record is None else service.blobs.path(record.hash)
            if record is None or path is None:
                raise ApiError(404, "not_found", "no such package")
            return FileResponse(path, media_type=record.mime, filename=safe_name(record.name, "download"),
                                content_disposition_type="attachment")

        async def delete(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.caller(request)
            return json_response(await self.delete(identity, request.path_params["hash"]))

        text = {"type": "string", "maxLength": 256}
        return [
            Endpoint(
                "POST", "/api/packages", upload,
                "Upload a data package (raw body, or multipart with an assetfile part)", "packages",
                {201: ("Stored", PackageUploaded), 200: ("Uploaded by you already (kept as it was)", PackageUploaded),
                 400: ("Bad parameter or rejected content", ErrorBody), 413: ("Too large", ErrorBody), **_ERRORS,
                 **_UNAVAILABLE},
                body=_UPLOAD_BODY,
                params=(
                    Param("name", "query", text, "file name (default: the multipart file name, else 'upload')"),
                    Param("keywords", "query", text, "comma-separated keywords"),
                    Param("tool", "query", {"type": "string", "enum": sorted(TOOLS)}, "public (default) or private"),
                    Param("creator_uid", "query", text, "uid of the device the package comes from"),
                    Param("hash", "query", {"type": "string", "maxLength": 64},
                          "expected SHA-256: the upload is refused if the content differs"),
                ),
                operation_id="uploadPackage",
            ),
            Endpoint(
                "GET", "/api/packages/{hash}/content", content, "Download a data package's content", "packages",
                {200: ("The content", BINARY), **_ERRORS, **_NOT_FOUND, **_UNAVAILABLE,
                 400: ("Bad query parameter", ErrorBody)},
                params=(_HASH,), operation_id="downloadPackage",
            ),
            Endpoint(
                "DELETE", "/api/packages/{hash}", delete, "Delete a data package (its submitter or an admin)",
                "packages",
                {200: ("Deleted", Deleted), 400: ("Bad query parameter", ErrorBody), **_ERRORS, **_NOT_FOUND,
                 **_UNAVAILABLE},
                params=(_HASH,), operation_id="deletePackage",
            ),
        ]
