"""Video connections in TAK's XML shapes, sans-IO: ``/Marti/vcm`` documents and ``b-i-v`` CoT details.

``/Marti/vcm`` carries ``<videoConnections><feed>...</feed></videoConnections>``, each feed with
``uid``, ``alias``, ``active`` and either ``url`` or ``protocol``/``address``/``port``/``path`` (and
client tuning fields we keep out of the registry). A shared ``b-i-v`` event carries
``<__video url=...>`` and/or ``<ConnectionEntry protocol= address= port= path= alias= uid=/>``.
Parsing goes through the hardened parser (no DTD, no entities, bounded size and depth).
"""

from __future__ import annotations

from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from lxml import etree

from rallypoint.errors import LimitExceeded, RemoteProtocolError
from rallypoint.model.video import BadVideo, VideoConnection, VideoFeed, check_feed
from rallypoint.protocol.limits import Limits
from rallypoint.protocol.xmlsafe import parse_document, parse_fragment, reject_markup_declarations, strip_declaration

VIDEO_COT_TYPE = "b-i-v"
MAX_VCM_BYTES = 256 * 1024
_LIMITS = Limits(max_event_bytes=MAX_VCM_BYTES, max_depth=8)
# ATAK's "raw" protocol is MPEG-TS over UDP.
_PROTOCOL_ALIASES = {"raw": "udp"}


def url_from_parts(protocol: str, address: str, port: str | int | None, path: str) -> str:
    """The URL ATAK builds from a connection entry's protocol, address, port and path."""
    scheme = _PROTOCOL_ALIASES.get(protocol.strip().lower(), protocol.strip().lower())
    try:
        number = int(port) if port not in (None, "") else -1
    except ValueError:
        raise BadVideo(f"port {port!r} is not a number") from None
    host = address.strip()
    netloc = f"{host}:{number}" if number > 0 else host
    tail = path.strip()
    if tail and not tail.startswith("/"):
        tail = "/" + tail
    return f"{scheme}://{netloc}{tail}"


def parse_vcm(body: bytes) -> list[VideoFeed]:
    """The feeds of a ``/Marti/vcm`` document; :class:`BadVideo` when it is hostile or malformed."""
    if len(body) > MAX_VCM_BYTES:
        raise BadVideo(f"document larger than {MAX_VCM_BYTES} bytes")
    try:
        text = strip_declaration(body)
        reject_markup_declarations(text)
        root = parse_document(text, _LIMITS)
    except (RemoteProtocolError, LimitExceeded) as exc:
        raise BadVideo(f"not an acceptable XML document ({exc})") from None
    if root.tag != "videoConnections":
        raise BadVideo(f"expected <videoConnections>, got <{root.tag}>")
    feeds = [_vcm_feed(el) for el in root if el.tag == "feed"]
    if not feeds:
        raise BadVideo("no <feed> in <videoConnections>")
    return feeds


def _vcm_feed(el: etree._Element) -> VideoFeed:
    def text(name: str) -> str:
        child = el.find(name)
        return (child.text or "").strip() if child is not None else ""

    url = text("url") or url_from_parts(text("protocol"), text("address"), text("port"), text("path"))
    return check_feed(VideoFeed(
        uid=text("uid"), alias=text("alias") or text("uid"), url=url,
        active=text("active").lower() != "false",
        latitude=_number(text("latitude")), longitude=_number(text("longitude")),
    ))


def feed_from_cot(detail_xml: bytes, *, uid: str, callsign: str | None, lat: float, lon: float) -> VideoFeed:
    """The feed a ``b-i-v`` event's detail describes; :class:`BadVideo` when it names none."""
    try:
        detail = parse_fragment(detail_xml, _LIMITS)
    except (RemoteProtocolError, LimitExceeded) as exc:
        raise BadVideo(f"detail is not acceptable XML ({exc})") from None
    video = detail.find("__video")
    if video is None:
        raise BadVideo("no <__video> in the detail")
    entry = video.find("ConnectionEntry")
    url = (video.get("url") or "").strip()
    if not url and entry is not None:
        url = url_from_parts(entry.get("protocol", ""), entry.get("address", ""), entry.get("port"),
                             entry.get("path", ""))
    if not url:
        raise BadVideo("<__video> has neither a url nor a <ConnectionEntry>")
    alias = (entry.get("alias") if entry is not None else None) or callsign or uid
    # The point of a b-i-v is where the camera is; 0,0 with no fix means unknown.
    located = not (lat == 0.0 and lon == 0.0)
    return check_feed(VideoFeed(uid=uid, alias=alias.strip() or uid, url=url,
                                latitude=lat if located else None, longitude=lon if located else None))


def render_vcm(connections: list[VideoConnection]) -> bytes:
    """``<videoConnections>`` with one ``<feed>`` per feed, as ``GET /Marti/vcm`` answers."""
    parts = ["<?xml version='1.0' encoding='UTF-8' standalone='yes'?>", "<videoConnections>"]
    for connection in connections:
        for feed in connection.feeds:
            split = urlsplit(feed.url)
            try:
                port = split.port
            except ValueError:
                port = None
            path = split.path + (f"?{split.query}" if split.query else "")
            fields = [("uid", feed.uid), ("active", "true" if feed.active and connection.active else "false"),
                      ("alias", feed.alias), ("url", feed.url), ("protocol", split.scheme),
                      ("address", split.hostname or ""), ("port", str(port if port is not None else -1)),
                      ("path", path), ("roverPort", "-1"), ("ignoreEmbeddedKLV", "false"),
                      ("networkTimeout", "12000"), ("bufferTime", "-1"), ("rtspReliable", "0")]
            if feed.latitude is not None and feed.longitude is not None:
                fields += [("latitude", repr(feed.latitude)), ("longitude", repr(feed.longitude))]
            parts.append("<feed>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields) + "</feed>")
    parts.append("</videoConnections>")
    return "".join(parts).encode()


def _number(text: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise BadVideo(f"{text!r} is not a number") from None
