"""Cluster-wide leases: one node at a time does a job (repeating emergencies) for the whole cluster.

A lease is a key in the KV bucket ``rp_<cluster>_leases``, whose entries expire ``ttl`` after
their last write. A node takes a free lease by creating the key (refused while another node's
key lives), keeps it by updating the key at the revision it last wrote every ``ttl / 3``, and
loses it when an update is refused (another node took it after it expired) or NATS does not
answer. A holder killed with ``kill -9`` stops renewing: its key expires and the next node to try
takes it, so the job moves within one ``ttl`` and a renewal period. A held lease is given up at
shutdown (the key deleted) so another node takes over at once.

The local bus (one node) holds every lease: :class:`AlwaysHeld`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import nats.errors
import nats.js.errors
from nats.js.kv import KeyValue

log = logging.getLogger(__name__)

# A NATS operation that failed for the network's sake; the lease is then not known to be ours.
_TRANSIENT = (nats.errors.Error, asyncio.TimeoutError, OSError)

EMERGENCY_REPEATER = "emergency-repeater"

# Whether a node's liveness key exists (None: NATS did not answer).
NodeAlive = Callable[[str], Awaitable[bool | None]]


class Lease(Protocol):
    """Whether this node holds a named lease now; ``run`` keeps trying to hold it until ``stop``."""

    @property
    def held(self) -> bool: ...

    @property
    def renew_s(self) -> float: ...

    @property
    def taken(self) -> int: ...

    @property
    def renewed(self) -> int: ...

    @property
    def lost(self) -> int: ...

    async def run(self, stop: asyncio.Event) -> None: ...


class AlwaysHeld:
    """The lease of a node that is alone (the local bus): always held."""

    held = True
    renew_s = 2.0
    taken = renewed = lost = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Nothing to renew."""


class KvLease:
    """A lease named ``key`` in ``kv`` (a bucket with a TTL), held on behalf of ``holder``."""

    def __init__(self, kv: KeyValue, key: str, holder: str, *, ttl_s: float) -> None:
        self._kv = kv
        self.key = key
        self.holder = holder
        self.renew_s = ttl_s / 3
        self._revision: int | None = None
        self.taken = 0
        self.renewed = 0
        self.lost = 0

    @property
    def held(self) -> bool:
        """Whether this node's last write of the key is the key's latest (as of the last renewal)."""
        return self._revision is not None

    async def run(self, stop: asyncio.Event) -> None:
        """Take or renew the lease every ``renew_s`` until ``stop``; give it up on the way out."""
        try:
            while not stop.is_set():
                await self.attempt()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.renew_s)
        finally:
            await self.release()

    async def attempt(self) -> None:
        """One take or renewal; ``held`` tells the outcome."""
        value = self.holder.encode()
        try:
            if self._revision is None:
                await self._take(value)
            else:
                self._revision = await self._kv.update(self.key, value, last=self._revision)
                self.renewed += 1
        except nats.js.errors.KeyWrongLastSequenceError:
            self._lose("held by another node")
        except _TRANSIENT as exc:
            self._lose(repr(exc))

    async def _take(self, value: bytes) -> None:
        try:
            self._revision = await self._kv.create(self.key, value)
        except nats.js.errors.KeyWrongLastSequenceError:
            # Our own key, written before NATS went away or before a quick restart: still ours.
            entry = await self._kv.get(self.key)
            if entry.value != value or entry.revision is None:
                return
            self._revision = entry.revision
        self.taken += 1
        log.info("lease taken", extra={"lease": self.key, "node": self.holder})

    async def release(self) -> None:
        """Delete the key if this node holds it, so another node need not wait for it to expire."""
        if self._revision is None:
            return
        revision, self._revision = self._revision, None
        with contextlib.suppress(*_TRANSIENT, nats.js.errors.KeyWrongLastSequenceError):
            await asyncio.wait_for(self._kv.delete(self.key, last=revision), timeout=self.renew_s)

    def _lose(self, why: str) -> None:
        if self._revision is not None:
            self.lost += 1
            log.warning("lease lost", extra={"lease": self.key, "node": self.holder, "reason": why})
        self._revision = None
