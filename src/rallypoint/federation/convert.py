"""CoT events <-> TAK federation v2 ``FederatedEvent`` messages, plus the loop-prevention marks.

Wire conventions (shared with TAK Server): ``GeoEvent`` flattens the event; ``other`` carries the
``<detail>`` element as XML; ``federateGroups`` names the groups on the *receiver's* side;
``federateProvenance`` lists every server the event passed through and ``federateHops`` bounds
the path length. Our own additions live inside the detail so a TAK Server forwards them untouched:

* ``<_flow-tags_ NODE="time"/>``: each Rallypoint adds its node id on the way out and drops inbound
  events that already carry it (the same idea as TAK Server's flow tags).
* ``<_rpfed_ node="N" seq="S" epoch="E"/>``: the origin node, sequence number and queue epoch of a
  durable (priority) message; the receiver acknowledges and de-duplicates by ``(node, epoch, seq)``.
  ``N`` may carry a lane suffix (``federation/lanes.py``): each lane is its own sequence. ``epoch`` is
  absent for queues created before epochs existed (and from older Rallypoint nodes).
* ``<_rptie_ n="N"/>``: on a coalesced report (a position), its place among the reports of its uid
  with the same time, given by the node where it entered federation (``federation/order.py``);
  absent for the first. Servers forwarding the report keep it; receivers order by ``(time, N)``.
* Control messages between Rallypoint nodes, never entering a picture: acknowledgements
  (``y-rp-fed-ack``) and queue checks (``y-rp-fed-sync``, seq ``0``: "what is your mark for this
  lane and epoch?", answered with an acknowledgement of that mark).
"""

from __future__ import annotations

import re

import msgspec

from rallypoint.model.cot import CotEvent, Point
from rallypoint.protocol.fig import fig_pb2
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.timefmt import format_time
from rallypoint.protocol.xml_codec import make_event

ACK_TYPE = "y-rp-fed-ack"
SYNC_TYPE = "y-rp-fed-sync"
_SEQ_RE = re.compile(rb'<_rpfed_ node="([^"]*)" seq="(\d+)"(?: epoch="([0-9A-Za-z]{1,64})")?/>')
_TIE_RE = re.compile(rb'<_rptie_ n="(\d{1,9})"/>')
_FLOW_RE = re.compile(rb"<_flow-tags_\b([^>]*?)(/?)>")
_DETAIL_WRAP_RE = re.compile(rb"^\s*<detail\b[^>]*?(?:/>\s*$|>(.*)</detail>\s*$)", re.S)
_NAME_OK = re.compile(r"[^A-Za-z0-9_.-]")


class Inbound(msgspec.Struct, frozen=True):
    """A decoded federated event: the CoT event, its remote groups and its durable sequence mark."""

    event: CotEvent
    groups: tuple[str, ...]
    origin_node: str | None
    seq: int | None
    epoch: str = ""
    tie: int = 0


class Ack(msgspec.Struct, frozen=True):
    """The mark of a control message: node id (lane suffix included), sequence and queue epoch.

    For an acknowledgement the node is the acknowledging one; for a queue check the asking one.
    """

    node: str
    seq: int
    epoch: str


def _mark(node: str, seq: int, epoch: str) -> str:
    tail = f' epoch="{epoch}"' if epoch else ""
    return f'<_rpfed_ node="{node}" seq="{seq}"{tail}/>'


def flow_attr(node_id: str) -> str:
    """The attribute name this node writes into ``_flow-tags_`` (a valid XML name)."""
    clean = _NAME_OK.sub("-", node_id)
    return clean if clean[:1].isalpha() else f"rp-{clean}"


def add_flow_tag(detail_xml: bytes, node_id: str, now_ms: int) -> bytes:
    """``detail_xml`` with our node id and a timestamp added to ``_flow-tags_`` (created if absent)."""
    attr = f' {flow_attr(node_id)}="{format_time(now_ms)}"'.encode()
    match = _FLOW_RE.search(detail_xml)
    if match is None:
        return detail_xml + b"<_flow-tags_" + attr + b"/>"
    start = match.start(2)
    return detail_xml[:start] + attr + detail_xml[start:]


def has_flow_tag(detail_xml: bytes, node_id: str) -> bool:
    """Whether the event already passed through ``node_id`` (a loop)."""
    match = _FLOW_RE.search(detail_xml)
    return match is not None and f" {flow_attr(node_id)}=".encode() in match.group(1)


def flow_hops(detail_xml: bytes) -> int:
    """How many servers already tagged the event (its hop count so far)."""
    match = _FLOW_RE.search(detail_xml)
    return 0 if match is None else match.group(1).count(b"=")


def tie_of(detail_xml: bytes) -> int:
    """The report's place among its uid's reports with the same time (``<_rptie_>``), 0 if unmarked."""
    match = _TIE_RE.search(detail_xml)
    return int(match.group(1)) if match else 0


def with_tie(detail_xml: bytes, tie: int) -> bytes:
    """``detail_xml`` with its tie mark set to ``tie`` (none for 0); a mark the client wrote is replaced."""
    detail = _TIE_RE.sub(b"", detail_xml)
    return detail + f'<_rptie_ n="{tie}"/>'.encode() if tie else detail


def to_federated(
    event: CotEvent,
    *,
    groups: list[str],
    node_id: str,
    now_ms: int,
    provenance: list[tuple[str, str]],
    hops: tuple[int, int],
    seq: int | None = None,
    lane: str = "",
    epoch: str = "",
    tie: int | None = None,
) -> fig_pb2.FederatedEvent:
    """Encode an event for a peer; ``hops`` is ``(max, current)`` after this hop; ``lane``, ``epoch`` mark the seq.

    ``tie``: set by the node where a coalesced report enters federation (:func:`with_tie`); None keeps
    the detail's mark as it came.
    """
    detail = event.detail.xml if tie is None else with_tie(event.detail.xml, tie)
    detail = add_flow_tag(detail, node_id, now_ms)
    if seq is not None:
        detail += _mark(node_id + lane, seq, epoch).encode()
    geo = fig_pb2.GeoEvent(
        sendTime=event.time, startTime=event.start, staleTime=event.stale,
        lat=event.point.lat, lon=event.point.lon, hae=event.point.hae, ce=event.point.ce, le=event.point.le,
        uid=event.uid, type=event.type, coordSource=event.how,
        other="<detail>" + detail.decode("utf-8", "replace") + "</detail>",
        screenName=event.detail.callsign or "", groupName=event.detail.group_name or "",
        groupRole=event.detail.group_role or "", access=event.access or "",
        ptpUids=[d.uid for d in event.detail.dests if d.uid],
        ptpCallsigns=[d.callsign for d in event.detail.dests if d.callsign],
    )
    if event.detail.battery is not None:
        geo.battery = event.detail.battery
    if event.detail.speed is not None:
        geo.speed = event.detail.speed
    if event.detail.course is not None:
        geo.course = event.detail.course
    out = fig_pb2.FederatedEvent(event=geo, federateGroups=groups)
    for server_id, name in provenance:
        out.federateProvenance.add(federationServerId=server_id, federationServerName=name)
    out.federateHops.maxHops, out.federateHops.currentHops = hops
    return out


def ack_event(node_id: str, seq: int, now_ms: int, epoch: str = "") -> fig_pb2.FederatedEvent:
    """A Rallypoint-to-Rallypoint acknowledgement of every durable message up to ``seq`` of queue ``epoch``."""
    geo = fig_pb2.GeoEvent(
        sendTime=now_ms, startTime=now_ms, staleTime=now_ms + 60_000, uid=f"{node_id}-ack", type=ACK_TYPE,
        coordSource="m-g", other=f"<detail>{_mark(node_id, seq, epoch)}</detail>",
    )
    return fig_pb2.FederatedEvent(event=geo)


def sync_event(node_id: str, now_ms: int, epoch: str = "") -> fig_pb2.FederatedEvent:
    """A queue check: asks the peer for its mark of lane ``node_id`` (lane suffix included) in ``epoch``.

    It carries seq ``0`` so that a node which does not know the check takes it for a retransmission
    and acknowledges 0, rather than recording a number.
    """
    geo = fig_pb2.GeoEvent(
        sendTime=now_ms, startTime=now_ms, staleTime=now_ms + 60_000, uid=f"{node_id}-sync", type=SYNC_TYPE,
        coordSource="m-g", other=f"<detail>{_mark(node_id, 0, epoch)}</detail>",
    )
    return fig_pb2.FederatedEvent(event=geo)


def sync_request(fed: fig_pb2.FederatedEvent) -> Ack | None:
    """The lane and epoch a queue check asks about, if ``fed`` is one."""
    return _control(fed, SYNC_TYPE)


def remark(fed: fig_pb2.FederatedEvent, seq: int, epoch: str) -> fig_pb2.FederatedEvent:
    """A copy of the durable message ``fed`` renumbered as ``seq`` of queue ``epoch`` (same node and lane)."""
    out = fig_pb2.FederatedEvent()
    out.CopyFrom(fed)
    other = fed.event.other.encode()
    match = _SEQ_RE.search(other)
    if match is None:
        raise ValueError("not a durable message: no sequence mark")
    mark = _mark(match.group(1).decode(), seq, epoch).encode()
    out.event.other = (other[: match.start()] + mark + other[match.end():]).decode("utf-8", "replace")
    return out


def ack_of(fed: fig_pb2.FederatedEvent) -> int | None:
    """The acknowledged sequence number if ``fed`` is an acknowledgement."""
    if fed.event.type != ACK_TYPE:
        return None
    match = _SEQ_RE.search(fed.event.other.encode())
    return int(match.group(2)) if match else None


def acknowledgement(fed: fig_pb2.FederatedEvent) -> Ack | None:
    """The acknowledgement ``fed`` carries, if it is one."""
    return _control(fed, ACK_TYPE)


def _control(fed: fig_pb2.FederatedEvent, kind: str) -> Ack | None:
    if fed.event.type != kind:
        return None
    match = _SEQ_RE.search(fed.event.other.encode())
    if match is None:
        return None
    return Ack(node=match.group(1).decode(), seq=int(match.group(2)), epoch=(match.group(3) or b"").decode())


def from_federated(fed: fig_pb2.FederatedEvent, limits: Limits) -> Inbound:
    """Decode a peer's event (raises ``RemoteProtocolError`` for invalid content)."""
    geo = fed.event
    detail = _inner_detail(geo.other.encode())
    origin_node: str | None = None
    seq: int | None = None
    epoch = ""
    match = _SEQ_RE.search(detail)
    if match is not None:
        origin_node, seq, epoch = match.group(1).decode(), int(match.group(2)), (match.group(3) or b"").decode()
        detail = detail[: match.start()] + detail[match.end():]
    if (geo.ptpUids or geo.ptpCallsigns) and b"<marti" not in detail:
        dests = "".join(f'<dest uid="{_attr(u)}"/>' for u in geo.ptpUids)
        dests += "".join(f'<dest callsign="{_attr(c)}"/>' for c in geo.ptpCallsigns)
        detail += f"<marti>{dests}</marti>".encode()
    event = make_event(
        uid=geo.uid, type=geo.type, how=geo.coordSource or "h-g-i-g-o",
        time=geo.sendTime, start=geo.startTime or geo.sendTime, stale=geo.staleTime,
        point=Point(lat=geo.lat, lon=geo.lon, hae=geo.hae, ce=geo.ce, le=geo.le),
        detail_xml=detail, access=geo.access or None, limits=limits,
    )
    return Inbound(event=event, groups=tuple(fed.federateGroups), origin_node=origin_node, seq=seq, epoch=epoch,
                   tie=tie_of(detail))


def _inner_detail(other: bytes) -> bytes:
    match = _DETAIL_WRAP_RE.match(other)
    if match is None:
        return other
    return match.group(1) or b""


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
