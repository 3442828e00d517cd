"""``POST /api/packages/{hash}/send``: send a stored data package to a contact, the TAK way.

ATAK sends a package to a contact with a file transfer request: a ``b-f-t-r`` CoT carrying
``<fileshare>`` (the download URL, SHA-256 and size) and an ``<ackrequest>``, addressed with
``<marti><dest>`` (docs/marti.md, "Sending a data package"). This route builds that event as the
caller's API sender uid and injects it like any addressed event, so group rules apply on the way.
The receiver downloads the URL with its own credentials and may answer with a ``b-f-t-a`` ack.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from rallypoint.delivery.dispatcher import resolve
from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import Point
from rallypoint.protocol.xml_codec import make_event
from rallypoint.routing.directory import can_reach
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.storage.base.packages import PackageRecord
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.common import ApiError, Endpoint, Param, check_only, json_response, read_body, xml_safe
from rallypoint.web.api.messaging import sender_uid
from rallypoint.web.api.schemas import ErrorBody
from rallypoint.web.context import RequestIdentity, WebContext

log = logging.getLogger(__name__)

FILE_REQUEST = "b-f-t-r"
# ATAK gives its requests 10 s; a minute keeps a request from being dropped as stale in the outbox of
# a receiver that is busy, and a late request still leads to the same download.
REQUEST_STALE_MS = 60_000
_NOWHERE = Point(0.0, 0.0, 0.0, 9999999.0, 9999999.0)
Contact = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class PackageSendRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who receives the package: exactly one of ``to_uid`` or ``to_callsign`` (a connected contact)."""

    to_uid: Contact | None = None
    to_callsign: Contact | None = None


class PackageSent(msgspec.Struct, frozen=True):
    """The file transfer request sent: its uid, sender, receiver, the package and the download URL."""

    uid: str
    sender_uid: str
    to_uid: str
    to_callsign: str
    hash: str
    name: str
    url: str
    recipients: int


def fileshare_detail(record: PackageRecord, url: str, *, sender: str, callsign: str, to_uid: str,
                     ack_uid: str) -> str:
    """The ``<detail>`` of a file transfer request, as ATAK's commo library writes it."""
    stem = record.name[:-4] if record.name.lower().endswith(".zip") else record.name
    return (
        f"<fileshare filename={quoteattr(record.name)} name={quoteattr(stem)} "
        f"senderCallsign={quoteattr(callsign)} senderUid={quoteattr(sender)} senderUrl={quoteattr(url)} "
        f"sha256={quoteattr(record.hash)} sizeInBytes=\"{record.size}\"/>"
        f"<ackrequest uid={quoteattr(ack_uid)} ackrequested=\"true\" tag={quoteattr(stem)}/>"
        f"<marti><dest uid={quoteattr(to_uid)}/></marti>"
    )


class PackageSendApi:
    """Sends packages the caller can read to contacts the caller can reach and who can read them."""

    def __init__(self, ctx: WebContext, auth: ApiAuth) -> None:
        self._ctx = ctx
        self._auth = auth

    async def send(self, identity: RequestIdentity, digest: str, body: PackageSendRequest,
                   base_url: str) -> PackageSent:
        """Build and inject the ``b-f-t-r`` for ``body``'s contact; 404 for an unknown package or contact."""
        principal = identity.principal
        assert principal is not None
        if (body.to_uid is None) == (body.to_callsign is None):
            raise ApiError(422, "invalid", "give exactly one of to_uid or to_callsign")
        xml_safe("to_uid", body.to_uid)
        xml_safe("to_callsign", body.to_callsign)
        service = self._ctx.packages
        if service is None:
            raise ApiError(503, "unavailable", "data packages are not enabled")
        record = await service.find(digest, identity.read_groups, principal)
        if record is None:
            raise ApiError(404, "not_found", "no such package")
        directory = self._ctx.directory
        if body.to_uid is not None:
            sub = directory.by_uid(body.to_uid)
        else:
            sub = directory.by_callsign(body.to_callsign or "")
        # Unknown and unreachable look the same, as for chat: no hint of other groups' clients.
        if sub is None or not can_reach(identity.write_groups, sub.read_groups):
            raise ApiError(404, "recipient_unreachable", "no connected recipient you can reach by that name")
        if record.groups.isdisjoint(sub.read_groups):
            raise ApiError(409, "recipient_cannot_read",
                           "the recipient reads none of the package's groups and could not download it")
        to_uid = directory.uid_of(sub.id) or body.to_uid or ""
        to_callsign = directory.callsign_of(sub.id) or body.to_callsign or ""
        me = sender_uid(principal)
        url = f"{base_url}/Marti/sync/content?hash={quote(record.hash)}"
        now = self._ctx.clock.now_ms()
        detail = fileshare_detail(record, url, sender=me, callsign=principal, to_uid=to_uid,
                                  ack_uid=str(uuid.uuid4()))
        try:
            event = make_event(uid=str(uuid.uuid4()), type=FILE_REQUEST, how="h-e", time=now, start=now,
                               stale=now + REQUEST_STALE_MS, point=_NOWHERE, detail_xml=detail.encode())
        except RemoteProtocolError as exc:
            raise ApiError(422, "invalid", f"cannot build the request: {exc.reason}") from exc
        origin = Origin(session_id=f"api:{principal}", groups=identity.write_groups, principal=principal)
        envelope = Envelope(event, origin, now)
        try:
            audience = self._ctx.ingest.accept(envelope)
        except RemoteProtocolError as exc:
            raise ApiError(403, "forbidden", exc.reason) from exc
        recipients = len(resolve(directory, envelope, audience))
        self._ctx.auditor.record(principal, "package.send", record.hash,
                                 {"to": to_uid, "name": record.name, "via": "api"})
        log.info("package sent", extra={"principal": principal, "hash": record.hash, "to": to_uid})
        return PackageSent(uid=event.uid, sender_uid=me, to_uid=to_uid, to_callsign=to_callsign, hash=record.hash,
                           name=record.name, url=url, recipients=recipients)

    def endpoints(self) -> list[Endpoint]:
        """The route table of this module."""
        limit = self._ctx.settings.max_http_body_bytes

        async def send(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await self._auth.principal(request)
            body = await read_body(request, PackageSendRequest, limit)
            sent = await self.send(identity, request.path_params["hash"], body, self._ctx.base_url(request))
            return json_response(sent, status=201)

        return [
            Endpoint(
                "POST", "/api/packages/{hash}/send", send,
                "Send a data package to a connected contact (a b-f-t-r file transfer request)", "packages",
                {201: ("Sent", PackageSent), 400: ("Malformed body or bad query", ErrorBody),
                 401: ("Not authenticated", ErrorBody), 403: ("Refused", ErrorBody),
                 404: ("No such package, or no reachable recipient by that name", ErrorBody),
                 409: ("The recipient could not download the package", ErrorBody),
                 413: ("Body too large", ErrorBody), 415: ("Not JSON", ErrorBody),
                 422: ("Invalid body", ErrorBody), 503: ("This server runs without data packages", ErrorBody)},
                body=PackageSendRequest,
                params=(Param("hash", "path", {"type": "string"}, "SHA-256 of the content (64 hex digits)",
                              required=True),),
                operation_id="sendPackage",
            ),
        ]
