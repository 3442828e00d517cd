"""Decoding repeated event shapes without parsing them again.

A device sends the same shape of event over and over (its position report, its chat messages):
the same elements and attribute names in the same order, with only attribute values and text
changing. After the hardened parser has read one such event, :class:`ShapeCache` keeps its
markup as a template: the bytes cut at every ``<`` (one piece per tag, with the text that follows
it) and each piece cut at every ``"``. A later event with the same markup reads as the same
elements without being parsed, and only the values the views need are decoded.

This is exact, not a guess. A template is only learned from an event that the parser accepted
and in which every ``"`` delimits an attribute value and every ``<`` starts a tag (checked piece
by piece), so the pieces of a new event line up with the template's tags and attributes only
if its markup is the template's, byte for byte. What may differ is then provably attribute
values (no ``<``, ``"`` or ``&``, and no tab, CR or LF, which the parser would turn into spaces)
and text (no ``<`` or ``&``), both checked for characters XML forbids and for valid UTF-8. Such
an event is well-formed, has the template's structure and depth, and the parser would read
exactly these values; anything else goes to the parser, which decides as before. Events with
comments, CDATA, references, namespaces or ``<marti>`` are never templated.

A shape also remembers the last event read through it and accepted by the decoder: a piece equal
to that event's piece was checked then, so only the pieces that changed since are checked and
read again. The decoder starts from that event's checked fields (uid, type, how, times, point,
...) and reads only what changed: the times when ``<event>`` differs from the last event's in
``time``, ``start`` and ``stale`` alone (a device's next report), the point when ``<point>``
changed; any other change to ``<event>`` is read in full. When no detail element changed, the
last event's detail (its views and its bytes) is kept too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import compress
from operator import ne

import msgspec
from lxml import etree

from rallypoint.model.cot import CotEvent, Detail
from rallypoint.protocol.detail import detail_from_views
from rallypoint.protocol.xml_shape import DETAIL_CLOSE, DETAIL_OPEN, Shape, learn_shape, templatable

# Templates kept per decoder (a device sends a handful of shapes) and keys remembered as seen
# once: a shape is learned the second time it comes, so one-off events cost nothing extra.
MAX_SHAPES = 4
_MAX_SEEN = 16
_MAX_SCORE = 64
_RETRY_AFTER = 64
# What a changed attribute value must not hold: control characters (tab, CR and LF included: the
# parser normalizes them), references, "!" and "xmlns" (where the decoder serializes the detail
# instead of slicing it), the non-characters U+FFFE/U+FFFF. Text
# may hold tab, CR and LF, and must not hold "]]>". The unchanged markup passed the same tests
# when the shape was learned (templatable), so checking what changed covers the whole event.
# (Any 0xEF lead byte, U+F000..U+FFFF, goes to the parser: one byte class is much faster to
# search than alternatives.) For values the class is a bytes.translate deletion table (a value
# holding one comes out shorter): one pass in C, half the cost of a regular-expression search.
_VALUE_BAD = bytes(range(0x20)) + b"&!\xef"
_TEXT_BAD = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f&!\xef]")


# What a template match yields: ``(root, point, detail, previous, times, point_texts)``, the
# attributes of ``<event>`` and ``<point>`` and the detail. ``previous``: the last accepted event of
# the shape, when this event differs from it at most in the values of ``time``, ``start`` and
# ``stale`` (``times``: their texts, None when they are unchanged too), of ``<point>``
# (``point_texts``: lat, lon, hae, ce, le, None when unchanged) and in the detail. ``root`` and
# ``point`` are then None (not read); else ``previous`` is None. A plain tuple: a named one costs a
# Python-level constructor call per event.
Decoded = tuple[
    dict[str, str] | None,
    dict[str, str] | None,
    Detail,
    CotEvent | None,
    tuple[str, str, str] | None,
    tuple[str, str, str, str, str] | None,
]


class ShapeCache:
    """The shapes one stream's events have had lately; use from one thread only."""

    __slots__ = ("_miss", "_read", "_seen", "_shapes", "hits")

    def __init__(self) -> None:
        self.hits = 0  # events read through a shape
        # Keyed by the number of tags: a cheap first sort that a different shape rarely shares.
        self._shapes: dict[int, Shape] = {}
        self._seen: dict[int, int] = {}  # tag count -> misses to wait before learning it
        # The last event no shape matched, and its pieces, for learn().
        self._miss: tuple[bytes, list[bytes]] | None = None
        # The last match, until the decoder accepts its event: shape, pieces, values, detail.
        self._read: tuple[Shape, list[bytes], dict[int, list[str]], Detail] | None = None

    def match(self, body: bytes) -> Decoded | None:
        """``body`` read through a learned shape, or ``None`` (parse it, then call :meth:`learn`).

        After a match, call :meth:`accepted` with the event made of it if the decoder accepts it.
        """
        pieces = body.split(b"<")
        shape = self._shapes.get(len(pieces))
        read = _read(shape, pieces, body) if shape is not None else None
        if read is None:
            self._read = None
            if shape is not None:
                shape.score -= 1
            self._miss = (body, pieces)
            return None
        assert shape is not None
        decoded, changed = read
        self._read = (shape, pieces, changed, decoded[2])
        self._miss = None
        self.hits += 1
        if shape.score < _MAX_SCORE:
            shape.score += 1
        return decoded

    def accepted(self, event: CotEvent) -> None:
        """The event made of the last match passed every check: later events are read against it."""
        read = self._read
        if read is None:
            return
        self._read = None
        shape, pieces, changed, detail = read
        shape.last_pieces, shape.last_changed, shape.last_detail, shape.last_event = pieces, changed, detail, event

    def learn(self, body: bytes, root: etree._Element) -> None:
        """Remember the shape of ``body`` (just parsed into ``root``) if it is worth it and exact."""
        miss = self._miss
        self._miss = None
        if miss is None or miss[0] is not body:
            return
        pieces = miss[1]
        key = len(pieces)
        shapes = self._shapes
        current = shapes.get(key)
        if current is None:
            # Learn a shape the second time it is seen (one-off events cost nothing extra), and
            # after a shape that does not qualify wait a while before looking at it again.
            seen = self._seen
            wait = seen.get(key)
            if wait is None and len(seen) >= _MAX_SEEN:
                seen.clear()
            if wait is None or wait > 0:
                seen[key] = 0 if wait is None else wait - 1
                return
        elif current.score >= 0:
            return
        shape = (
            learn_shape(pieces, body, root, b'"') or learn_shape(pieces, body, root, b"'")
            if templatable(body)
            else None
        )
        if shape is None:
            if current is None:
                self._seen[key] = _RETRY_AFTER
            else:
                current.score = 0  # keep it rather than try again at every miss
            return
        if current is None and len(shapes) >= MAX_SHAPES:
            # Make room: drop the least used shape and age the others.
            del shapes[min(shapes, key=lambda k: shapes[k].score)]
            for other in shapes.values():
                other.score //= 2
        shapes[key] = shape


def _read(shape: Shape, pieces: list[bytes], body: bytes) -> tuple[Decoded, dict[int, list[str]]] | None:
    # The pieces that differ from the last event's (found in C: a device resends mostly the same
    # bytes); the others were checked when that event was read.
    diff = list(compress(range(len(pieces)), map(ne, pieces, shape.last_pieces)))
    known, layout, quote = shape.pieces, shape.layout, shape.quote
    first, end = shape.detail_first - 1, shape.detail_end
    changed = last_changed = shape.last_changed
    detail_dirty = False
    for i in diff:
        piece = pieces[i]
        if i in changed:
            if changed is last_changed:
                changed = dict(changed)  # the shape's own is replaced only when the event is accepted
            del changed[i]
        if first <= i < end:
            detail_dirty = True
        if piece == known[i]:
            continue
        count, head, tail, text_before = layout[i]
        parts = piece.split(quote)
        if len(parts) != count or parts[0:-1:2] != head:
            return None
        last = parts[-1]
        if not last.startswith(tail):
            return None
        text = last[len(tail) :]
        try:
            if text != text_before:
                # find() rather than "in": see xmlsafe's _BANG.
                if _TEXT_BAD.search(text) is not None or text.find(b"]]>") >= 0 or text.find(b"xmlns") >= 0:
                    return None
                text.decode()
            if count > 1:
                joined = quote.join(parts[1::2])
                if len(joined.translate(None, _VALUE_BAD)) != len(joined) or joined.find(b"xmlns") >= 0:
                    return None
                if changed is last_changed:
                    changed = dict(changed)
                changed[i] = joined.decode().split(shape.quote_text)
        except UnicodeDecodeError:
            return None
    previous = shape.last_event
    root = point = None
    times = point_texts = None
    if previous is not None and 1 in diff:
        # A device's next report changes the times alone: then only they are read again.
        times_at = shape.times_at
        values = _values(shape, 1, changed)
        if times_at is None or shape.others(values) != shape.others(_values(shape, 1, last_changed)):
            previous = None
        else:
            times = (values[times_at[0]], values[times_at[1]], values[times_at[2]])
    if previous is not None and shape.point in diff:
        point_at = shape.point_at
        if point_at is None:
            previous = None
        else:
            values = _values(shape, shape.point, changed)
            point_texts = (values[point_at[0]], values[point_at[1]], values[point_at[2]], values[point_at[3]],
                           values[point_at[4]])  # fmt: skip
    if previous is None:
        times = point_texts = None
        root = _attrs(shape, 1, changed)
        point = _attrs(shape, shape.point, changed)
    detail = shape.last_detail
    # The detail's content runs from the text after <detail> to the piece of </detail>.
    if detail_dirty:
        begin = body.find(DETAIL_OPEN) + len(DETAIL_OPEN)
        xml = body[begin : body.rfind(DETAIL_CLOSE)].strip()
        if shape.view_pieces.isdisjoint(diff):
            detail = msgspec.structs.replace(detail, xml=xml)
        else:
            detail = detail_from_views(
                {tag: _attrs(shape, i, changed) for tag, i in shape.views.items()},
                _attrs(shape, shape.link, changed) if shape.link >= 0 else None,
                _attrs(shape, shape.chatgrp, changed) if shape.chatgrp >= 0 else None,
                xml,
            )
    return (root, point, detail, previous, times, point_texts), changed


def _values(shape: Shape, index: int, changed: Mapping[int, list[str]]) -> list[str]:
    values = changed.get(index)
    return shape.attrs_values[index] if values is None else values


def _attrs(shape: Shape, index: int, changed: Mapping[int, list[str]]) -> dict[str, str]:
    values = changed.get(index)
    if values is None:
        return shape.attrs[index]
    return dict(zip(shape.names[index], values, strict=True))
