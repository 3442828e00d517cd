"""A federation link's queue on disk: restored at start, written in batches off the ingest path.

The persister task is the only writer of a link's rows in ``federation.db``: new priority messages
(only sendable once written), tombstones of cancelled ones, the latest report per uid, the
acknowledged marks, the queue bound, and a new queue epoch when the peer's mark showed the queue
older than what the peer saw (``federation/queue_check.py``), between two batches so no write of the
old numbering is in flight.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rallypoint.federation import queue_check
from rallypoint.federation.convert import from_federated
from rallypoint.federation.lanes import new_epoch
from rallypoint.routing.envelope import Envelope, Origin

if TYPE_CHECKING:
    from rallypoint.federation.link import PeerLink

log = logging.getLogger(__name__)


async def load(link: PeerLink) -> None:
    """Restore the unacknowledged backlog and the latest reports of ``link`` (before any connection)."""
    for lane in link._lanes:
        backlog = await link._store.backlog(lane.key, new_epoch())
        if backlog.created:
            log.info("federation queue created", extra={"peer": link.name, "queue": lane.key, "epoch": backlog.epoch})
        lane.restore(backlog)
    await trim(link)
    now = link._clock.now_ms()
    for uid, stale, fed in await link._journal.load(now):
        link._latest[uid] = (fed, stale)
        link._dirty[uid] = None
        if link._policy is not None:
            event = from_federated(fed, link._limits).event
            link._envelopes[uid] = Envelope(event, Origin(session_id=link.id), now)


async def run(link: PeerLink) -> None:
    """Write batches until the link is closed, then everything still pending (a clean stop loses nothing)."""
    while not link._closed:
        await link._persist.wait()
        link._persist.clear()
        await write(link)
    await write(link)


async def write(link: PeerLink) -> None:
    """One batch: new epochs, new priority messages, tombstones, latest reports, acknowledgement marks."""
    await queue_check.start_new_epochs(link)
    wrote = False
    for lane in link._lanes:
        rows = lane.take_unpersisted()
        if rows:
            await link._store.append(lane.key, [(s, m.SerializeToString()) for s, m in rows])
            lane.persisted()
            wrote = True
        if tombstones := list(lane.cancelled):
            await link._store.append(lane.key, [(s, m.SerializeToString()) for s, m in tombstones])
            # Only now (``unwritten`` counts them until here); cancel() may have appended meanwhile.
            del lane.cancelled[:len(tombstones)]
    await link._journal.flush()
    if wrote:
        # Peers that never acknowledge (TAK Server) must not grow the file without bound.
        await trim(link)
        link._wake.set()
    for lane in link._lanes:
        if lane.acked > lane.ack_persisted:
            upto = lane.acked
            await link._store.acknowledge(lane.key, upto)
            lane.ack_persisted = upto


async def trim(link: PeerLink) -> None:
    """Drop the oldest queued messages beyond ``queue_max``, message lane first, in memory and on disk."""
    excess = sum(len(lane.unacked) for lane in link._lanes) - link._queue_max
    if excess <= 0:
        return
    for lane in (link._message, link._urgent):
        count = min(excess, len(lane.unacked))
        if count:
            await link._store.trim(lane.key, lane.drop_oldest(count))
            link.dropped += count
            excess -= count
    log.warning("federation queue full, oldest messages dropped", extra={"peer": link.name})
