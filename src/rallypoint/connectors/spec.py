"""Feed URLs (``sbs+tcp://host:30003``, ``ais+udp://0.0.0.0:10110``...) parsed into a frozen ``FeedSpec``.

A feed URL names the source format before the ``+`` and the transport after it. The transport
decides which runner carries the bytes; the format decides which decoder reads them. Every
combination that makes sense is listed in ``ALLOWED``; anything else is a ``FeedUrlError`` that
says what is wrong and what would be accepted. Parsing happens once, at the edge (configuration,
``--feed``, ``POST /api/feeds``); runners trust a ``FeedSpec``.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import parse_qs, unquote, urlsplit

import msgspec

from rallypoint.config import FeedConfig
from rallypoint.errors import ConfigError

DEFAULT_POLL_S = 5.0
MIN_POLL_S = 0.5
MAX_NAME = 64
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class FeedUrlError(ConfigError):
    """A feed URL or feed definition that cannot be used; the message says why."""


class SourceFormat(enum.StrEnum):
    """What the bytes are (picks the decoder)."""

    SBS = "sbs"  # SBS-1/BaseStation text (dump1090 port 30003)
    ADSB_JSON = "adsb-json"  # dump1090/readsb aircraft.json
    MODES = "modes"  # raw Mode-S/ADS-B hex lines (``*8D...;``, dump1090 port 30002)
    AIS = "ais"  # NMEA !AIVDM/!AIVDO
    NMEA = "nmea"  # NMEA 0183 GPS ($GPRMC, $GPGGA)
    APRS = "aprs"  # APRS-IS text lines
    COT = "cot"  # Cursor on Target XML from another system
    GEOJSON = "geojson"
    KML = "kml"  # KML or KMZ


class Transport(enum.StrEnum):
    """How the bytes arrive (picks the runner)."""

    TCP_CLIENT = "tcp"  # we connect to the source
    TCP_SERVER = "tcp-listen"  # the source connects to us (``?listen=1``)
    UDP = "udp"  # datagrams to a port, optionally a multicast group
    HTTP = "http"  # polled documents (http or https)
    FILE = "file"  # a local file, re-read when it changes


# Which transports each format may use. Stream formats read bytes as they come; document formats
# (a whole JSON/GeoJSON/KML document each time) are polled over HTTP or re-read from a file.
ALLOWED: dict[SourceFormat, frozenset[Transport]] = {
    SourceFormat.SBS: frozenset({Transport.TCP_CLIENT, Transport.TCP_SERVER}),
    SourceFormat.ADSB_JSON: frozenset({Transport.HTTP, Transport.FILE}),
    SourceFormat.MODES: frozenset({Transport.TCP_CLIENT, Transport.TCP_SERVER, Transport.UDP}),
    SourceFormat.AIS: frozenset({Transport.TCP_CLIENT, Transport.TCP_SERVER, Transport.UDP}),
    SourceFormat.NMEA: frozenset({Transport.TCP_CLIENT, Transport.TCP_SERVER, Transport.UDP}),
    SourceFormat.APRS: frozenset({Transport.TCP_CLIENT}),
    SourceFormat.COT: frozenset({Transport.TCP_CLIENT, Transport.TCP_SERVER, Transport.UDP}),
    SourceFormat.GEOJSON: frozenset({Transport.HTTP, Transport.FILE}),
    SourceFormat.KML: frozenset({Transport.HTTP, Transport.FILE}),
}
DOCUMENT_FORMATS = frozenset({SourceFormat.ADSB_JSON, SourceFormat.GEOJSON, SourceFormat.KML})
_QUERY_KEYS = {
    Transport.TCP_CLIENT: {"login", "passcode", "filter", "name"},
    Transport.TCP_SERVER: {"listen", "name"},
    Transport.UDP: {"interface", "name"},
    Transport.HTTP: {"interval", "name"},
    Transport.FILE: {"interval", "name"},
}


class FeedSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One feed, validated: what to decode, how to reach it, and where its tracks go.

    ``host``/``port`` are the peer to dial (TCP client) or the address to bind (TCP server, UDP).
    ``multicast`` is set when a UDP host is a multicast group (joined on ``interface``).
    ``document_url`` is the http(s) URL to poll; ``path`` the file to watch. ``groups`` empty means
    the default audience (readers of ``__ANON__``). ``quality_m`` is the horizontal accuracy
    (1-sigma, metres) assumed for observations that do not state their own.
    """

    name: str
    url: str
    format: SourceFormat
    transport: Transport
    host: str = ""
    port: int = 0
    multicast: str = ""
    interface: str = "0.0.0.0"
    document_url: str = ""
    path: str = ""
    interval_s: float = DEFAULT_POLL_S
    login: str = ""
    passcode: str = ""
    filter: str = ""
    # Where a Mode-S receiver stands (lat, lon): the reference that surface positions need.
    receiver: tuple[float, float] | None = None
    groups: tuple[str, ...] = ()
    stale_s: float | None = None
    quality_m: float | None = None


def parse_feed_url(
    url: str,
    *,
    name: str | None = None,
    groups: tuple[str, ...] = (),
    stale_s: float | None = None,
    quality_m: float | None = None,
) -> FeedSpec:
    """Validate ``url`` (and the feed's other fields) into a ``FeedSpec``; ``FeedUrlError`` says why not.

    The name defaults to ``?name=`` in the URL, else one derived from the format and the address.
    """
    url = url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if "+" not in scheme:
        raise FeedUrlError(f"feed URL {url!r}: the scheme must be <format>+<transport>, e.g. sbs+tcp://host:30003")
    fmt_text, transport_text = scheme.split("+", 1)
    try:
        fmt = SourceFormat(fmt_text)
    except ValueError:
        known = ", ".join(f.value for f in SourceFormat)
        raise FeedUrlError(f"feed URL {url!r}: unknown format {fmt_text!r} (known: {known})") from None
    query = _query(url, parts.query)
    transport = _transport(url, transport_text, query)
    if transport not in ALLOWED[fmt]:
        allowed = ", ".join(sorted(_scheme_text(t) for t in ALLOWED[fmt]))
        raise FeedUrlError(f"feed URL {url!r}: format {fmt.value} cannot use {transport_text} (use {allowed})")
    unknown = set(query) - _QUERY_KEYS[transport] - ({"receiver"} if fmt is SourceFormat.MODES else set())
    if fmt is not SourceFormat.APRS:
        unknown |= set(query) & {"login", "passcode", "filter"}
    if unknown:
        raise FeedUrlError(f"feed URL {url!r}: unknown parameter(s) {', '.join(sorted(unknown))}")
    fields: dict[str, object] = {}
    if transport is Transport.FILE:
        if parts.netloc not in ("", "localhost"):
            raise FeedUrlError(f"feed URL {url!r}: a file URL has no host (file:///absolute/path)")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise FeedUrlError(f"feed URL {url!r}: the file path must be absolute")
        fields["path"] = path
        fields["interval_s"] = _interval(url, query)
    elif transport is Transport.HTTP:
        if not parts.hostname:
            raise FeedUrlError(f"feed URL {url!r}: no host to poll")
        http_scheme = "https" if transport_text == "https" else "http"
        rest = urlsplit(url)._replace(scheme=http_scheme, query=_without(parts.query, {"interval", "name"}))
        fields["document_url"] = rest.geturl()
        fields["host"] = parts.hostname
        fields["port"] = _port(url, parts, default=443 if http_scheme == "https" else 80)
        fields["interval_s"] = _interval(url, query)
    else:
        if not parts.hostname:
            raise FeedUrlError(f"feed URL {url!r}: needs host:port")
        if parts.path not in ("", "/"):
            raise FeedUrlError(f"feed URL {url!r}: a {transport_text} feed has no path")
        fields["host"] = parts.hostname
        fields["port"] = _port(url, parts, default=None)
        if transport is Transport.UDP:
            fields.update(_multicast(url, parts.hostname, query))
        if fmt is SourceFormat.APRS:
            fields.update(_aprs(url, query))
        if "receiver" in query:
            fields["receiver"] = _receiver(url, query["receiver"])
    feed_name = name or query.get("name") or _default_name(fmt, fields)
    if not _NAME_RE.match(feed_name):
        raise FeedUrlError(
            f"feed name {feed_name!r}: 1-{MAX_NAME} letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if stale_s is not None and not 1.0 <= stale_s <= 86_400.0:
        raise FeedUrlError(f"feed {feed_name!r}: stale_s must be between 1 and 86400 seconds (got {stale_s})")
    if quality_m is not None and not 0.0 < quality_m <= 100_000.0:
        raise FeedUrlError(f"feed {feed_name!r}: quality must be an accuracy in metres above 0 (got {quality_m})")
    for group in groups:
        if not group or len(group) > 128 or any(c in group for c in "<>&\"'"):
            raise FeedUrlError(f"feed {feed_name!r}: invalid group name {group!r}")
    return FeedSpec(
        name=feed_name, url=url, format=fmt, transport=transport, groups=tuple(dict.fromkeys(groups)),
        stale_s=stale_s, quality_m=quality_m, **fields,  # type: ignore[arg-type]
    )


def _query(url: str, raw: str) -> dict[str, str]:
    parsed = parse_qs(raw, keep_blank_values=True, strict_parsing=False)
    out: dict[str, str] = {}
    for key, values in parsed.items():
        if len(values) != 1:
            raise FeedUrlError(f"feed URL {url!r}: parameter {key!r} given more than once")
        out[key] = values[0]
    return out


def _transport(url: str, text: str, query: dict[str, str]) -> Transport:
    match text:
        case "tcp":
            listen = query.get("listen", "").lower()
            if listen not in ("", "0", "1", "true", "false", "yes", "no"):
                raise FeedUrlError(f"feed URL {url!r}: listen must be 1 or 0 (got {listen!r})")
            return Transport.TCP_SERVER if listen in ("1", "true", "yes") else Transport.TCP_CLIENT
        case "udp":
            return Transport.UDP
        case "http" | "https":
            return Transport.HTTP
        case "file":
            return Transport.FILE
    raise FeedUrlError(f"feed URL {url!r}: unknown transport {text!r} (known: tcp, udp, http, https, file)")


def _scheme_text(transport: Transport) -> str:
    return {Transport.TCP_SERVER: "tcp with ?listen=1"}.get(transport, transport.value)


def _port(url: str, parts: object, *, default: int | None) -> int:
    try:
        port = parts.port  # type: ignore[attr-defined]
    except ValueError:
        port = -1
    if port is None:
        if default is None:
            raise FeedUrlError(f"feed URL {url!r}: needs a port")
        return default
    if not 1 <= port <= 65535:
        raise FeedUrlError(f"feed URL {url!r}: the port must be 1-65535")
    return int(port)


def _interval(url: str, query: dict[str, str]) -> float:
    raw = query.get("interval")
    if raw is None:
        return DEFAULT_POLL_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not MIN_POLL_S <= value <= 86_400.0:
        raise FeedUrlError(f"feed URL {url!r}: interval must be {MIN_POLL_S}-86400 seconds (got {raw!r})")
    return value


def _multicast(url: str, host: str, query: dict[str, str]) -> dict[str, str]:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise FeedUrlError(f"feed URL {url!r}: a UDP feed binds an IP address (got {host!r})") from None
    interface = query.get("interface", "0.0.0.0")
    try:
        ipaddress.IPv4Address(interface)
    except ValueError:
        raise FeedUrlError(f"feed URL {url!r}: interface must be an IPv4 address (got {interface!r})") from None
    if address.is_multicast:
        if address.version != 4:
            raise FeedUrlError(f"feed URL {url!r}: only IPv4 multicast groups are supported")
        return {"multicast": host, "interface": interface}
    if "interface" in query:
        raise FeedUrlError(f"feed URL {url!r}: interface only applies to a multicast group")
    return {}


def _aprs(url: str, query: dict[str, str]) -> dict[str, str]:
    login = query.get("login", "").upper()
    if not re.match(r"^[A-Z0-9]{1,9}(-[A-Z0-9]{1,2})?$", login):
        raise FeedUrlError(f"feed URL {url!r}: APRS-IS needs login=CALLSIGN[-SSID]")
    passcode = query.get("passcode", "-1")
    if not re.match(r"^-?\d{1,5}$", passcode):
        raise FeedUrlError(f"feed URL {url!r}: passcode must be a number (-1 for receive-only)")
    flt = query.get("filter", "")
    if any(c in flt for c in "\r\n") or len(flt) > 512:
        raise FeedUrlError(f"feed URL {url!r}: the filter must be one line of at most 512 characters")
    return {"login": login, "passcode": passcode, "filter": flt}


def _receiver(url: str, raw: str) -> tuple[float, float]:
    try:
        lat, lon = (float(part) for part in raw.split(","))
    except ValueError:
        raise FeedUrlError(f"feed URL {url!r}: receiver must be lat,lon in degrees (got {raw!r})") from None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise FeedUrlError(f"feed URL {url!r}: receiver {raw!r} is not a position")
    return lat, lon


def _without(raw: str, keys: set[str]) -> str:
    kept = [part for part in raw.split("&") if part and part.split("=", 1)[0] not in keys]
    return "&".join(kept)


def _default_name(fmt: SourceFormat, fields: dict[str, object]) -> str:
    if fields.get("path"):
        stem = str(fields["path"]).rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
        base = f"{fmt.value}-{stem}"
    else:
        base = f"{fmt.value}-{fields.get('multicast') or fields.get('host')}-{fields.get('port')}"
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", base)
    return cleaned[:MAX_NAME]


def feed_specs(feeds: Sequence[FeedConfig]) -> list[FeedSpec]:
    """The configured feeds, validated; ``FeedUrlError`` names the first bad one. Names must be unique."""
    specs = [
        parse_feed_url(f.url, name=f.name or None, groups=f.groups, stale_s=f.stale_s, quality_m=f.quality)
        for f in feeds
    ]
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise FeedUrlError(f"feeds: two feeds are named {spec.name!r} (give one a name)")
        seen.add(spec.name)
    return specs


def public_url(spec: FeedSpec) -> str:
    """The feed URL as shown by the API and logs: an APRS-IS passcode is replaced by ``***``."""
    if not spec.passcode or spec.passcode == "-1":
        return spec.url
    return re.sub(r"(passcode=)[^&]*", r"\1***", spec.url)
