"""The picture's mirror in NATS: what it writes, what a failed write keeps, what a start restores."""

from __future__ import annotations

from rallypoint.clock import ManualClock
from rallypoint.routing.directory import Directory
from rallypoint.routing.envelope import Envelope, Origin
from rallypoint.routing.router import Audience
from rallypoint.services.latest_sync import LatestStore, LatestSync
from rallypoint.services.messages import disconnect_delete
from rallypoint.services.presence import Presence
from tests.support.picture import NODE, marker


class Bucket:
    """The KV bucket's operations over a dict; ``down`` makes every call fail as NATS unreachable would."""

    def __init__(self) -> None:
        self.entries: dict[str, Envelope] = {}
        self.down = False
        self.calls = 0

    def store(self) -> LatestStore:
        async def put(envelope: Envelope) -> None:
            self._call()
            self.entries[envelope.event.uid] = envelope

        async def get(uid: str) -> Envelope | None:
            return self.entries.get(uid)

        async def keys() -> list[str]:
            return sorted(self.entries)

        async def delete(uid: str) -> None:
            self._call()
            self.entries.pop(uid, None)

        return LatestStore(put=put, get=get, keys=keys, delete=delete)

    def _call(self) -> None:
        self.calls += 1
        if self.down:
            raise TimeoutError("nats unreachable")


def _setup() -> tuple[LatestSync, Presence, Bucket, ManualClock]:
    clock = ManualClock()
    presence = Presence(Directory())
    bucket = Bucket()
    return LatestSync(node=NODE, presence=presence, store=bucket.store(), clock=clock), presence, bucket, clock


def _pictured(presence: Presence, clock: ManualClock, uid: str, node: str = NODE) -> Envelope:
    envelope = Envelope(marker(clock, uid), Origin(session_id="s-1", node=node), clock.now_ms())
    presence.items[uid] = envelope
    return envelope


async def test_own_pictured_events_are_written_coalesced_and_deleted_with_their_target() -> None:
    sync, presence, bucket, clock = _setup()
    first = _pictured(presence, clock, "m-1")
    sync.observe(first, Audience())
    latest = _pictured(presence, clock, "m-1")
    sync.observe(latest, Audience())
    sync.observe(_pictured(presence, clock, "remote", node="node-b"), Audience())  # its node writes it
    await sync.flush()
    assert bucket.entries == {"m-1": latest} and bucket.calls == 1
    del presence.items["m-1"]
    notice = Envelope(disconnect_delete("m-1", "b-m-p-s-m", clock.now_ms()), Origin(session_id="s-1", node=NODE), 0)
    sync.observe(notice, Audience())
    await sync.flush()
    assert bucket.entries == {}


async def test_a_failed_flush_stops_at_once_and_keeps_every_change_for_the_next() -> None:
    sync, presence, bucket, clock = _setup()
    for uid in ("m-1", "m-2", "m-3"):
        sync.observe(_pictured(presence, clock, uid), Audience())
    assert sync.pending == 3
    bucket.down = True
    await sync.flush()
    assert bucket.calls == 1 and sync.failed == 1 and sync.pending == 3
    bucket.down = False
    await sync.flush()
    assert sorted(bucket.entries) == ["m-1", "m-2", "m-3"]
    assert sync.pending == 0 and sync.written == 3
