"""What a federation link does with what its peer sends: acknowledgements, checks, acceptance.

Checks in order: acknowledgements and queue checks (``federation/queue_check.py``; they end there),
conversion, sequence de-duplication per origin lane and queue epoch (a retransmission is dropped and
answered with the mark; a new epoch is a queue the peer created afresh, logged), then the drops that
come after the acknowledgement: hop limit, provenance and flow tags (loops), group mapping; then the
node-wide duplicate check (``federation/dedup.py``) before the event enters ingest. Also the removal
of a link's remote contacts once it stayed down past the contact timeout.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rallypoint.errors import RemoteProtocolError
from rallypoint.federation import queue_check
from rallypoint.federation.convert import acknowledgement, from_federated, has_flow_tag, sync_request
from rallypoint.federation.lanes import URGENT, tag_of
from rallypoint.model.cot import Point
from rallypoint.model.cot_type import DELETE, Priority, is_atom, priority_of
from rallypoint.protocol.fig import fig_pb2
from rallypoint.protocol.xml_codec import make_event
from rallypoint.routing.envelope import Envelope, Origin

if TYPE_CHECKING:
    from rallypoint.federation.link import PeerLink

log = logging.getLogger(__name__)

_DURABLE = frozenset({Priority.EMERGENCY, Priority.MESSAGE})


async def receive(link: PeerLink, fed: fig_pb2.FederatedEvent) -> None:
    """Check and accept one event from ``link``'s peer."""
    link.last_contact_ms = link._clock.now_ms()
    link.bytes_received += fed.ByteSize()
    link.events_received += 1
    acked = acknowledgement(fed)
    if acked is not None:
        queue_check.acknowledged(link, link._urgent if tag_of(acked.node) == URGENT else link._message, acked)
        return
    if (check := sync_request(fed)) is not None:
        queue_check.answer(link, check)
        return
    hops = fed.federateHops
    too_far = bool(hops.maxHops and hops.currentHops > hops.maxHops)
    looped = any(p.federationServerId == link._node_id for p in fed.federateProvenance)
    try:
        inbound = from_federated(fed, link._limits)
    except RemoteProtocolError as exc:
        link.dropped += 1
        log.warning("invalid federated event", extra={"peer": link.name, "reason": str(exc)})
        return
    event = inbound.event
    looped = looped or has_flow_tag(event.detail.xml, link._node_id)
    groups = frozenset(link.peer.groups_in[g] for g in inbound.groups if g in link.peer.groups_in)
    # A priority message is recorded and acknowledged before anything may drop it (a loop, the hop
    # limit, no mapped group): unacknowledged, the peer would keep it queued and send it again after
    # every reconnect. A peer may well send us back what passed here: in a triangle it forwards what
    # reached it first through the third server. Our own mark coming back (through a TAK Server, which
    # forwards the detail untouched) numbers nothing of the peer's: a loop, neither recorded nor answered.
    own = inbound.origin_node is not None and inbound.origin_node.removesuffix(URGENT) == link._node_id
    looped = looped or own
    if inbound.seq is not None and inbound.origin_node and not own:
        origin, epoch = inbound.origin_node, inbound.epoch
        # Keyed by node, lane (the lane suffix is part of ``origin``) and epoch: each is its own sequence.
        key = (origin, epoch)
        if inbound.seq <= (mark := link._seen.get(key, 0)):
            # Answered with the mark, not the number: the sender learns all the peer holds of the epoch.
            link._queue_ack(mark, tag_of(origin), epoch)
            return
        if key not in link._seen and any(o == origin for o, _ in link._seen):
            log.warning("peer %s queue reset (new epoch %s)", link.name, epoch or "none",
                        extra={"peer": link.name, "origin": origin, "epoch": epoch})
        await link._store.mark_seen(origin, epoch, inbound.seq)
        link._seen[key] = inbound.seq
        link._queue_ack(inbound.seq, tag_of(origin), epoch)
    if too_far:
        link.dropped += 1
        return
    if looped or not groups:
        return
    coalesced = priority_of(event.type) not in _DURABLE
    if link._recent.duplicate(event, coalesced=coalesced, tie=inbound.tie):
        return
    if is_atom(event.type) and event.detail.callsign is not None:
        link.contacts[event.uid] = (event.type, groups)
    elif event.type == DELETE and event.detail.link_uid is not None:
        link.contacts.pop(event.detail.link_uid, None)
        link._recent.forget(event.detail.link_uid)
    now = link._clock.now_ms()
    try:
        link._accept(Envelope(event, Origin(session_id=link.id, groups=groups, principal=link.id), now))
    except RemoteProtocolError as exc:
        link.dropped += 1
        log.warning("federated event refused", extra={"peer": link.name, "reason": str(exc)})
        return
    link._recent.remember(event, coalesced=coalesced, now_ms=now, tie=inbound.tie)


def expire_contacts(link: PeerLink, timeout_s: float) -> int:
    """If ``link`` is down longer than ``timeout_s``, remove its remote contacts locally (``t-x-d-d``)."""
    if link.state == "up" or not link.contacts:  # LinkState is a StrEnum
        return 0
    if link._clock.monotonic() - link.down_since < timeout_s:
        return 0
    now = link._clock.now_ms()
    contacts, link.contacts = link.contacts, {}
    for uid, (cot_type, groups) in contacts.items():
        detail = f'<link uid="{uid}" relation="p-p" type="{cot_type}"/>'.encode()
        event = make_event(
            uid=f"{uid}-fed-gone", type=DELETE, how="h-g-i-g-o", time=now, start=now, stale=now + 20_000,
            point=Point(lat=0.0, lon=0.0), detail_xml=detail, limits=link._limits,
        )
        link._accept(Envelope(event, Origin(session_id=link.id, groups=groups, principal=link.id), now))
        # When the link heals, the replay of its latest report brings the contact back.
        link._recent.forget(uid)
    log.info("remote contacts expired", extra={"peer": link.name, "count": len(contacts)})
    return len(contacts)
