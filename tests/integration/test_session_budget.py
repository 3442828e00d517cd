"""Client byte budgets on the real server: within the budget, and every uid's latest position arrives."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent
from rallypoint.protocol.compression import deflate_bound
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xml_codec import parse_event
from tests.support.cot_client import CotClient, sa
from tests.support.server import ServerProcess

RATE = 3_000
MAX_EVENT = 4_096
# As the server sizes it: the largest event (deflate's worst case: compression is offered) or 2 s of rate.
BURST = max(deflate_bound(MAX_EVENT), 2 * RATE)
UIDS = [f"unit-{n}" for n in range(6)]
REPORTS = 30


@pytest.fixture
def budget_server(data_dir: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(data_dir, env={
        "RALLYPOINT_SESSION_BUDGET_BYTES_PER_S": str(RATE),
        "RALLYPOINT_MAX_EVENT_BYTES": str(MAX_EVENT),
    })
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


class MeteredReceiver:
    """Reads everything and checks, at each read, that the bytes so far fit the budget since connecting."""

    def __init__(self) -> None:
        self.events: list[CotEvent] = []
        self.total = 0
        self.worst_margin = float("inf")  # smallest (bound - bytes received) seen
        self._buf = b""
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self, port: int) -> None:
        # Taken before connecting: the server's bucket starts later, so this bound is only looser.
        start = time.monotonic()
        reader, self._writer = await asyncio.open_connection("127.0.0.1", port)
        self._task = asyncio.create_task(self._read(reader, start))
        await self.wait(lambda e: e.type == "t-x-takp-v")

    async def _read(self, reader: asyncio.StreamReader, start: float) -> None:
        limits = Limits()
        while chunk := await reader.read(65536):
            self.total += len(chunk)
            bound = BURST + RATE * (time.monotonic() - start)
            self.worst_margin = min(self.worst_margin, bound - self.total)
            self._buf += chunk
            while (end := self._buf.find(b"</event>")) >= 0:
                frame, self._buf = self._buf[: end + 8], self._buf[end + 8:]
                try:
                    self.events.append(parse_event(frame[frame.find(b"<event"):], limits))
                except RemoteProtocolError:
                    continue
            self._changed.set()

    def latest_lat(self, uid: str) -> float | None:
        found = [e.point.lat for e in self.events if e.uid == uid]
        return found[-1] if found else None

    async def wait(self, predicate: object, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(predicate(e) for e in self.events):  # type: ignore[operator]
            remaining = deadline - time.monotonic()
            assert remaining > 0, "expected event not received"
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=remaining)
            except TimeoutError:
                pass

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, ConnectionError):
                pass


async def every_latest(receivers: list[MeteredReceiver], lat: float, timeout: float = 90.0) -> None:
    """Wait until every receiver's latest report of every uid is at ``lat`` (polled, with a deadline)."""
    deadline = time.monotonic() + timeout
    while not all(r.latest_lat(uid) == lat for r in receivers for uid in UIDS):
        assert time.monotonic() < deadline, {uid: [r.latest_lat(uid) for r in receivers] for uid in UIDS}
        await asyncio.sleep(0.1)


def lat_of(i: int) -> float:
    return round(20.0 + i * 0.001, 6)


async def test_a_burst_under_a_small_budget_ends_with_every_uids_latest_position(
    budget_server: ServerProcess, clients: list[object]
) -> None:
    port = budget_server.ports["cot"]
    receivers = [MeteredReceiver() for _ in range(3)]
    for receiver in receivers:
        await receiver.connect(port)
        clients.append(receiver)
    senders = [await CotClient.connect(port) for _ in UIDS]
    clients.extend(senders)
    # Six units reporting every 0.15 s for about 4.5 s: some 18 kB/s for each receiver, six times what
    # its link carries, for long enough that the budget starts thinning (pacing, not synchronisation).
    for i in range(REPORTS):
        for uid, sender in zip(UIDS, senders, strict=True):
            await sender.send(sa(uid, uid.upper(), lat=lat_of(i)))
        await asyncio.sleep(0.15)
    await every_latest(receivers, lat_of(REPORTS - 1))
    # While thinning is still on, each unit reports twice more in one write and then goes quiet: the
    # second report comes within the thinning interval of the first (or of the unit's last one sent),
    # so it is thinned, and it is the one every receiver must still end with.
    for n, sender in enumerate(senders):
        await sender.send(sa(UIDS[n], "X", lat=lat_of(1_000)) + sa(UIDS[n], "X", lat=lat_of(1_001)))
    await every_latest(receivers, lat_of(1_001))
    for receiver in receivers:
        assert receiver.worst_margin >= 0, "a receiver got more than burst + rate x elapsed"
        # Thinned: far fewer reports than were sent, yet each uid's latest arrived.
        assert len([e for e in receiver.events if e.uid in UIDS]) < REPORTS * len(UIDS)
    text = httpx.get(f"http://127.0.0.1:{budget_server.ports['http']}/metrics", timeout=5).text
    thinned = next(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith("rallypoint_positions_thinned "))
    assert thinned > 0
