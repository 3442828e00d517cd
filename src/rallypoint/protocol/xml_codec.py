"""CoT XML <-> :class:`CotEvent`.

Decoding is hardened (see :mod:`rallypoint.protocol.xmlsafe`) and validates once at the edge.
Encoding forwards the sender's bytes whenever nothing has to change, and otherwise builds the
XML by string concatenation, which is several times cheaper than building a tree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from lxml import etree

from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent, Detail, Point
from rallypoint.protocol.detail import build_detail
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.timefmt import format_time, parse_time
from rallypoint.protocol.validate import (
    check_exercise,
    check_how,
    check_point,
    check_type,
    check_uid,
    parse_number,
)
from rallypoint.protocol.xml_template import ShapeCache
from rallypoint.protocol.xmlsafe import (
    new_parser,
    parse_document,
    parse_fragment,
    reject_markup_declarations,
    strip_declaration,
)

_NEEDS_ESCAPE = re.compile(r'[&<>"\n\r\t]')
# Bound on the decoder's cache of validated type/how pairs (real traffic uses a few dozen).
_MAX_CODES = 256
_EVENT_OPEN = b"<event"
_EVENT_OPEN_LEN = len(_EVENT_OPEN)
_GT = ord(">")
_FINITE = math.isfinite


def parse_event(data: bytes, limits: Limits) -> CotEvent:
    """Decode and validate one ``<event>`` document (an XML declaration in front is allowed).

    A missing ``how`` reads as ``h-g-i-g-o``; missing ``hae``/``ce``/``le`` read as 9999999
    (unknown). ``<point>`` and ``<detail>`` may come in any order. ``raw`` is the ``<event>``
    element's bytes exactly as received. Raises ``RemoteProtocolError`` (``LimitExceeded`` for size).
    For a stream of events, :class:`XmlDecoder` does the same work more cheaply.
    """
    return _decode(data, limits, new_parser(), None, None)


class XmlDecoder:
    """Decodes event after event exactly like :func:`parse_event`, with less work per event.

    It keeps one hardened parser, a small bounded cache of already validated ``type``/``how``
    pairs and the shapes of recent events (:mod:`rallypoint.protocol.xml_template`): an event
    with the markup of an earlier one is read without parsing. lxml parsers must not be used
    from two threads at once: keep one decoder per connection (or per thread), never share one.
    """

    __slots__ = ("_codes", "_limits", "_parser", "_shapes")

    def __init__(self, limits: Limits, *, shapes: bool = True) -> None:
        self._limits = limits
        self._parser = new_parser()
        # Valid (type, how) pairs seen lately, as sent -> as checked; a peer sending endless
        # distinct codes only makes it start over.
        self._codes: dict[tuple[str | None, str | None], tuple[str, str]] = {}
        self._shapes = ShapeCache() if shapes else None

    @property
    def limits(self) -> Limits:
        """The limits this decoder enforces."""
        return self._limits

    @property
    def shape_hits(self) -> int:
        """Events decoded through a learned shape, without parsing."""
        return self._shapes.hits if self._shapes is not None else 0

    def decode(self, data: bytes) -> CotEvent:
        """Decode one ``<event>`` document; same result and same errors as :func:`parse_event`."""
        return _decode(data, self._limits, self._parser, self._codes, self._shapes)


def _decode(
    data: bytes,
    limits: Limits,
    parser: etree.XMLParser,
    codes: dict[tuple[str | None, str | None], tuple[str, str]] | None,
    shapes: ShapeCache | None,
) -> CotEvent:
    # A stream's frame is the event alone: nothing around it for strip_declaration to take away.
    framed = data[:_EVENT_OPEN_LEN] == _EVENT_OPEN and data[-1] == _GT
    body = data if framed else strip_declaration(data)
    reject_markup_declarations(body)
    if not framed and not body.startswith(_EVENT_OPEN):
        raise RemoteProtocolError("not_event", repr(body[:16]))
    if shapes is not None and len(body) <= limits.max_event_bytes:
        known = shapes.match(body)
        if known is not None:
            root_attrs, point_attrs, detail, previous, times, point_texts = known
            if previous is None:
                assert root_attrs is not None and point_attrs is not None
                event = _event(root_attrs.get, point_attrs.get, detail, body, limits, codes)
            else:
                event = _event_since(previous, times, point_texts, detail, body)
            shapes.accepted(event)
            return event
    root = parse_document(body, limits, parser)
    if root.tag != "event":
        raise RemoteProtocolError("not_event", str(root.tag)[:32])
    point_el = detail_el = None
    for child in root:
        tag = child.tag
        if tag == "point":
            if point_el is None:
                point_el = child
        elif tag == "detail" and detail_el is None:
            detail_el = child
    # build_detail may remove <marti> from the tree: learn the shape first (it never keeps one).
    if shapes is not None:
        shapes.learn(body, root)
    event = _event(
        root.get,
        point_el.get if point_el is not None else None,
        None if point_el is None else build_detail(detail_el, body),
        body,
        limits,
        codes,
    )
    return event


def _event(
    get: Callable[[str], str | None],
    point_get: Callable[[str], str | None] | None,
    detail: Detail | None,
    body: bytes,
    limits: Limits,
    codes: dict[tuple[str | None, str | None], tuple[str, str]] | None,
) -> CotEvent:
    """The checked event from the attributes of ``<event>`` and ``<point>``; checks in a fixed order."""
    uid = check_uid(get("uid"), limits)
    cot_type = get("type")
    how = get("how")
    # type and how are checked as a pair: a string valid as one need not be valid as the other.
    checked = codes.get((cot_type, how)) if codes is not None else None
    if checked is None:
        checked = check_type(cot_type, limits), check_how(how, limits)
        if codes is not None:
            if len(codes) >= _MAX_CODES:
                codes.clear()
            codes[cot_type, how] = checked
    cot_type, how = checked
    time_ms, start_ms, stale_ms = _times(get("time"), get("start"), get("stale"))
    if point_get is None or detail is None:
        raise RemoteProtocolError("bad_point", "missing <point>")
    opex = get("opex")
    check_exercise(opex, detail)
    return CotEvent(
        uid=uid,
        type=cot_type,
        how=how,
        time=time_ms,
        start=start_ms,
        stale=stale_ms,
        point=_point(point_get),
        detail=detail,
        access=get("access"),
        qos=get("qos"),
        opex=opex,
        raw=body,
    )


def _event_since(
    previous: CotEvent,
    times: tuple[str, str, str] | None,
    point_texts: tuple[str, str, str, str, str] | None,
    detail: Detail,
    body: bytes,
) -> CotEvent:
    """The event that differs from ``previous`` (same shape, checked) at most in its times, point and detail.

    Everything else of ``<event>`` is byte for byte ``previous``'s, so it passed the same checks;
    what changed is checked here in :func:`_event`'s order (times, exercise marking, point).
    """
    if times is None:
        time_ms, start_ms, stale_ms = previous.time, previous.start, previous.stale
    else:
        time_ms, start_ms, stale_ms = _times(*times)
    if detail is not previous.detail:
        check_exercise(previous.opex, detail)
    point = previous.point if point_texts is None else _point_of(*point_texts)
    return CotEvent(
        previous.uid, previous.type, previous.how, time_ms, start_ms, stale_ms, point, detail, previous.access,
        previous.qos, previous.opex, body,
    )  # fmt: skip


def encode_event(event: CotEvent) -> bytes:
    """The XML bytes of ``event``: ``raw`` unchanged when present and there is no ``<marti>`` to strip.

    Otherwise the event is rebuilt from its fields (``<marti>`` is never forwarded); attributes
    of ``<event>``/``<point>`` that the model does not carry are not reproduced then.
    """
    if event.raw is not None and not event.detail.has_marti:
        return event.raw
    parts = [
        '<event version="2.0" uid="',
        _esc(event.uid),
        '" type="',
        _esc(event.type),
        '" how="',
        _esc(event.how),
        '" time="',
        format_time(event.time),
        '" start="',
        format_time(event.start),
        '" stale="',
        format_time(event.stale),
    ]
    if event.access is not None:
        parts += ['" access="', _esc(event.access)]
    if event.qos is not None:
        parts += ['" qos="', _esc(event.qos)]
    if event.opex is not None:
        parts += ['" opex="', _esc(event.opex)]
    p = event.point
    parts.append(f'"><point lat="{p.lat!r}" lon="{p.lon!r}" hae="{p.hae!r}" ce="{p.ce!r}" le="{p.le!r}"/>')
    head = "".join(parts).encode()
    xml = event.detail.xml
    if xml:
        return b"".join((head, b"<detail>", xml, b"</detail></event>"))
    return head + b"<detail/></event>"


def make_event(
    *,
    uid: str,
    type: str,
    how: str,
    time: int,
    start: int,
    stale: int,
    point: Point,
    detail_xml: bytes = b"",
    access: str | None = None,
    limits: Limits | None = None,
) -> CotEvent:
    """Build an event from parts, exactly as if it had been received as XML.

    ``detail_xml`` is the content of ``<detail>`` without the wrapper; it is parsed so the views
    are filled. The result carries ``raw`` (its own XML encoding) unless it has ``<marti>``.
    Invalid parts raise ``RemoteProtocolError`` like received data would.
    """
    lim = limits if limits is not None else Limits()
    detail_el = parse_fragment(detail_xml, lim) if detail_xml.strip() else None
    event = CotEvent(
        uid=check_uid(uid, lim),
        type=check_type(type, lim),
        how=check_how(how, lim),
        time=time,
        start=start,
        stale=stale,
        point=check_point(point.lat, point.lon, point.hae, point.ce, point.le),
        detail=build_detail(detail_el),
        access=access,
    )
    if event.detail.has_marti:
        return event
    raw = encode_event(event)
    return CotEvent(
        uid=event.uid,
        type=event.type,
        how=event.how,
        time=event.time,
        start=event.start,
        stale=event.stale,
        point=event.point,
        detail=event.detail,
        access=event.access,
        raw=raw,
    )


def _times(time_text: str | None, start_text: str | None, stale_text: str | None) -> tuple[int, int, int]:
    """Epoch ms of an event's time, start and stale, checked in that order."""
    time_ms = _time(time_text, "time")
    # Senders usually write the same instant for time and start: parse it once.
    start_ms = time_ms if start_text == time_text else _time(start_text, "start")
    return time_ms, start_ms, _time(stale_text, "stale")


def _time(text: str | None, name: str) -> int:
    if text is None:
        raise RemoteProtocolError("bad_time", f"missing {name}")
    return parse_time(text)


def _point(get: Callable[[str], Any]) -> Point:
    return _point_of(get("lat"), get("lon"), get("hae"), get("ce"), get("le"))


def _point_of(lat_text: Any, lon_text: Any, hae_text: Any, ce_text: Any, le_text: Any) -> Point:
    # Any: a missing attribute (None) makes float() raise TypeError, handled like a bad number.
    try:
        lat, lon = float(lat_text), float(lon_text)
        hae, ce, le = float(hae_text), float(ce_text), float(le_text)
    except (TypeError, ValueError):
        pass  # missing or malformed: the checks below default or name the culprit
    else:
        # Comparisons are false for NaN and the range tests exclude infinities; anything
        # unusual goes through check_point for its exact error.
        if -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0 and _FINITE(hae) and _FINITE(ce) and _FINITE(le):
            return Point(lat, lon, hae, ce, le)
    return check_point(
        parse_number(lat_text, "lat", required=True),
        parse_number(lon_text, "lon", required=True),
        parse_number(hae_text, "hae", required=False),
        parse_number(ce_text, "ce", required=False),
        parse_number(le_text, "le", required=False),
    )


def _esc(value: str) -> str:
    if _NEEDS_ESCAPE.search(value) is None:
        return value
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
        .replace("\t", "&#9;")
    )
