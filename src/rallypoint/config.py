"""Settings: one frozen struct built once from defaults, a TOML file, the environment and CLI flags.

Precedence (later wins): built-in defaults < TOML file (``--config``) < ``RALLYPOINT_*`` environment
variables < command-line flags. Every field is documented in ``docs/configuration.md``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from rallypoint.errors import ConfigError
from rallypoint.validation_errors import describe

ENV_PREFIX = "RALLYPOINT_"
MAX_WORKERS = 64


class FederationPeer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One federated server: ``[[rallypoint.federation_peers]]`` in TOML, a JSON list in the environment.

    With ``host`` empty the peer only dials in; otherwise this server dials ``host:port``. ``ca`` is the
    PEM file of the CA that issued the peer's certificate: it identifies the peer when it dials in and
    verifies it when we dial out. ``groups_out`` maps our group -> their group (what we send);
    ``groups_in`` maps their group -> our group (what we accept). Unmapped groups never cross.
    """

    name: str
    host: str = ""
    port: int = 9001
    ca: str = ""
    # Name to check in the peer's server certificate when it differs from ``host``.
    tls_name: str = ""
    groups_out: dict[str, str] = msgspec.field(default_factory=dict)
    groups_in: dict[str, str] = msgspec.field(default_factory=dict)
    # Per-link message compression ("none", "gzip" or "deflate"): standard gRPC compression, so it
    # stays compatible with any federation v2 peer. Applies to what this server sends on the link.
    compression: str = "none"
    # Outbound byte budget of this link (bytes/s); unset: the node-wide federation_budget_bytes_per_s,
    # 0: unlimited. A satellite peer gets a small one while a LAN peer stays unlimited.
    budget_bytes_per_s: float | None = None


class FeedConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One source feed: ``[[rallypoint.feeds]]`` in TOML, a JSON list in the environment, or ``--feed URL``.

    ``url`` names format and transport (``sbs+tcp://host:30003``; docs/feeds.md lists them).
    ``groups`` empty: the feed's tracks go to readers of ``__ANON__``. ``stale_s`` overrides the
    per-domain stale time; ``quality`` is the accuracy (1-sigma metres) assumed when a report states
    none. The URL itself is validated when the node is built (``connectors.spec``).
    """

    name: str = ""
    url: str
    groups: tuple[str, ...] = ()
    stale_s: float | None = None
    quality: float | None = None
    # A scripted exercise's feed (docs/exercises.md): its tracks are marked as that exercise's traffic.
    exercise: str | None = None


class MeshtasticConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One Meshtastic mesh: ``[[rallypoint.meshtastic]]`` in TOML or ``--feed meshtastic+tcp://host:4403``.

    ``url`` is ``meshtastic+tcp://host:4403``, ``meshtastic+serial:///dev/ttyUSB0`` or
    ``meshtastic+mqtt://broker:1883/msh/REGION/2/e/CHANNEL?key=BASE64`` (docs/meshtastic.md).
    ``groups``: where mesh traffic goes (empty: ``__ANON__``); ``send_groups``: whose traffic goes
    into the mesh (empty: ``groups``); ``send``: what crosses (``pli``, ``chat``, ``emergency``,
    ``marker``, ``route``, ``shape``, ``rab``, and ``aircraft`` when listed); ``v2_dictionaries``
    replaces or adds TAKPacketV2 zstd dictionaries by id (the plugin's two are shipped).
    ``bytes_per_s``/``burst_bytes`` are the channel's byte budget (payload plus radio header).
    """

    name: str = ""
    url: str
    groups: tuple[str, ...] = ()
    send_groups: tuple[str, ...] = ()
    send: tuple[str, ...] = ("pli", "chat", "emergency", "marker", "route", "shape", "rab")
    bytes_per_s: float = 20.0
    burst_bytes: int = 512
    channel: int = 0
    v2_dictionaries: dict[int, str] = msgspec.field(default_factory=dict)


class WebConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[web]`` (or ``[rallypoint.web]``): the picture page (docs/web.md, "Tile URL").

    ``tile_url``: a raster tile URL template (``https://host/{z}/{x}/{y}.png``) the page draws over the
    base map; its origin, and no other, is added to the page's Content-Security-Policy.
    """

    tile_url: str = ""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything the server can be told. Port 0 disables a listener."""

    data_dir: str = "./rallypoint-data"
    bind: str = "0.0.0.0"
    # Plaintext listeners (CoT TCP, HTTP) bind here: loopback unless an operator opts in.
    plain_bind: str = "127.0.0.1"
    cot_port: int = 0
    tls_port: int = 8089
    api_port: int = 8443
    http_port: int = 8080
    enroll_port: int = 8446
    # UDP mesh input (CoT XML and protobuf datagrams): off unless enabled (``--udp`` or ``--udp-port``).
    udp_enabled: bool = False
    udp_port: int = 6969
    # Mesh input is unauthenticated: it binds to plain_bind (loopback) unless set here.
    udp_bind: str = ""
    # Multicast groups to join (ATAK's SA mesh is 239.2.3.1) on the interface with this address.
    udp_multicast: tuple[str, ...] = ()
    udp_multicast_interface: str = "0.0.0.0"
    federation_port: int = 9001
    # Every enabled listener binds an OS-chosen free port (tests, several servers on one host);
    # the ``rallypoint ready`` log line reports the ports actually bound.
    ephemeral_ports: bool = False
    storage: str = ""
    bus: str = "local"
    # Server processes sharing the listening ports (SO_REUSEPORT) and one NATS bus; above 1 this
    # process supervises them (node/supervisor.py).
    workers: int = 1
    demo: bool = False
    demo_units: int = 8
    # Groups the demo units report to; empty: __ANON__ and every group an account or a configured
    # certificate reads, so whoever logs in sees the demo.
    demo_groups: tuple[str, ...] = ()
    server_names: tuple[str, ...] = ("localhost", "127.0.0.1")
    # Empty: generated on first start and kept in <data_dir>/node-id (node/node_id.py).
    node_id: str = ""
    # Host name clients use to reach this server (connection packages, download URLs);
    # defaults to the first of server_names.
    public_host: str = ""
    max_http_body_bytes: int = 64 * 1024
    max_upload_bytes: int = 100 * 1024 * 1024
    # Password of PKCS#12 files handed to clients (TAK's conventional default, for compatibility).
    p12_password: str = "atakatak"
    # Certificate name (CN) -> TAK groups it reads and writes; anyone else is in __ANON__.
    client_groups: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)
    # Certificate name (CN) -> the only uids it may publish device SA for (else: the first one it
    # sends); ["*"] makes it a gateway that relays device SA for uids nobody holds.
    client_uids: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)
    offer_protobuf: bool = True
    offer_compression: bool = True
    max_event_bytes: int = 256 * 1024
    max_connections: int = 10_000
    outbox_max_items: int = 10_000
    # Bytes a receiver's socket may hold before back-pressure (outbox, coalescing) starts.
    write_buffer_high: int = 1024 * 1024
    # Bytes read from one client per loop iteration: a flooding sender is served in slices so
    # writes to receivers keep pace with reading (without it, fan-out stalls behind big reads).
    read_chunk_bytes: int = 32 * 1024
    # Byte budget per streaming client (0 = unlimited): positions are thinned before anything
    # more urgent is delayed, and the budget is never exceeded.
    session_budget_bytes_per_s: float = 0.0
    # Budgets by client class: certificate name or group -> bytes/s. A client's own name wins, else
    # the smallest budget among the groups it reads, else session_budget_bytes_per_s.
    client_budgets: dict[str, float] = msgspec.field(default_factory=dict)
    # A receiver that reads nothing (or whose outbox stays full) this long is disconnected.
    slow_receiver_timeout_s: float = 30.0
    idle_timeout_s: float = 120.0
    # Abuse limits (0 disables a limit). ATAK reports at most every 2 s, so these leave ample room.
    max_events_per_s: float = 100.0
    events_burst: int = 500
    max_connections_per_ip: int = 1000
    ip_events_per_s: float = 5000.0
    ip_events_burst: int = 20_000
    max_connections_per_identity: int = 10
    tls_handshake_timeout_s: float = 10.0
    # A client that starts an event and does not finish it within this time is disconnected (slow loris).
    frame_timeout_s: float = 30.0
    # HTTP ports: a request's head must arrive within this time of the connection (or the previous
    # response); a request body may stall at most body_timeout between reads. 0 disables.
    http_header_timeout_s: float = 10.0
    http_body_timeout_s: float = 30.0
    # Password logins (enrollment, API tokens): this many failures in a row lock the account for
    # login_lockout_s. Certificates keep working while an account is locked.
    login_max_failures: int = 5
    login_lockout_s: float = 300.0
    # Lifetime of API and OAuth tokens; the map page renews its token before expiry while in use.
    token_ttl_s: int = 900
    emergency_repeat_s: float = 3.0
    emergency_max_age_s: float = 86_400.0
    # Store-and-forward: how long addressed mail waits for an offline recipient (capped by its stale
    # time) and how many messages one recipient may have waiting.
    mailbox_ttl_s: float = 86_400.0
    mailbox_max_per_identity: int = 1_000
    retention_days: float = 30.0
    storage_batch: int = 2000
    storage_flush_s: float = 0.2
    log_level: str = "INFO"
    log_format: str = "json"
    shutdown_grace_s: float = 5.0
    # Federation (TAK Server federation v2: gRPC over mutual TLS on federation_port); off by default.
    federation_enabled: bool = False
    federation_peers: tuple[FederationPeer, ...] = msgspec.field(default_factory=tuple)
    # Remote contacts of a link that stays down this long are removed from local maps (t-x-d-d).
    federation_contact_timeout_s: float = 60.0
    federation_max_hops: int = 3
    # Delay before dialing peers after start, so local clients are back before a backlog arrives.
    federation_connect_delay_s: float = 0.0
    federation_backoff_max_s: float = 30.0
    # Unacknowledged priority messages kept per peer; past this the oldest are dropped.
    federation_queue_max: int = 100_000
    # Byte budget per federation link, outbound (0 = unlimited): positions are thinned, priority
    # messages deferred (never dropped), and the bytes sent never exceed the budget plus its burst.
    federation_budget_bytes_per_s: float = 0.0
    # Source feeds (ADS-B, AIS, APRS, NMEA, CoT, GeoJSON/KML): docs/feeds.md.
    feeds: tuple[FeedConfig, ...] = msgspec.field(default_factory=tuple)
    # Meshtastic radio meshes bridged both ways: docs/meshtastic.md.
    meshtastic: tuple[MeshtasticConfig, ...] = msgspec.field(default_factory=tuple)
    # The picture page: a remote tile URL template (docs/web.md).
    web: WebConfig = msgspec.field(default_factory=WebConfig)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.data_path / 'events.db').resolve()}"


_FIELDS = {f.name: f for f in msgspec.structs.fields(Settings)}


def _coerce_env(name: str, raw: str) -> Any:
    field = _FIELDS[name]
    default = field.default
    if field.default_factory is dict or name in ("federation_peers", "feeds", "meshtastic", "web"):
        try:
            return msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise ConfigError(f"{ENV_PREFIX}{name.upper()}: expected a JSON object (or list), got {raw!r}") from exc
    if isinstance(default, bool):
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}: expected a boolean, got {raw!r}")
    if isinstance(default, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError as exc:
            raise ConfigError(f"{ENV_PREFIX}{name.upper()}: expected an integer, got {raw!r}") from exc
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError as exc:
            raise ConfigError(f"{ENV_PREFIX}{name.upper()}: expected a number, got {raw!r}") from exc
    return raw


def load_settings(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build and validate settings; raises :class:`ConfigError` with the offending key."""
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            with config_file.open("rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc}") from exc
        section = data.get("rallypoint", data)
        for key, value in section.items():
            name = key.replace("-", "_")
            if name not in _FIELDS:
                raise ConfigError(f"{config_file}: unknown setting {key!r}")
            values[name] = value
    env = os.environ if environ is None else environ
    for name in _FIELDS:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = _coerce_env(name, raw)
    for name, value in (overrides or {}).items():
        if value is not None:
            if name not in _FIELDS:
                raise ConfigError(f"unknown setting {name!r}")
            values[name] = value
    try:
        settings = msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid setting: {describe(exc, Settings, values, subject='the configuration')}") from exc
    _validate(settings)
    return settings


def with_feed_urls(settings: Settings, urls: Sequence[str]) -> Settings:
    """``settings`` plus one feed per ``--feed URL`` (after those of the configuration file)."""
    if not urls:
        return settings
    # Meshtastic URLs name a mesh to bridge both ways, not a source of tracks.
    mesh = tuple(MeshtasticConfig(url=url) for url in urls if url.strip().lower().startswith("meshtastic+"))
    feeds = tuple(FeedConfig(url=url) for url in urls if not url.strip().lower().startswith("meshtastic+"))
    settings = msgspec.structs.replace(
        settings, feeds=(*settings.feeds, *feeds), meshtastic=(*settings.meshtastic, *mesh),
    )
    _validate(settings)
    return settings


def _validate(s: Settings) -> None:
    for name in ("cot_port", "tls_port", "api_port", "http_port", "enroll_port", "udp_port", "federation_port"):
        port = getattr(s, name)
        if not 0 <= port <= 65535:
            raise ConfigError(f"{name}: {port} is not a port number (0 disables)")
    if not 1 <= s.workers <= MAX_WORKERS:
        raise ConfigError(f"workers: must be between 1 and {MAX_WORKERS} (got {s.workers})")
    if s.max_event_bytes < 1024:
        raise ConfigError("max_event_bytes: must be at least 1024")
    if s.log_format not in {"json", "text"}:
        raise ConfigError(f"log_format must be one of: json, text (got {s.log_format!r})")
    for peer in s.federation_peers:
        if peer.compression not in {"none", "gzip", "deflate"}:
            raise ConfigError(f"federation peer {peer.name!r}: compression must be none, gzip or deflate")
        if peer.budget_bytes_per_s is not None and not peer.budget_bytes_per_s >= 0:
            raise ConfigError(f"federation peer {peer.name!r}: budget_bytes_per_s must be 0 or more")
    names = [feed.name for feed in s.feeds if feed.name]
    if len(names) != len(set(names)):
        raise ConfigError("feeds: two feeds have the same name")
    if s.feeds and s.workers > 1:
        # Every worker would run every feed: each source read N times, each track sent N times.
        raise ConfigError("feeds: run feeds in a server with workers = 1 (each worker would run every feed)")
    if s.meshtastic and s.workers > 1:
        raise ConfigError("meshtastic: run meshes in a server with workers = 1 (each worker would open the radio)")
    for group in s.udp_multicast:
        try:
            is_multicast = ipaddress.IPv4Address(group).is_multicast
        except ValueError:
            is_multicast = False
        if not is_multicast:
            raise ConfigError(f"udp_multicast: {group!r} is not an IPv4 multicast address")
    if s.outbox_max_items < 16:
        raise ConfigError("outbox_max_items: must be at least 16")
    if s.login_max_failures < 1 or s.login_lockout_s < 0:
        raise ConfigError("login_max_failures: must be at least 1; login_lockout_s: must not be negative")
    if s.token_ttl_s < 1:
        raise ConfigError("token_ttl_s: must be at least 1 second")
    if s.http_header_timeout_s < 0 or s.http_body_timeout_s < 0:
        raise ConfigError("http_header_timeout_s, http_body_timeout_s: must not be negative (0 disables)")
    tile_origin(s.web.tile_url)


# A host name or an IP literal, and an optional port: nothing that could end a CSP source expression.
_ORIGIN = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")
_TILE_KEYS = ("{z}", "{x}", "{y}")


def tile_origin(template: str) -> str | None:
    """The origin (``scheme://host[:port]``) of a tile URL template; None when there is no template.

    ConfigError unless the template is an http or https URL without credentials, whose host is a plain
    name or address, that holds ``{z}``, ``{x}`` and ``{y}`` and no whitespace, quote or ``;``.
    """
    if not template:
        return None
    where = "web.tile_url"
    parts = urlsplit(template)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{where}: an http:// or https:// URL template expected, got {template[:100]!r}")
    if "@" in parts.netloc:
        raise ConfigError(f"{where}: no user or password in the URL (every browser that opens the page sees it)")
    if not _ORIGIN.match(parts.netloc):
        raise ConfigError(f"{where}: {parts.netloc[:100]!r} is not a host name or address with an optional port")
    missing = [key for key in _TILE_KEYS if key not in template]
    if missing:
        raise ConfigError(f"{where}: the template needs {', '.join(missing)} (e.g. https://host/{{z}}/{{x}}/{{y}}.png)")
    if any(c.isspace() or c in "'\";,\\<>" for c in template):
        raise ConfigError(f"{where}: no whitespace, quotes, ';', ',', backslash or angle brackets in the URL")
    return f"{parts.scheme}://{parts.netloc.lower()}"
