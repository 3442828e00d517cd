"""A learned event shape: the markup of one event cut into pieces, and what the decoder needs of it.

:mod:`rallypoint.protocol.xml_template` explains the method and reads events through shapes;
this module learns a shape from an event the hardened parser accepted (:func:`learn_shape`) and
refuses events a shape never covers (:func:`templatable`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from operator import itemgetter

import msgspec
from lxml import etree

from rallypoint.model.cot import CotEvent, Detail
from rallypoint.model.exercise import EXERCISE_TAG
from rallypoint.protocol.detail import detail_from_views, inner_from_source

_NAME = rb"[A-Za-z_][A-Za-z0-9_.\-]*"
_WS = rb"[ \t\r\n]"
# One piece (the bytes after a "<"): a start tag whose attributes all use the same quote and
# whose values need no normalization, or an end tag, then text without that quote. Per quote.
_PIECES = {
    quote: (
        re.compile(
            rb"%s(?:%s+%s%s*=%s*%s[^%s<&\t\n\r]*%s)*%s*/?>[^%s]*"
            % (_NAME, _WS, _NAME, _WS, _WS, quote, quote, quote, _WS, quote)
        ),
        re.compile(rb"/%s%s*>[^%s]*" % (_NAME, _WS, quote)),
    )
    for quote in (b'"', b"'")
}
# The views build_detail fills from the first child of each of these tags.
_VIEW_TAGS = frozenset({"contact", "__group", "__chat", "emergency", "status", "track", "takv", EXERCISE_TAG})
_TIMES = ("time", "start", "stale")
_POINT = ("lat", "lon", "hae", "ce", "le")
DETAIL_OPEN = b"<detail>"
DETAIL_CLOSE = b"</detail>"


class Shape(msgspec.Struct, gc=False):
    """A learned event shape (the method: :mod:`rallypoint.protocol.xml_template`)."""

    pieces: list[bytes]
    quote: bytes  # the attribute quote of the whole event
    quote_text: str
    # Per piece: the number of parts cut at the quote, the parts outside values (the last one
    # excepted), the tag end that starts the last part, and the text after it.
    layout: list[tuple[int, list[bytes], bytes, bytes]]
    # Attribute names in document order per piece, and their values as parsed.
    names: list[tuple[str, ...]]
    attrs: list[dict[str, str]]
    attrs_values: list[list[str]]  # the same values as lists, in document order
    point: int
    detail_first: int  # first piece inside <detail>, 0 without a detail
    detail_end: int  # the piece of </detail>
    views: dict[str, int]  # view tag -> piece of its first element
    link: int  # piece of the first <link> with a uid, -1 if none
    chatgrp: int
    view_pieces: frozenset[int]  # all of the above
    detail: Detail
    # Where time, start and stale sit among the values of <event> and what the others are picked
    # by (None when one of the three is missing: <event> is then always read in full); where
    # lat, lon, hae, ce and le sit among the values of <point> (None unless all five are there).
    times_at: tuple[int, int, int] | None
    others: Callable[[list[str]], object]
    point_at: tuple[int, int, int, int, int] | None
    score: int = 0
    # The last event read through the shape (the template until one is): its pieces, its values
    # that differ from the template's (piece -> values in document order), its detail, and the
    # event the decoder made of it (None until the decoder accepted one).
    last_pieces: list[bytes] = []
    last_changed: dict[int, list[str]] = {}
    last_detail: Detail = Detail()
    last_event: CotEvent | None = None


def templatable(body: bytes) -> bool:
    """False when ``body`` holds something a template never covers (cheap byte searches)."""
    return not (
        b"!" in body  # comments, CDATA; also where the detail is serialized rather than sliced
        or b"&" in body
        or b"]]>" in body
        or b"xmlns" in body
        or b"\xef\xbf" in body  # U+FFC0..U+FFFF, among them the non-characters U+FFFE/U+FFFF
        or b"<marti" in body
    )


def learn_shape(pieces: list[bytes], body: bytes, root: etree._Element, quote: bytes) -> Shape | None:
    """The shape of a parsed event with attributes in ``quote``, or ``None`` when it does not qualify."""
    start_piece, end_piece = _PIECES[quote]
    elements = iter(root.iter())
    index: dict[etree._Element, int] = {}
    layout: list[tuple[int, list[bytes], bytes, bytes]] = [(1, [], b"", pieces[0])]
    names: list[tuple[str, ...]] = [()]
    attrs: list[dict[str, str]] = [{}]
    detail_end = 0
    for piece in pieces[1:]:
        parts = piece.split(quote)
        element = None
        if piece.startswith(b"/"):
            if end_piece.fullmatch(piece) is None:
                return None
            if piece.startswith(b"/detail") and piece[7:8] in b" \t\r\n>":
                detail_end = len(layout)
            keys: tuple[str, ...] = ()
            values: dict[str, str] = {}
        else:
            element = next(elements, None)
            if element is None or start_piece.fullmatch(piece) is None:
                return None
            keys = tuple(element.keys())
            values = dict(element.items())
            if len(parts) != 2 * len(keys) + 1 or [v.decode() for v in parts[1::2]] != list(values.values()):
                return None
            index[element] = len(layout)
        last = parts[-1]
        end = last.index(b">") + 1
        layout.append((len(parts), parts[0:-1:2], last[:end], last[end:]))
        names.append(keys)
        attrs.append(values)
    if next(elements, None) is not None:
        return None
    point = detail_el = None
    for child in root:
        if child.tag == "point" and point is None:
            point = child
        elif child.tag == "detail" and detail_el is None:
            detail_el = child
    if point is None:
        return None
    views: dict[str, int] = {}
    link = chatgrp = -1
    detail_first = 0
    detail = Detail()
    if detail_el is not None:
        # The detail is sliced from the bytes, never serialized: it must have children and be
        # written as a plain <detail> once.
        if len(detail_el) == 0 or inner_from_source(detail_el, body) is None:
            return None
        detail_first = index[detail_el] + 1
        if detail_end <= detail_first:
            return None
        for child in detail_el:
            tag = child.tag
            if tag == "link":
                if link < 0 and child.get("uid") is not None:
                    link = index[child]
            elif tag in _VIEW_TAGS and tag not in views:
                views[tag] = index[child]
                if tag == "__chat":
                    found = child.find("chatgrp")
                    chatgrp = index[found] if found is not None else -1
        begin = body.find(DETAIL_OPEN) + len(DETAIL_OPEN)
        detail = detail_from_views(
            {tag: attrs[i] for tag, i in views.items()},
            attrs[link] if link >= 0 else None,
            attrs[chatgrp] if chatgrp >= 0 else None,
            body[begin : body.rfind(DETAIL_CLOSE)].strip(),
        )
    root_names, point_names = names[1], names[index[point]]
    times_at = point_at = None
    if all(name in root_names for name in _TIMES):
        times_at = (root_names.index("time"), root_names.index("start"), root_names.index("stale"))
    if all(name in point_names for name in _POINT):
        lat, lon, hae, ce, le = (point_names.index(name) for name in _POINT)
        point_at = (lat, lon, hae, ce, le)
    return Shape(
        pieces=pieces, quote=quote, quote_text=quote.decode(), layout=layout, names=names, attrs=attrs,
        attrs_values=[list(values.values()) for values in attrs], point=index[point], detail_first=detail_first,
        detail_end=detail_end, views=views, link=link, chatgrp=chatgrp,
        view_pieces=frozenset((*views.values(), link, chatgrp)), detail=detail, times_at=times_at,
        others=_picker([i for i, name in enumerate(root_names) if name not in _TIMES]), point_at=point_at,
        last_pieces=pieces, last_detail=detail,
    )  # fmt: skip


def _picker(indices: list[int]) -> Callable[[list[str]], object]:
    """The values at ``indices`` of a list, picked in one C call, to compare two lists there only."""
    return itemgetter(*indices) if indices else _nothing


def _nothing(values: list[str]) -> object:
    return ()
