"""``[[meshtastic]]`` entries and ``--feed meshtastic+...`` URLs validated into a frozen ``MeshSpec``.

``meshtastic+tcp://host[:4403]`` (a node's client API), ``meshtastic+serial:///dev/ttyUSB0``
(same framing on a serial line, ``?baud=115200``), ``meshtastic+mqtt://broker[:1883]/msh/REGION/2/e/CHANNEL``
with ``?key=BASE64`` (the channel key; default ``AQ==``), ``?node=!a1b2c3d4`` (the id we publish as)
and ``?tls=1``. A bad entry is a ``ConfigError`` that says what is wrong.
"""

from __future__ import annotations

import enum
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import msgspec

from rallypoint.config import MeshtasticConfig
from rallypoint.connectors.meshtastic.crypto import ChannelKeyError, key_from_base64
from rallypoint.connectors.meshtastic.dictionaries import bundled, usable_dictionary
from rallypoint.connectors.meshtastic.packets import MAX_PAYLOAD
from rallypoint.errors import ConfigError

SEND_KINDS = frozenset({"pli", "chat", "emergency", "marker", "route", "shape", "rab", "aircraft"})
DEFAULT_SEND = SEND_KINDS - {"aircraft"}  # a feed's sky would fill the channel: aircraft only when asked
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TOPIC_RE = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_.!-]+)*/2/e/[A-Za-z0-9_.-]{1,12}$")


class MeshLinkKind(enum.StrEnum):
    """How the gateway reaches the mesh."""

    TCP = "tcp"
    SERIAL = "serial"
    MQTT = "mqtt"


class MeshSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One mesh, validated. ``key`` is the expanded AES key (MQTT), ``topic`` the channel's topic root."""

    name: str
    url: str
    kind: MeshLinkKind
    host: str = ""
    port: int = 0
    device: str = ""
    baud: int = 115200
    topic: str = ""
    channel_name: str = ""
    key: bytes = b""
    node_num: int = 0
    tls: bool = False
    groups: tuple[str, ...] = ()
    send_groups: tuple[str, ...] = ()
    send: frozenset[str] = DEFAULT_SEND
    bytes_per_s: float = 20.0
    burst_bytes: int = 512
    channel: int = 0
    dictionaries: dict[int, bytes] = msgspec.field(default_factory=dict)


def mesh_spec(config: MeshtasticConfig, *, default_node: int = 0) -> MeshSpec:
    """Validate one ``[[meshtastic]]`` entry (reads the configured zstd dictionaries)."""
    url = config.url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if not scheme.startswith("meshtastic+"):
        raise ConfigError(f"meshtastic URL {url!r}: the scheme is meshtastic+tcp, meshtastic+serial or meshtastic+mqtt")
    try:
        kind = MeshLinkKind(scheme.removeprefix("meshtastic+"))
    except ValueError:
        raise ConfigError(f"meshtastic URL {url!r}: unknown transport (use tcp, serial or mqtt)") from None
    # A '+' is kept as itself (not a space, as in HTML forms): base64 channel keys hold it.
    query = {k: v[-1] for k, v in parse_qs(parts.query.replace("+", "%2B"), keep_blank_values=True).items()}
    allowed = {"name"} | {MeshLinkKind.SERIAL: {"baud"}, MeshLinkKind.MQTT: {"key", "node", "tls"}}.get(kind, set())
    unknown = set(query) - allowed
    if unknown:
        raise ConfigError(f"meshtastic URL {url!r}: unknown parameter(s) {', '.join(sorted(unknown))}")
    fields: dict[str, object] = {}
    if kind is MeshLinkKind.SERIAL:
        if parts.netloc or not parts.path.startswith("/"):
            raise ConfigError(f"meshtastic URL {url!r}: a serial URL is meshtastic+serial:///dev/ttyUSB0")
        fields["device"] = unquote(parts.path)
        fields["baud"] = _int(url, query.get("baud", "115200"), "baud", 1200, 4_000_000)
    else:
        if not parts.hostname:
            raise ConfigError(f"meshtastic URL {url!r}: needs a host")
        fields["host"] = parts.hostname
        try:
            fields["port"] = parts.port or (4403 if kind is MeshLinkKind.TCP else 1883)
        except ValueError:
            raise ConfigError(f"meshtastic URL {url!r}: the port is not a number from 1 to 65535") from None
    if kind is MeshLinkKind.TCP and parts.path not in ("", "/"):
        raise ConfigError(f"meshtastic URL {url!r}: a TCP node URL has no path")
    if kind is MeshLinkKind.MQTT:
        topic = parts.path.strip("/")
        if not _TOPIC_RE.match(topic):
            raise ConfigError(f"meshtastic URL {url!r}: the path is the channel topic, msh/REGION/2/e/CHANNEL")
        fields["topic"] = topic
        fields["channel_name"] = topic.rsplit("/", 1)[1]
        try:
            fields["key"] = key_from_base64(query.get("key", "AQ=="))
        except ChannelKeyError as exc:
            raise ConfigError(f"meshtastic URL {url!r}: {exc}") from None
        node = query.get("node", "")
        if node:
            if not re.fullmatch(r"!?[0-9a-fA-F]{1,8}", node):
                raise ConfigError(f"meshtastic URL {url!r}: node is a node id like !a1b2c3d4")
            fields["node_num"] = int(node.lstrip("!"), 16)
        else:
            fields["node_num"] = default_node
        fields["tls"] = query.get("tls", "0") in ("1", "true", "yes")
    name = config.name or query.get("name") or _default_name(kind, fields)
    if not _NAME_RE.match(name):
        raise ConfigError(f"meshtastic name {name!r}: 1-64 letters, digits, '.', '_' or '-'")
    unknown_kinds = set(config.send) - SEND_KINDS
    if unknown_kinds:
        got = ", ".join(sorted(unknown_kinds))
        raise ConfigError(f"meshtastic {name!r}: send names pli, chat, emergency, marker, route, shape, rab"
                          f" or aircraft (got {got})")
    if not 0.1 <= config.bytes_per_s <= 100_000:
        raise ConfigError(f"meshtastic {name!r}: bytes_per_s must be between 0.1 and 100000")
    if config.burst_bytes < MAX_PAYLOAD + 16:
        raise ConfigError(f"meshtastic {name!r}: burst_bytes must hold one full packet ({MAX_PAYLOAD + 16} bytes)")
    if not 0 <= config.channel <= 7:
        raise ConfigError(f"meshtastic {name!r}: channel is a channel index from 0 to 7")
    for group in (*config.groups, *config.send_groups):
        if not group or len(group) > 128 or any(c in group for c in "<>&\"'"):
            raise ConfigError(f"meshtastic {name!r}: invalid group name {group!r}")
    dictionaries = bundled()  # the plugin's own; a configured file replaces the one of its id
    for dict_id, path in config.v2_dictionaries.items():
        if not 0 <= dict_id <= 63:
            raise ConfigError(f"meshtastic {name!r}: a V2 dictionary id is 0 to 63 (got {dict_id})")
        try:
            dictionaries[dict_id] = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"meshtastic {name!r}: cannot read V2 dictionary {path!r}: {exc.strerror}") from None
        if not usable_dictionary(dictionaries[dict_id]):
            raise ConfigError(f"meshtastic {name!r}: V2 dictionary {path!r} is not a zstd dictionary zstd can use")
    return MeshSpec(
        name=name, url=url, kind=kind, groups=config.groups, send_groups=config.send_groups or config.groups,
        send=frozenset(config.send), bytes_per_s=config.bytes_per_s, burst_bytes=config.burst_bytes,
        channel=config.channel, dictionaries=dictionaries, **fields,  # type: ignore[arg-type]
    )


def mesh_specs(configs: tuple[MeshtasticConfig, ...], *, default_node: int = 0) -> list[MeshSpec]:
    """Every configured mesh validated; names must be unique."""
    specs = [mesh_spec(c, default_node=default_node) for c in configs]
    names = [s.name for s in specs]
    if len(names) != len(set(names)):
        raise ConfigError("meshtastic: two meshes have the same name (set name = ...)")
    return specs


def _int(url: str, text: str, what: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"meshtastic URL {url!r}: {what} must be a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"meshtastic URL {url!r}: {what} must be between {low} and {high}")
    return value


def _default_name(kind: MeshLinkKind, fields: dict[str, object]) -> str:
    if kind is MeshLinkKind.SERIAL:
        return "mesh-" + str(fields["device"]).rsplit("/", 1)[-1]
    if kind is MeshLinkKind.MQTT:
        return f"mesh-{fields['channel_name']}"
    return f"mesh-{fields['host']}"
