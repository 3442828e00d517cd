"""The shared latest-state cache: the newest event per uid in a NATS KV bucket (``rp_<cluster>_latest``).

A KV bucket keeps one value per key (history 1), so every node reads the same latest picture
without replaying the stream. Keys are uids; a uid NATS would refuse as a key (spaces, ``*``,
``>``, non-ASCII, a leading or trailing dot) is stored as ``=`` + its base64url spelling, and
listing gives the uid back either way.
"""

from __future__ import annotations

import base64
import re

from nats.js.errors import KeyDeletedError, KeyNotFoundError, NoKeysError
from nats.js.kv import KeyValue

from rallypoint.bus.codec import BusCodec
from rallypoint.routing.envelope import Envelope

_PLAIN_KEY = re.compile(r"[-/_A-Za-z0-9][-/_=.A-Za-z0-9]*")
_ENCODED = "="


def key_of(uid: str) -> str:
    """The KV key that stores ``uid``."""
    if _PLAIN_KEY.fullmatch(uid) and not uid.endswith(".") and ".." not in uid:
        return uid
    return _ENCODED + base64.urlsafe_b64encode(uid.encode()).decode().rstrip("=")


def uid_of(key: str) -> str:
    """The uid a KV key stores (inverse of :func:`key_of`)."""
    if not key.startswith(_ENCODED):
        return key
    body = key[len(_ENCODED):]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


class LatestCache:
    """Put, get, list and delete the latest envelope of a uid in one KV bucket."""

    def __init__(self, kv: KeyValue, codec: BusCodec) -> None:
        self._kv = kv
        self._codec = codec

    async def put(self, envelope: Envelope) -> None:
        """Make ``envelope`` the latest state of its event's uid."""
        await self._kv.put(key_of(envelope.event.uid), self._codec.encode_latest(envelope))

    async def get(self, uid: str) -> Envelope | None:
        """The latest envelope of ``uid``, or ``None`` when there is none."""
        try:
            entry = await self._kv.get(key_of(uid))
        except (KeyNotFoundError, KeyDeletedError):
            return None
        if not entry.value:
            return None
        return self._codec.decode_latest(entry.value)

    async def list(self) -> list[str]:
        """Every uid that has a latest state, sorted."""
        try:
            keys = await self._kv.keys()
        except NoKeysError:
            return []
        return sorted(uid_of(key) for key in keys)

    async def delete(self, uid: str) -> None:
        """Forget the latest state of ``uid``."""
        await self._kv.delete(key_of(uid))
