"""Control messages: protocol negotiation (``t-x-takp-*``) and ping/pong.

Stream compression is an opt-in extension of the negotiation (docs/protocol.md): one extra
``<RallypointCompression>`` element next to the standard ones inside ``<TakControl>``. TAK
clients look only for the elements they know (``TakProtocolSupport``, ``TakResponse``), so they
never trigger it and are not disturbed by it; a standard server ignores it in a request and
answers without it, which leaves that client on plain protobuf.
"""

from __future__ import annotations

from lxml import etree

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
# The extension element and the one compression method defined for it.
COMPRESSION_ELEMENT = "RallypointCompression"
DEFLATE = "deflate"

PONG_UID = "takPong"
PONG_STALE_MS = 20_000
NEGOTIATION_STALE_MS = 60_000
# TAK Server's announcement carries this API version alongside the protocol offer.
API_VERSION = 3

_NEGOTIATION_POINT = Point(0.0, 0.0, 0.0, 999999.0, 999999.0)
_PONG_POINT = Point(0.0, 0.0, 0.0, 9999999.0, 9999999.0)


def announcement(now_ms: int, server_uid: str, *, compression: bool = False) -> CotEvent:
    """``t-x-takp-v``: the server offers TAK protocol 1 (sent once, right after connect/auth).

    With ``compression``, the offer also lists stream compression (``deflate``).
    """
    extension = f'<{COMPRESSION_ELEMENT} methods="{DEFLATE}"/>' if compression else ""
    detail = (
        f'<TakControl><TakProtocolSupport version="{SUPPORTED_VERSION}"/>'
        f'<TakServerVersionInfo serverVersion="Rallypoint {__version__}" apiVersion="{API_VERSION}"/>'
        f"{extension}</TakControl>"
    ).encode()
    return _control(PROTOCOL_SUPPORT, server_uid, now_ms, detail)


def request(uid: str, now_ms: int, *, compression: str | None = None) -> CotEvent:
    """``t-x-takp-q`` for version 1 (``uid`` is the announcement's), optionally asking for compression."""
    extension = f'<{COMPRESSION_ELEMENT} method="{compression}"/>' if compression else ""
    detail = f'<TakControl><TakRequest version="{SUPPORTED_VERSION}"/>{extension}</TakControl>'
    return _control(PROTOCOL_REQUEST, uid, now_ms, detail.encode())


def response(uid: str, accept: bool, now_ms: int, *, compression: str | None = None) -> CotEvent:
    """``t-x-takp-r``: the answer to a client's ``t-x-takp-q`` (``uid`` is the request's).

    ``compression`` (only with ``accept``) confirms the method both directions switch to.
    """
    status = "true" if accept else "false"
    extension = f'<{COMPRESSION_ELEMENT} method="{compression}"/>' if accept and compression else ""
    detail = f'<TakControl><TakResponse status="{status}"/>{extension}</TakControl>'
    return _control(PROTOCOL_RESPONSE, uid, now_ms, detail.encode())


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
    return _version(_control_attr(event, limits, "TakRequest", "version"))


def requested_compression(event: CotEvent, limits: Limits) -> str | None:
    """The compression method a ``t-x-takp-q`` asks for (``None``: none, as standard clients do)."""
    return _control_attr(event, limits, COMPRESSION_ELEMENT, "method")


def offered_versions(event: CotEvent, limits: Limits) -> set[int]:
    """The versions a ``t-x-takp-v`` lists (one ``TakProtocolSupport`` element each)."""
    control = _control_element(event, limits)
    if control is None:
        return set()
    versions = (_version(el.get("version")) for el in control.iterfind("TakProtocolSupport"))
    return {v for v in versions if v is not None}


def offered_compression(event: CotEvent, limits: Limits) -> set[str]:
    """The compression methods a ``t-x-takp-v`` offers (empty from standard servers)."""
    methods = _control_attr(event, limits, COMPRESSION_ELEMENT, "methods") or ""
    return {m for m in methods.replace(",", " ").split() if m}


def response_status(event: CotEvent, limits: Limits) -> tuple[bool, str | None]:
    """A ``t-x-takp-r``'s status and the compression method it confirms (``None``: none)."""
    status = (_control_attr(event, limits, "TakResponse", "status") or "").strip().lower() == "true"
    return status, _control_attr(event, limits, COMPRESSION_ELEMENT, "method") if status else None


def _control_element(event: CotEvent, limits: Limits) -> etree._Element | None:
    if not event.detail.xml:
        return None
    try:
        detail = parse_fragment(event.detail.xml, limits)
    except RemoteProtocolError:
        return None
    return detail.find("TakControl")


def _control_attr(event: CotEvent, limits: Limits, element: str, attr: str) -> str | None:
    control = _control_element(event, limits)
    found = control.find(element) if control is not None else None
    value = found.get(attr) if found is not None else None
    return value.strip() if isinstance(value, str) else None


def _version(text: str | None) -> int | None:
    text = (text or "").strip()
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
