"""One error tree for the whole server.

Peer misbehaviour is a ``RemoteProtocolError``: it closes or penalises that session only and is counted.
Our own mistakes are ``LocalProtocolError`` or plain exceptions and are never swallowed.
"""

from __future__ import annotations


class RallypointError(Exception):
    """Root of every error Rallypoint raises on purpose."""


class ConfigError(RallypointError):
    """Invalid configuration: the server refuses to start."""


class ProtocolError(RallypointError):
    """Something is wrong with bytes on the wire."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something we reject.

    ``reason`` is a short, stable, metric-friendly label (``"xml_malformed"``, ``"doctype"``, ...).
    ``fatal`` means the stream cannot resynchronise and the session must be closed.
    """

    def __init__(self, reason: str, detail: str = "", *, fatal: bool = False) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.fatal = fatal


class LocalProtocolError(ProtocolError):
    """We tried to do something the protocol does not allow (a bug on our side)."""


class LimitExceeded(RemoteProtocolError):
    """A size or rate limit was hit: ``LimitExceeded("frame", limit=8192, got=9000)``."""

    def __init__(self, what: str, *, limit: int, got: int, fatal: bool = False) -> None:
        super().__init__(f"{what}_too_large", f"limit {limit}, got {got}", fatal=fatal)
        self.what = what
        self.limit = limit
        self.got = got


class AuthError(RallypointError):
    """Authentication or authorisation failed."""


class StorageError(RallypointError):
    """The storage backend failed."""


class BusError(RallypointError):
    """The message bus failed."""
