"""Helpers of the runner tests: a minimal line source, a collecting sink, a runner run for a block."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from rallypoint.connectors.base import Rejects
from rallypoint.model.track import Identity, IdentityKind, Observation


class LineDecoder:
    """A minimal line source for exercising runners: ``id,lat,lon`` per line."""

    def __init__(self) -> None:
        self.rejects = Rejects()
        self._partial = b""

    def receive(self, data: bytes, received_at: datetime) -> list[Observation]:
        self._partial += data
        *lines, self._partial = self._partial.split(b"\n")
        out = []
        for line in lines:
            if not line:
                continue
            try:
                ident, lat, lon = line.decode().split(",")
                out.append(
                    Observation(
                        source="test",
                        received_at=received_at,
                        source_time=None,
                        lat=float(lat),
                        lon=float(lon),
                        identity=Identity(kind=IdentityKind.TAK, value=ident),
                    )
                )
            except ValueError:
                self.rejects.add("malformed")
        return out


class Collected:
    def __init__(self) -> None:
        self.items: list[tuple[str, Observation]] = []

    def __call__(self, name: str, observations: Sequence[Observation]) -> None:
        self.items.extend((name, o) for o in observations)

    def ids(self) -> list[str]:
        return [o.identity.value for _, o in self.items if o.identity is not None]


@contextlib.asynccontextmanager
async def running(runner: object) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(runner.run())  # type: ignore[attr-defined]
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


