"""Server-generated control messages: protocol negotiation (``t-x-takp-*``) and ping/pong."""

from __future__ import annotations

from rallypoint import __version__
from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent, Point
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import make_event
from rallypoint.protocol.xmlsafe import parse_fragment

PING = "t-x-c-t"
PONG = "t-x-c-t-r"
PROTOCOL_SUPPORT = "t-x-takp-v"
PROTOCOL_REQUEST = "t-x-takp-q"
PROTOCOL_RESPONSE = "t-x-takp-r"
TAKP_PREFIX = "t-x-takp-"
SUPPORTED_VERSION = 1

PONG_UID = "takPong"
PONG_STALE_MS = 20_000
NEGOTIATION_STALE_MS = 60_000
# TAK Server's announcement carries this API version alongside the protocol offer.
API_VERSION = 3

_NEGOTIATION_POINT = Point(0.0, 0.0, 0.0, 999999.0, 999999.0)
_PONG_POINT = Point(0.0, 0.0, 0.0, 9999999.0, 9999999.0)


def announcement(now_ms: int, server_uid: str) -> CotEvent:
    """``t-x-takp-v``: the server offers TAK protocol 1 (sent once, right after connect/auth)."""
    detail = (
        f'<TakControl><TakProtocolSupport version="{SUPPORTED_VERSION}"/>'
        f'<TakServerVersionInfo serverVersion="Rallypoint {__version__}" apiVersion="{API_VERSION}"/>'
        "</TakControl>"
    ).encode()
    return _control(PROTOCOL_SUPPORT, server_uid, now_ms, detail)


def response(uid: str, accept: bool, now_ms: int) -> CotEvent:
    """``t-x-takp-r``: the answer to a client's ``t-x-takp-q`` (``uid`` is the request's)."""
    status = "true" if accept else "false"
    return _control(
        PROTOCOL_RESPONSE, uid, now_ms, f'<TakControl><TakResponse status="{status}"/></TakControl>'.encode()
    )


def pong(now_ms: int) -> CotEvent:
    """``t-x-c-t-r``, the reply to a client ping, shaped like TAK Server's."""
    return make_event(
        uid=PONG_UID,
        type=PONG,
        how="h-g-i-g-o",
        time=now_ms,
        start=now_ms,
        stale=now_ms + PONG_STALE_MS,
        point=_PONG_POINT,
    )


def requested_version(event: CotEvent, limits: Limits) -> int | None:
    """The version in a ``t-x-takp-q``'s ``<TakControl><TakRequest version=.../>``, if readable."""
    if not event.detail.xml:
        return None
    try:
        detail = parse_fragment(event.detail.xml, limits)
    except RemoteProtocolError:
        return None
    request = detail.find("TakControl/TakRequest")
    text = (request.get("version") or "").strip() if request is not None else ""
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        return None
    return int(text)


def _control(cot_type: str, uid: str, now_ms: int, detail: bytes) -> CotEvent:
    return make_event(
        uid=uid,
        type=cot_type,
        how="m-g",
        time=now_ms,
        start=now_ms,
        stale=now_ms + NEGOTIATION_STALE_MS,
        point=_NEGOTIATION_POINT,
        detail_xml=detail,
    )
