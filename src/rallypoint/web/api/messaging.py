"""Writes into the picture: GeoChat messages and emergencies (raise, cancel) from API callers."""

from __future__ import annotations

import logging
import uuid
from xml.sax.saxutils import escape, quoteattr

from starlette.requests import Request
from starlette.responses import Response

from rallypoint.delivery.dispatcher import resolve
from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import Point
from rallypoint.model.cot_type import ALL_CHAT_ROOMS, EMERGENCY_CANCEL
from rallypoint.protocol.timefmt import format_time
from rallypoint.protocol.xml_codec import make_event
from rallypoint.routing.directory import can_reach
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience
from rallypoint.services.emergency import EmergencyService
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.common import ApiError, Endpoint, Param, check_only, json_response, read_body, xml_safe
from rallypoint.web.api.schemas import (
    CancelResult,
    ChatRequest,
    ChatResult,
    EmergencyInfo,
    EmergencyRequest,
    ErrorBody,
    Position,
)
from rallypoint.web.context import RequestIdentity, WebContext
from rallypoint.web.emergency_acks import AckResult

log = logging.getLogger(__name__)

CHAT_STALE_MS = 86_400_000
# The emergency service re-sends an active alert with a fresh stale time; this covers the first minute.
EMERGENCY_STALE_MS = 60_000
# The CoT type ATAK sends for each kind of alert it offers.
EMERGENCY_KINDS = {"911 Alert": "b-a-o-tbl", "Ring The Bell": "b-a-o-pan", "Geo-fence Breached": "b-a-g",
                   "In Contact": "b-a-o-opn"}
SENDER_PREFIX = "rallypoint-api-"
_NOWHERE = Point(0.0, 0.0, 0.0, 9999999.0, 9999999.0)


def sender_uid(principal: str) -> str:
    """The uid API chat messages of ``principal`` are sent from."""
    return f"{SENDER_PREFIX}{principal}"


class MessagingApi:
    """``POST /api/chat``, ``GET /api/emergencies``, ``POST /api/emergencies/{uid}/cancel``."""

    def __init__(self, ctx: WebContext, auth: ApiAuth, emergencies: EmergencyService) -> None:
        self._ctx = ctx
        self._auth = auth
        self._emergencies = emergencies

    def send_chat(self, identity: RequestIdentity, body: ChatRequest) -> ChatResult:
        """Build the GeoChat event for ``body`` and inject it as the caller; 404 if the recipient is unreachable."""
        principal = identity.principal
        assert principal is not None
        targets = [v for v in (body.to_uid, body.to_callsign, body.room) if v is not None]
        if len(targets) != 1:
            raise ApiError(422, "invalid", "give exactly one of to_uid, to_callsign or room")
        for name, value in (("text", body.text), ("to_uid", body.to_uid), ("to_callsign", body.to_callsign),
                            ("room", body.room)):
            xml_safe(name, value)
        me = sender_uid(principal)
        directory = self._ctx.directory
        marti = ""
        if body.room is not None:
            room = chat_id = body.room
            # Named rooms go to the caller's groups like team chat; "All Chat Rooms" is the default room.
            parent = "RootContactGroup" if room == ALL_CHAT_ROOMS else "TeamGroups"
            members = f"uid0={quoteattr(me)} uid1={quoteattr(room)}"
        else:
            sub = directory.by_uid(body.to_uid) if body.to_uid is not None else None
            if body.to_callsign is not None:
                sub = directory.by_callsign(body.to_callsign)
            # Unknown and unreachable look the same: the answer must not reveal other groups' clients.
            if sub is None or not can_reach(identity.write_groups, sub.read_groups):
                raise ApiError(404, "recipient_unreachable", "no connected recipient you can reach by that name")
            to_uid = body.to_uid or directory.uid_of(sub.id) or body.to_callsign or ""
            room = body.to_callsign or directory.callsign_of(sub.id) or to_uid
            chat_id, parent = to_uid, "RootContactGroup"
            members = f"uid0={quoteattr(me)} uid1={quoteattr(to_uid)}"
            marti = f"<marti><dest uid={quoteattr(to_uid)}/></marti>"
        now = self._ctx.clock.now_ms()
        message_id = str(uuid.uuid4())
        detail = (
            f"<__chat parent={quoteattr(parent)} groupOwner=\"false\" messageId={quoteattr(message_id)} "
            f"chatroom={quoteattr(room)} id={quoteattr(chat_id)} senderCallsign={quoteattr(principal)}>"
            f"<chatgrp {members} id={quoteattr(chat_id)}/></__chat>"
            f"<link uid={quoteattr(me)} type=\"a-f-G-U-C\" relation=\"p-p\"/>"
            f"<remarks source={quoteattr('Rallypoint.API.' + me)} time={quoteattr(format_time(now))}>"
            f"{escape(body.text)}</remarks>{marti}"
        )
        try:
            event = make_event(
                uid=f"GeoChat.{me}.{room}.{message_id}", type="b-t-f", how="h-g-i-g-o", time=now, start=now,
                stale=now + CHAT_STALE_MS, point=_NOWHERE, detail_xml=detail.encode(),
            )
        except RemoteProtocolError as exc:
            raise ApiError(422, "invalid", f"cannot build the message: {exc.reason}") from exc
        origin = Origin(session_id=f"api:{principal}", groups=identity.write_groups, principal=principal)
        envelope = Envelope(event, origin, now)
        audience = self._accept(envelope)
        recipients = len(resolve(self._ctx.directory, envelope, audience))
        return ChatResult(uid=event.uid, sender_uid=me, chatroom=room, recipients=recipients)

    def emergencies_for(self, identity: RequestIdentity) -> list[EmergencyInfo]:
        """Active emergencies the caller may read."""
        out = []
        for uid, envelope in list(self._emergencies.active.items()):
            if not identity.can_read(envelope.origin.groups):
                continue
            event = envelope.event
            info = event.detail.emergency
            out.append(
                EmergencyInfo(
                    uid=uid, type=event.type, callsign=event.detail.callsign,
                    kind=info.type if info is not None else None, raised_ms=envelope.received_ms,
                    position=Position(lat=event.point.lat, lon=event.point.lon, hae=event.point.hae),
                )
            )
        return sorted(out, key=lambda e: e.raised_ms)

    def raise_emergency(self, identity: RequestIdentity, body: EmergencyRequest) -> EmergencyInfo:
        """Raise an alert from the caller's API sender uid, as ATAK does (uid ``<sender>-9-1-1``)."""
        principal = identity.principal
        assert principal is not None
        callsign = body.callsign or principal
        xml_safe("callsign", callsign)
        me = sender_uid(principal)
        now = self._ctx.clock.now_ms()
        detail = (
            f"<link uid={quoteattr(me)} type=\"a-f-G-U-C\" relation=\"p-p\"/>"
            f"<contact callsign={quoteattr(callsign + '-Alert')}/>"
            f"<emergency type={quoteattr(body.kind)}>{escape(callsign)}</emergency>"
        )
        point = Point(body.lat, body.lon, body.hae, 9999999.0, 9999999.0)
        try:
            event = make_event(
                uid=f"{me}-9-1-1", type=EMERGENCY_KINDS[body.kind], how="h-e", time=now, start=now,
                stale=now + EMERGENCY_STALE_MS, point=point, detail_xml=detail.encode(),
            )
        except RemoteProtocolError as exc:
            raise ApiError(422, "invalid", f"cannot build the alert: {exc.reason}") from exc
        origin = Origin(session_id=f"api:{principal}", groups=identity.write_groups, principal=principal)
        self._accept(Envelope(event, origin, now))
        self._ctx.auditor.record(principal, "emergency.raise", event.uid, {"via": "api", "kind": body.kind})
        return EmergencyInfo(uid=event.uid, type=event.type, callsign=callsign + "-Alert", kind=body.kind,
                             raised_ms=now, position=Position(lat=body.lat, lon=body.lon, hae=body.hae))

    def cancel(self, identity: RequestIdentity, uid: str) -> CancelResult:
        """Broadcast the cancel of an active emergency to the audience that received it."""
        envelope = self._emergencies.active.get(uid)
        if envelope is None or not identity.can_read(envelope.origin.groups):
            raise ApiError(404, "not_found", "no active emergency with that uid")
        original = envelope.event
        now = self._ctx.clock.now_ms()
        link = original.detail.link_uid or uid
        callsign = original.detail.callsign or ""
        detail = (
            f"<link uid={quoteattr(link)} type=\"a-f-G-U-C\" relation=\"p-p\"/>"
            f"<emergency cancel=\"true\">{escape(callsign)}</emergency>"
        )
        event = make_event(
            uid=uid, type=EMERGENCY_CANCEL, how="h-e", time=now, start=now, stale=now + 60_000,
            point=original.point, detail_xml=detail.encode(),
        )
        # The cancel must reach everyone who got the alert, whatever groups the approver writes.
        origin = Origin(session_id=f"api:{identity.principal}", groups=envelope.origin.groups,
                        principal=identity.principal)
        self._accept(Envelope(event, origin, now))
        self._emergencies.active.pop(uid, None)
        self._ctx.auditor.record(identity.principal or "-", "emergency.cancel", uid, {"via": "api"})
        return CancelResult(uid=uid, cancelled=True)

    def acknowledge(self, identity: RequestIdentity, uid: str) -> AckResult:
        """Record that the caller saw an active emergency (audited once per caller and alert)."""
        envelope = self._emergencies.active.get(uid)
        principal = identity.principal
        assert principal is not None
        if envelope is None or not identity.can_read(envelope.origin.groups):
            raise ApiError(404, "not_found", "no active emergency with that uid")
        acks = self._ctx.emergency_acks
        if acks.acknowledge(uid, principal, self._ctx.clock.now_ms()):
            self._ctx.auditor.record(principal, "emergency.ack", uid, {"via": "api"})
        return AckResult(uid=uid, acks=acks.of(uid))

    def _accept(self, envelope: Envelope) -> Audience:
        try:
            return self._ctx.ingest.accept(envelope)
        except RemoteProtocolError as exc:
            raise ApiError(403, "forbidden", exc.reason) from exc

    def endpoints(self) -> list[Endpoint]:
        """The route table of this module."""
        auth = self._auth
        limit = self._ctx.settings.max_http_body_bytes

        async def chat(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.principal(request)
            body = await read_body(request, ChatRequest, limit)
            return json_response(self.send_chat(identity, body), status=201)

        async def emergencies(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.caller(request)
            return json_response(self.emergencies_for(identity))

        async def raise_emergency(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.principal(request)
            body = await read_body(request, EmergencyRequest, limit)
            return json_response(self.raise_emergency(identity, body), status=201)

        async def cancel(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.with_role(request, "approver", "admin")
            return json_response(self.cancel(identity, request.path_params["uid"]))

        async def acknowledge(request: Request) -> Response:
            check_only(request, frozenset())
            identity = await auth.principal(request)
            return json_response(self.acknowledge(identity, request.path_params["uid"]))

        errors = {401: ("Not authenticated", ErrorBody), 403: ("Refused", ErrorBody)}
        return [
            Endpoint("POST", "/api/chat", chat, "Send a GeoChat message as the caller", "chat",
                     {201: ("Sent", ChatResult), 400: ("Malformed body", ErrorBody),
                      404: ("Recipient unreachable", ErrorBody), 413: ("Body too large", ErrorBody),
                      415: ("Not JSON", ErrorBody), 422: ("Invalid body", ErrorBody), **errors},
                     body=ChatRequest, operation_id="sendChat"),
            Endpoint("GET", "/api/emergencies", emergencies, "Active emergencies the caller can read", "emergencies",
                     {200: ("Emergencies", list[EmergencyInfo]), 400: ("Bad query", ErrorBody), **errors},
                     operation_id="listEmergencies"),
            Endpoint("POST", "/api/emergencies", raise_emergency, "Raise an emergency alert as the caller",
                     "emergencies", {201: ("Raised", EmergencyInfo), 400: ("Malformed body", ErrorBody),
                                     413: ("Body too large", ErrorBody), 415: ("Not JSON", ErrorBody),
                                     422: ("Invalid body", ErrorBody), **errors},
                     body=EmergencyRequest, operation_id="raiseEmergency"),
            Endpoint("POST", "/api/emergencies/{uid}/cancel", cancel, "Cancel an emergency (approver or admin)",
                     "emergencies", {200: ("Cancelled", CancelResult), 400: ("Bad query", ErrorBody),
                                     404: ("No such active emergency", ErrorBody), **errors},
                     params=(Param("uid", "path", {"type": "string"}, "emergency uid", required=True),),
                     operation_id="cancelEmergency"),
            Endpoint("POST", "/api/emergencies/{uid}/ack", acknowledge, "Acknowledge an emergency (as the caller)",
                     "emergencies", {200: ("Acknowledged", AckResult), 400: ("Bad query", ErrorBody),
                                     404: ("No such active emergency", ErrorBody), **errors},
                     params=(Param("uid", "path", {"type": "string"}, "emergency uid", required=True),),
                     operation_id="acknowledgeEmergency"),
        ]
