"""TAK Protocol v1 payloads (``TakMessage``) <-> :class:`CotEvent`.

``xmlDetail`` rules (``proto/detail.proto``), as Rallypoint applies them:

* Encoding: ``contact``, ``__group``, ``precisionlocation``, ``status``, ``takv`` and ``track``
  become typed sub-messages only when the element appears exactly once in ``<detail>``, has no
  child elements, no text, no namespace, only attributes the message can carry, every one of them
  non-empty, and the required ones present (``contact@callsign``; ``__group@name,role``;
  ``precisionlocation@geopointsrc,altsrc``; ``status@battery`` as a 32-bit unsigned integer;
  ``takv@platform,version``; ``track@speed,course`` as finite numbers). Anything else stays,
  whole, in ``xmlDetail`` (without the ``<detail>`` wrapper). So ATAK's ``contact`` carrying
  ``xmppUsername`` or ``phone`` travels as XML: nothing is dropped.
* Decoding: ``xmlDetail`` is wrapped in ``<detail>`` and parsed with the same hardening as XML
  events; each typed sub-message is rebuilt as its XML element unless ``xmlDetail`` already holds
  an element of that name (``xmlDetail`` wins). Values are validated exactly like XML input.
  Unknown protobuf fields are accepted and dropped (newer clients add fields; rejecting their
  events would cut them off), and reported in ``TakPayload.unknown_fields`` so they can be
  counted. ``raw`` is ``None`` for protobuf events.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet
from lxml import etree

from rallypoint.errors import LimitExceeded, RemoteProtocolError
from rallypoint.model.cot import CotEvent
from rallypoint.protocol.detail import build_detail
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.pb import cotevent_pb2, detail_pb2, takmessage_pb2
from rallypoint.protocol.timefmt import check_time_ms
from rallypoint.protocol.validate import check_exercise, check_how, check_point, check_text, check_type, check_uid
from rallypoint.protocol.xmlsafe import parse_fragment

_UINT32_MAX = 2**32 - 1
# Attributes each typed message can carry, and which of them it requires.
_ALLOWED: dict[str, frozenset[str]] = {
    "contact": frozenset({"callsign", "endpoint"}),
    "__group": frozenset({"name", "role"}),
    "precisionlocation": frozenset({"geopointsrc", "altsrc"}),
    "status": frozenset({"battery"}),
    "takv": frozenset({"device", "platform", "os", "version"}),
    "track": frozenset({"speed", "course"}),
}
_REQUIRED: dict[str, frozenset[str]] = {
    "contact": frozenset({"callsign"}),
    "__group": frozenset({"name", "role"}),
    "precisionlocation": frozenset({"geopointsrc", "altsrc"}),
    "status": frozenset({"battery"}),
    "takv": frozenset({"platform", "version"}),
    "track": frozenset({"speed", "course"}),
}


class TakControlInfo(msgspec.Struct, frozen=True):
    """``TakControl``: protocol versions the sender can decode (0 on the wire reads as 1)."""

    min_version: int = 1
    max_version: int = 1
    contact_uid: str | None = None


class TakPayload(msgspec.Struct, frozen=True):
    """One decoded ``TakMessage``: either part may be absent.

    ``unknown_fields``: the message carried fields this decoder does not know (they were dropped).
    """

    event: CotEvent | None = None
    control: TakControlInfo | None = None
    unknown_fields: bool = False


def decode_payload(payload: bytes, limits: Limits) -> TakPayload:
    """Decode and validate one ``TakMessage`` (without any 0xBF header)."""
    if len(payload) > limits.max_event_bytes:
        raise LimitExceeded("event", limit=limits.max_event_bytes, got=len(payload))
    message = takmessage_pb2.TakMessage()
    try:
        message.ParseFromString(payload)
    except DecodeError as exc:
        raise RemoteProtocolError("proto_malformed", str(exc)[:120]) from None
    control = None
    if message.HasField("takControl"):
        tc = message.takControl
        control = TakControlInfo(
            min_version=tc.minProtoVersion or 1,
            max_version=tc.maxProtoVersion or 1,
            contact_uid=check_text(tc.contactUid, "contactUid", limits) or None,
        )
    event = _decode_event(message.cotEvent, limits) if message.HasField("cotEvent") else None
    return TakPayload(event=event, control=control, unknown_fields=_has_unknown_fields(message))


def _has_unknown_fields(message: Message) -> bool:
    """True when ``message`` or any message inside it holds fields its schema does not define."""
    if len(UnknownFieldSet(message)):
        return True
    for name in _NESTED[message.DESCRIPTOR.full_name]:
        if message.HasField(name) and _has_unknown_fields(getattr(message, name)):
            return True
    return False


def _nested_messages(descriptor: Any, out: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Message-typed fields of ``descriptor`` and of every message below it, by message name.

    ``descriptor`` is a message ``Descriptor`` (pure-Python or upb: two unrelated stub types).
    """
    if descriptor.full_name not in out:
        # The TAK schema has no repeated message fields; if one appears, its contents go unchecked.
        fields = [f for f in descriptor.fields if f.message_type is not None and not f.is_repeated]
        out[descriptor.full_name] = tuple(f.name for f in fields)
        for f in fields:
            if f.message_type is not None:
                _nested_messages(f.message_type, out)
    return out


# Read once from the generated schema (constant): walking only present sub-messages by name is
# several times cheaper than ListFields on every decoded event.
_NESTED: dict[str, tuple[str, ...]] = _nested_messages(takmessage_pb2.TakMessage.DESCRIPTOR, {})


def encode_payload(event: CotEvent) -> bytes:
    """Serialized ``TakMessage`` carrying ``event`` (never ``<marti>``)."""
    message = takmessage_pb2.TakMessage()
    ce = message.cotEvent
    ce.type = event.type
    ce.uid = event.uid
    ce.how = event.how
    if event.access is not None:
        ce.access = event.access
    if event.qos is not None:
        ce.qos = event.qos
    if event.opex is not None:
        ce.opex = event.opex
    ce.sendTime = event.time
    ce.startTime = event.start
    ce.staleTime = event.stale
    p = event.point
    ce.lat, ce.lon, ce.hae, ce.ce, ce.le = p.lat, p.lon, p.hae, p.ce, p.le
    if event.detail.xml:
        _encode_detail(event.detail.xml, ce.detail)
    return message.SerializeToString()


def _decode_event(ce: cotevent_pb2.CotEvent, limits: Limits) -> CotEvent:
    uid = check_text(check_uid(ce.uid, limits), "uid", limits)
    point = check_point(ce.lat, ce.lon, ce.hae, ce.ce, ce.le)
    detail_el = _decode_detail(ce.detail, limits) if ce.HasField("detail") else None
    detail = build_detail(detail_el)
    opex = check_text(ce.opex, "opex", limits) or None
    check_exercise(opex, detail)
    return CotEvent(
        uid=uid,
        type=check_text(check_type(ce.type, limits), "type", limits),
        how=check_how(ce.how, limits),
        time=check_time_ms(ce.sendTime),
        start=check_time_ms(ce.startTime),
        stale=check_time_ms(ce.staleTime),
        point=point,
        detail=detail,
        access=check_text(ce.access, "access", limits) or None,
        qos=check_text(ce.qos, "qos", limits) or None,
        opex=opex,
        raw=None,
    )


def _decode_detail(detail: detail_pb2.Detail, limits: Limits) -> etree._Element:
    xml = detail.xmlDetail.encode()
    element = parse_fragment(xml, limits) if xml else etree.Element("detail")
    present = {child.tag for child in element}
    typed: list[tuple[str, list[tuple[str, str]]]] = []
    if detail.HasField("contact") and "contact" not in present:
        typed.append(
            ("contact", [("callsign", detail.contact.callsign), ("endpoint", detail.contact.endpoint)])
        )
    if detail.HasField("group") and "__group" not in present:
        typed.append(("__group", [("name", detail.group.name), ("role", detail.group.role)]))
    if detail.HasField("precisionLocation") and "precisionlocation" not in present:
        pl = detail.precisionLocation
        typed.append(("precisionlocation", [("geopointsrc", pl.geopointsrc), ("altsrc", pl.altsrc)]))
    if detail.HasField("status") and "status" not in present:
        typed.append(("status", [("battery", str(detail.status.battery))]))
    if detail.HasField("takv") and "takv" not in present:
        tv = detail.takv
        typed.append(
            (
                "takv",
                [("device", tv.device), ("platform", tv.platform), ("os", tv.os), ("version", tv.version)],
            )
        )
    if detail.HasField("track") and "track" not in present:
        typed.append(("track", [("speed", repr(detail.track.speed)), ("course", repr(detail.track.course))]))
    for tag, attributes in typed:
        child = etree.SubElement(element, tag)
        for name, value in attributes:
            if value:
                child.set(name, check_text(value, f"{tag}@{name}", limits))
    return element


def _encode_detail(xml: bytes, out: detail_pb2.Detail) -> None:
    # Our own validated XML: the limits only need to admit what was already accepted.
    element = parse_fragment(xml, Limits(max_event_bytes=len(xml) + 64, max_depth=1 << 16))
    counts: dict[object, int] = {}
    for child in element:
        counts[child.tag] = counts.get(child.tag, 0) + 1
    for child in list(element):
        tag = child.tag
        if not isinstance(tag, str) or tag not in _ALLOWED or counts[tag] != 1:
            continue
        attrs = _convertible(child, tag)
        if attrs is not None and _fill(out, tag, attrs):
            element.remove(child)
    remaining = b"".join(
        etree.tostring(child, encoding="utf-8", xml_declaration=False, with_tail=False) for child in element
    )
    if remaining:
        out.xmlDetail = remaining.decode()


def _convertible(child: etree._Element, tag: str) -> dict[str, str] | None:
    if len(child) or (child.text and child.text.strip()):
        return None
    attrs = {str(k): str(v) for k, v in child.attrib.items()}
    keys = attrs.keys()
    if not keys <= _ALLOWED[tag] or not _REQUIRED[tag] <= keys or not all(attrs.values()):
        return None
    return attrs


def _fill(out: detail_pb2.Detail, tag: str, attrs: dict[str, str]) -> bool:
    match tag:
        case "contact":
            out.contact.callsign = attrs["callsign"]
            if "endpoint" in attrs:
                out.contact.endpoint = attrs["endpoint"]
        case "__group":
            out.group.name, out.group.role = attrs["name"], attrs["role"]
        case "precisionlocation":
            out.precisionLocation.geopointsrc = attrs["geopointsrc"]
            out.precisionLocation.altsrc = attrs["altsrc"]
        case "status":
            battery = attrs["battery"]
            if not (battery.isascii() and battery.isdigit() and int(battery) <= _UINT32_MAX):
                return False
            if str(int(battery)) != battery:
                return False  # "078" would come back as "78": keep the exact text in XML
            out.status.battery = int(battery)
        case "takv":
            for name in ("device", "platform", "os", "version"):
                if name in attrs:
                    setattr(out.takv, name, attrs[name])
        case "track":
            try:
                speed, course = float(attrs["speed"]), float(attrs["course"])
            except ValueError:
                return False
            if not (math.isfinite(speed) and math.isfinite(course)):
                return False
            out.track.speed, out.track.course = speed, course
        case _:
            return False
    return True
