"""Video connections: what the Marti video API and ``b-i-v`` CoT describe, URL checks and redaction.

A connection (TAK Server's ``VideoConnection``) holds one or more feeds, each with one stream URL.
The older ``/Marti/vcm`` XML and a shared ``b-i-v`` CoT describe one feed; they become a connection
holding that single feed under the same uid. URLs are checked once here, at the edge; a URL is shown
whole only to the principal that added it, everyone else sees it without ``user:pass@`` and with
secret query values replaced (see :func:`redact_url`).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

MAX_URL_CHARS = 2048
MAX_ALIAS_CHARS = 200
MAX_UID_CHARS = 200
MAX_FEEDS_PER_CONNECTION = 32
# Schemes a TAK client's video player opens; http(s) only for HLS playlists.
STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "srt", "rtmp", "rtmps", "udp"})
HLS_SCHEMES = frozenset({"http", "https"})
# Query keys whose values are secrets (SRT passphrase and stream id, tokens, passwords).
SECRET_KEYS = frozenset({"passphrase", "password", "pass", "pwd", "token", "access_token", "key", "secret",
                         "streamid", "auth", "sig", "signature", "user", "username"})
REDACTED = "REDACTED"


class BadVideo(ValueError):
    """A video connection or URL that is refused; the message says why in words fit for the caller."""


class VideoFeed(msgspec.Struct, frozen=True):
    """One stream of a connection."""

    uid: str
    alias: str
    url: str
    active: bool = True
    latitude: float | None = None
    longitude: float | None = None


class VideoConnection(msgspec.Struct, frozen=True):
    """A registered video connection: its feeds, the groups that see it and who added it."""

    uid: str
    alias: str
    feeds: tuple[VideoFeed, ...]
    groups: frozenset[str]
    owner: str | None
    updated_ms: int
    active: bool = True


def _check_text(value: str, what: str, limit: int) -> str:
    text = value.strip()
    if not text:
        raise BadVideo(f"{what} is empty")
    if len(text) > limit:
        raise BadVideo(f"{what} is longer than {limit} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise BadVideo(f"{what} contains control characters")
    return text


def check_uid(uid: str) -> str:
    """A valid uid (non-empty, bounded, no control characters or slashes), stripped."""
    text = _check_text(uid, "uid", MAX_UID_CHARS)
    if "/" in text:
        raise BadVideo("uid contains a slash")
    return text


def check_alias(alias: str) -> str:
    """A valid alias (non-empty, bounded, no control characters), stripped."""
    return _check_text(alias, "alias", MAX_ALIAS_CHARS)


def check_url(url: str) -> str:
    """``url`` if it names a stream a client can open, else :class:`BadVideo` saying why."""
    text = _check_text(url, "url", MAX_URL_CHARS)
    if any(c.isspace() for c in text):
        raise BadVideo("url contains spaces")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise BadVideo("url is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in STREAM_SCHEMES | HLS_SCHEMES:
        allowed = ", ".join(sorted(STREAM_SCHEMES | HLS_SCHEMES))
        raise BadVideo(f"url scheme {scheme or '(none)'!r} is not a video stream; use one of {allowed}")
    if not parts.hostname:
        raise BadVideo("url has no host")
    if port == 0:
        raise BadVideo("url port 0 is not a port")
    if scheme in HLS_SCHEMES and not parts.path.lower().endswith(".m3u8"):
        raise BadVideo("http(s) video urls must name an HLS playlist (.m3u8)")
    return text


def check_feed(feed: VideoFeed) -> VideoFeed:
    """``feed`` with its uid, alias and URL checked and its position in range."""
    for value, name, bound in ((feed.latitude, "latitude", 90.0), (feed.longitude, "longitude", 180.0)):
        if value is not None and not -bound <= value <= bound:
            raise BadVideo(f"{name} {value} is out of range")
    return msgspec.structs.replace(feed, uid=check_uid(feed.uid), alias=check_alias(feed.alias),
                                   url=check_url(feed.url))


def redact_url(url: str) -> str:
    """``url`` without credentials: no ``user:pass@``, secret query values replaced by ``REDACTED``."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if k.lower() in SECRET_KEYS else v) for k, v in pairs], safe="/:")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def view_for(connection: VideoConnection, principal: str | None) -> VideoConnection:
    """``connection`` as ``principal`` may see it: whole for its owner, URLs redacted for anyone else."""
    if principal is not None and connection.owner is not None and principal.lower() == connection.owner.lower():
        return connection
    feeds = tuple(msgspec.structs.replace(f, url=redact_url(f.url)) for f in connection.feeds)
    return msgspec.structs.replace(connection, feeds=feeds)
