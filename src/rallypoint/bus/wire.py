"""The compact form of an event on the bus: no field names, no defaults, no second copy of the XML.

Only the NATS bus uses this; the public JSON shapes of the model are untouched. Three things keep
a position report under the size of its XML:

* every struct is written as a msgpack array (``array_like``) with trailing defaults left out;
* ``Detail.xml`` is sent as a span of ``raw`` when it is a slice of it (as the decoder makes it);
* ``raw`` is sent as a *template*: byte strings the receiving node can rebuild exactly (the text
  of fields it receives anyway, and markup every TAK client writes) are replaced by one control
  byte each. XML 1.0 forbids these bytes, so a received document never holds one; a ``raw`` that
  does (or would make the mapping ambiguous) travels as it is.

The template is exact by construction: each replacement swaps every occurrence of a byte string
(without control bytes) for a marker byte that was absent, so expanding each marker back gives
the original bytes whatever the order. The wire format is fixed per release: nodes of one cluster
run the same version.
"""

from __future__ import annotations

import msgspec

from rallypoint.model.cot import ChatInfo, CotEvent, Dest, Detail, EmergencyInfo, Point
from rallypoint.model.exercise import ExerciseMark
from rallypoint.protocol.timefmt import MAX_TIME_MS, format_time
from rallypoint.routing.envelope import Origin
from rallypoint.routing.router import Audience

# Markup ATAK, WinTAK, iTAK and the server itself write in nearly every event. Order matters only
# for compression (longer strings that contain shorter ones first); never reorder within a release.
VOCABULARY: tuple[bytes, ...] = (
    b'<event version="2.0" uid="',
    b'"><point lat="',
    b'"/><detail>',
    b"</detail></event>",
    b'" type="',
    b'" time="',
    b'" start="',
    b'" stale="',
    b'" lon="',
    b'" hae="',
    b'<precisionlocation altsrc="',
    b'" geopointsrc="',
    b'<takv os="',
    b'" version="',
    b'" device="',
    b'" platform="',
    b"<contact ",
    b'endpoint="',
    b'callsign="',
    b'<__group role="',
    b'<status battery="',
    b'<track course="',
    b'" speed="',
)
# Fields whose text is replaced: uid, time, stale, lat, lon (in this order; start is nearly
# always time, which a replacement of every occurrence covers).
_FIELDS = 5
# Every byte XML 1.0 forbids except NUL, which stays free as an escape for later formats.
_CONTROL = bytes([*range(1, 9), 11, 12, *range(14, 32)])
_FIELD_MARKERS = [_CONTROL[i : i + 1] for i in range(_FIELDS)]
_VOCAB_MARKERS = [_CONTROL[_FIELDS + i : _FIELDS + i + 1] for i in range(len(VOCABULARY))]
_ALL_MARKERS = _CONTROL[: _FIELDS + len(VOCABULARY)]
_VOCAB_PAIRS = tuple(zip(VOCABULARY, _VOCAB_MARKERS, strict=True))
_VOCAB_TEXTS = list(VOCABULARY)
# For filling: every marker byte mapped to one separator, the bytes that are no marker, and
# a marker byte's position in field texts + vocabulary.
_SEPARATOR = _ALL_MARKERS[:1]
_ONE_MARKER = bytes(_SEPARATOR[0] if bytes([b]) in _ALL_MARKERS else b for b in range(256))
_NOT_MARKERS = bytes(b for b in range(256) if bytes([b]) not in _ALL_MARKERS)
_INDEX = [_ALL_MARKERS.find(bytes([b])) for b in range(256)]


class WireDetail(msgspec.Struct, frozen=True, gc=False, array_like=True, omit_defaults=True):
    """:class:`Detail` without ``xml`` (sent apart), nested views as tuples."""

    callsign: str | None = None
    endpoint: str | None = None
    group_name: str | None = None
    group_role: str | None = None
    battery: int | None = None
    speed: float | None = None
    course: float | None = None
    platform: str | None = None
    takv: bool = False
    has_marti: bool = False
    link_uid: str | None = None
    link_type: str | None = None
    link_relation: str | None = None
    emergency: tuple[str | None, bool] | None = None
    chat: tuple[str, str, str | None, str | None, bool, tuple[str, ...]] | None = None
    dests: tuple[tuple[str | None, str | None, str | None, str | None], ...] = ()
    exercise: tuple[str | None, str | None, str | None, str | None] | None = None


class WireEvent(msgspec.Struct, frozen=True, gc=False, array_like=True, omit_defaults=True):
    """:class:`CotEvent` as sent: ``template`` is ``raw`` with markers, ``xml`` or ``xml_span`` the detail."""

    uid: str
    type: str
    how: str
    time: int
    start: int
    stale: int
    point: tuple[float, float, float, float, float]
    detail: WireDetail
    template: bytes | None = None
    xml_span: tuple[int, int] | None = None
    xml: bytes = b""
    raw_plain: bool = False
    access: str | None = None
    qos: str | None = None
    opex: str | None = None


class WireOrigin(msgspec.Struct, frozen=True, gc=False, array_like=True, omit_defaults=True):
    """:class:`Origin`, fields in its order."""

    session_id: str
    groups: frozenset[str] = frozenset()
    principal: str | None = None
    node: str = ""
    read_groups: frozenset[str] | None = None


class WireAudience(msgspec.Struct, frozen=True, gc=False, array_like=True, omit_defaults=True):
    """:class:`Audience`, fields in its order, addresses as tuples."""

    groups: frozenset[str] = frozenset()
    dests: tuple[tuple[str | None, str | None, str | None, str | None], ...] = ()
    team: str | None = None
    sessions: tuple[str, ...] = ()
    exclude: str | None = None
    explicit: bool = False
    unresolved: tuple[tuple[str | None, str | None, str | None, str | None], ...] = ()
    delivery_only: bool = False


class WireMessage(msgspec.Struct, frozen=True, gc=False, array_like=True, omit_defaults=True):
    """A publication. ``seq`` stands for the id ``<origin node>:<seq>``; other ids go in ``id``."""

    seq: int
    event: WireEvent
    origin: WireOrigin
    received_ms: int
    priority: int
    repeat: bool = False
    audience: WireAudience = WireAudience()
    id: str | None = None


class WireLatest(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """A latest-state cache value."""

    event: WireEvent
    origin: WireOrigin
    received_ms: int


class TimeTexts:
    """``format_time`` as bytes, with the seconds part remembered: positions repeat the same few
    seconds (time, start, stale of many senders), and formatting a datetime costs microseconds."""

    __slots__ = ("_seconds",)

    def __init__(self) -> None:
        self._seconds: dict[int, bytes] = {}

    def __call__(self, ms: int) -> bytes:
        """The text of ``ms`` as ``format_time`` writes it; empty when out of its range."""
        if not 0 <= ms <= MAX_TIME_MS:
            return b""
        seconds, millis = divmod(ms, 1000)
        head = self._seconds.get(seconds)
        if head is None:
            if len(self._seconds) >= _MAX_SECONDS:
                self._seconds.clear()
            head = self._seconds[seconds] = format_time(seconds * 1000)[:-5].encode()
        return b"%s.%03dZ" % (head, millis)


_MAX_SECONDS = 4096


def _field_texts(uid: str, time: int, stale: int, lat: float, lon: float, times: TimeTexts) -> list[bytes]:
    """The text each replaceable field is rebuilt from; empty when it cannot stand for anything."""
    return [uid.encode(), times(time), times(stale), repr(float(lat)).encode(), repr(float(lon)).encode()]


def make_template(raw: bytes, texts: list[bytes]) -> bytes | None:
    """``raw`` with field texts and vocabulary replaced by markers; ``None`` when it holds a marker byte."""
    if raw.translate(None, _ALL_MARKERS) != raw:
        return None
    out = raw
    for text, marker in zip(texts, _FIELD_MARKERS, strict=True):
        # Found in raw, a text holds no marker byte (so cannot match across one); an empty one
        # would match everywhere.
        if text and text in raw:
            out = out.replace(text, marker)
    for text, marker in _VOCAB_PAIRS:
        out = out.replace(text, marker)
    return out


def fill_template(template: bytes, texts: list[bytes]) -> bytes:
    """The ``raw`` a template was made from (see :func:`make_template`).

    In three C-level passes rather than one ``replace`` per marker: the literal pieces between
    markers, the markers in order, then one join.
    """
    order = template.translate(None, _NOT_MARKERS)
    if not order:
        return template
    pieces = template.translate(_ONE_MARKER).split(_SEPARATOR)
    table = texts + _VOCAB_TEXTS
    out: list[bytes] = [b""] * (2 * len(order) + 1)
    out[0::2] = pieces
    out[1::2] = [table[_INDEX[code]] for code in order]
    return b"".join(out)


def to_wire(event: CotEvent, times: TimeTexts) -> WireEvent:
    """The compact form of ``event``."""
    d = event.detail
    p = event.point
    raw = event.raw
    template = xml_span = None
    xml = d.xml
    raw_plain = False
    if raw is not None:
        template = make_template(raw, _field_texts(event.uid, event.time, event.stale, p.lat, p.lon, times))
        if template is None:
            template, raw_plain = raw, True
        if xml:
            at = raw.find(xml)
            if at >= 0:
                xml_span, xml = (at, at + len(xml)), b""
    chat = d.chat
    emergency = d.emergency
    detail = WireDetail(
        d.callsign, d.endpoint, d.group_name, d.group_role, d.battery, d.speed, d.course, d.platform, d.takv,
        d.has_marti, d.link_uid, d.link_type, d.link_relation,
        None if emergency is None else (emergency.type, emergency.cancel),
        None if chat is None else (chat.chatroom, chat.chat_id, chat.parent, chat.sender_callsign,
                                   chat.group_owner, chat.members),
        tuple((x.callsign, x.uid, x.group, x.mission) for x in d.dests),
        None if (mark := d.exercise) is None else (mark.id, mark.unit, mark.inject, mark.kind),
    )  # fmt: skip
    return WireEvent(
        event.uid, event.type, event.how, event.time, event.start, event.stale, (p.lat, p.lon, p.hae, p.ce, p.le),
        detail, template, xml_span, xml, raw_plain, event.access, event.qos, event.opex,
    )  # fmt: skip


def from_wire(w: WireEvent, times: TimeTexts) -> CotEvent:
    """The event :func:`to_wire` was given, equal field for field."""
    lat, lon, hae, ce, le = w.point
    raw = w.template
    if raw is not None and not w.raw_plain:
        raw = fill_template(raw, _field_texts(w.uid, w.time, w.stale, lat, lon, times))
    xml = w.xml
    if w.xml_span is not None and raw is not None:
        xml = raw[w.xml_span[0] : w.xml_span[1]]
    d = w.detail
    emergency = d.emergency
    chat = d.chat
    detail = Detail(
        xml, d.callsign, d.endpoint, d.group_name, d.group_role, d.has_marti,
        tuple(Dest(*x) for x in d.dests),
        None if chat is None else ChatInfo(*chat),
        d.link_uid, d.link_type, d.link_relation,
        None if emergency is None else EmergencyInfo(*emergency),
        d.battery, d.speed, d.course, d.platform, d.takv,
        None if d.exercise is None else ExerciseMark(*d.exercise),
    )  # fmt: skip
    return CotEvent(
        w.uid, w.type, w.how, w.time, w.start, w.stale, Point(lat, lon, hae, ce, le), detail,
        w.access, w.qos, w.opex, raw,
    )  # fmt: skip


def origin_to_wire(o: Origin) -> WireOrigin:
    """The compact form of an origin."""
    return WireOrigin(o.session_id, o.groups, o.principal, o.node, o.read_groups)


def origin_from_wire(w: WireOrigin) -> Origin:
    """The origin :func:`origin_to_wire` was given."""
    return Origin(w.session_id, w.groups, w.principal, w.node, w.read_groups)


def _dest_tuples(dests: tuple[Dest, ...]) -> tuple[tuple[str | None, str | None, str | None, str | None], ...]:
    return tuple((x.callsign, x.uid, x.group, x.mission) for x in dests)


def audience_to_wire(a: Audience) -> WireAudience:
    """The compact form of an audience."""
    return WireAudience(
        a.groups, _dest_tuples(a.dests), a.team, a.sessions, a.exclude, a.explicit, _dest_tuples(a.unresolved),
        a.delivery_only,
    )  # fmt: skip


def audience_from_wire(w: WireAudience) -> Audience:
    """The audience :func:`audience_to_wire` was given."""
    return Audience(
        w.groups, tuple(Dest(*x) for x in w.dests), w.team, w.sessions, w.exclude, w.explicit,
        tuple(Dest(*x) for x in w.unresolved), w.delivery_only,
    )  # fmt: skip
