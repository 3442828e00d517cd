"""JetStream durability settings from the bus URL, the stream, buckets and consumer a node uses, and
bringing the stream and buckets in line with them.

``nats://a:4222,nats://b:4222?replicas=3&max_age=172800&cluster=ops&storage=file``: the query
after the last server applies to the whole bus.

* ``replicas`` (1..5, default 1): copies JetStream keeps of the stream and of the KV buckets; more
  than 1 needs a NATS cluster with JetStream (and at least that many servers).
* ``storage`` (``file``, default, or ``memory``): where JetStream keeps them. Only file storage
  keeps acknowledged messages through a NATS restart.
* ``max_age`` (seconds, 60..31536000, default 86400): how long the stream keeps a message, and how
  long a node's durable consumer survives the node's absence.
* ``cluster`` (default ``rallypoint``): the cluster name in every subject, stream and bucket name
  (``bus/subjects.py``); nodes with different names share nothing.

A node creates what is missing with these settings; when the stream or a bucket exists with other
replicas, retention or limits, the node updates it and logs each change (``jetstream settings
changed``). NATS cannot change a stream's storage type: a node refuses to start rather than run
on other storage than it was told.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from enum import Enum
from typing import Literal
from urllib.parse import parse_qsl

import msgspec
import nats.js.errors
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

from rallypoint.bus.subjects import DEFAULT_CLUSTER, Subjects, subjects_for
from rallypoint.errors import BusError, ConfigError

log = logging.getLogger(__name__)

Storage = Literal["file", "memory"]
MAX_REPLICAS = 5
MAX_AGE_LIMITS_S = (60.0, 365 * 86_400.0)
LEADER_WAIT_S = 10.0
# Stream settings a node brings in line with its own; any other setting an operator changed is kept.
_MANAGED = ("subjects", "retention", "discard", "max_age", "duplicate_window", "max_msg_size", "num_replicas")


class JetStreamSettings(msgspec.Struct, frozen=True):
    """What the bus URL's query says about JetStream (defaults: one file-stored copy for a day)."""

    cluster: str = DEFAULT_CLUSTER
    replicas: int = 1
    storage: Storage = "file"
    max_age_s: float = 86_400.0

    @property
    def storage_type(self) -> api.StorageType:
        """The nats-py storage type."""
        return api.StorageType.FILE if self.storage == "file" else api.StorageType.MEMORY


def split_bus_url(url: str) -> tuple[str, JetStreamSettings]:
    """The servers part of a ``nats://`` bus URL and its JetStream settings; ``ConfigError`` if bad."""
    servers, _, query = url.partition("?")
    seen: dict[str, str] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigError("bus URL: the part after '?' must be name=value pairs joined by '&'") from None
    for name, value in pairs:
        if name not in ("replicas", "storage", "max_age", "cluster"):
            raise ConfigError(f"bus URL: unknown parameter {name!r}; use replicas, storage, max_age or cluster")
        if name in seen:
            raise ConfigError(f"bus URL: {name} is given twice")
        seen[name] = value
    settings = JetStreamSettings(
        cluster=seen.get("cluster", DEFAULT_CLUSTER),
        replicas=_replicas(seen.get("replicas", "1")),
        storage=_storage(seen.get("storage", "file")),
        max_age_s=_max_age(seen.get("max_age", "86400")),
    )
    subjects_for(settings.cluster)  # the cluster name must be a NATS token
    return servers, settings


def stream_config(
    subjects: Subjects,
    *,
    storage: api.StorageType,
    replicas: int,
    max_age_s: float,
    duplicate_window_s: float,
    max_msg_bytes: int,
) -> api.StreamConfig:
    """The cluster's stream: every JetStream subject, oldest discarded past ``max_age_s``."""
    return api.StreamConfig(
        name=subjects.stream,
        subjects=[subjects.jetstream_wildcard],
        storage=storage,
        num_replicas=replicas,
        retention=api.RetentionPolicy.LIMITS,
        discard=api.DiscardPolicy.OLD,
        max_age=max_age_s,
        duplicate_window=duplicate_window_s,
        max_msg_size=max_msg_bytes,
    )


def consumer_config(max_age_s: float) -> api.ConsumerConfig:
    """A node's durable pull consumer, which outlives the node's absence for ``max_age_s``."""
    return api.ConsumerConfig(
        # A new node starts from now; an existing one resumes where it left off.
        deliver_policy=api.DeliverPolicy.NEW,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=30.0,
        max_ack_pending=10_000,
        inactive_threshold=max_age_s,
    )


async def ensure_buckets(
    js: JetStreamContext,
    subjects: Subjects,
    uid_bucket: str,
    *,
    storage: api.StorageType,
    replicas: int,
    lease_ttl_s: float,
) -> tuple[KeyValue, KeyValue, KeyValue]:
    """The latest-state, lease and uid-claim buckets (one entry per key), created or brought in line.

    An existing lease bucket keeps its TTL (set by the node that made it): every node uses that bucket.
    """
    latest, _ = await ensure_bucket(
        js,
        api.KeyValueConfig(
            bucket=subjects.latest_bucket,
            history=1,
            storage=storage,
            replicas=replicas,
        ),
    )
    leases, _ = await ensure_bucket(
        js,
        api.KeyValueConfig(
            bucket=subjects.lease_bucket,
            history=1,
            ttl=lease_ttl_s,
            storage=storage,
            replicas=replicas,
        ),
    )
    uids, _ = await ensure_bucket(
        js,
        api.KeyValueConfig(
            bucket=uid_bucket,
            history=1,
            storage=storage,
            replicas=replicas,
        ),
    )
    return latest, leases, uids


async def ensure_stream(js: JetStreamContext, wanted: api.StreamConfig) -> list[str]:
    """Create the stream, or update it to ``wanted``'s managed settings; returns the changes made."""
    assert wanted.name is not None
    try:
        info = await js.stream_info(wanted.name)
    except nats.js.errors.NotFoundError:
        try:
            await js.add_stream(wanted)
            log.info("jetstream stream created", extra=_described(wanted))
            return []
        except nats.js.errors.BadRequestError:
            # Another node created it a moment ago (with other settings): bring it in line below.
            info = await js.stream_info(wanted.name)
    current = info.config
    changes = _differences(current, wanted, _MANAGED)
    _refuse_other_storage(wanted.name, current.storage, wanted.storage)
    if changes:
        await js.update_stream(dataclasses.replace(current, **{f: getattr(wanted, f) for f in _MANAGED}))
        log.warning("jetstream settings changed", extra={"stream": wanted.name, "changes": changes})
        if (current.num_replicas or 1) != (wanted.num_replicas or 1):
            await _led(js, wanted.name)
    return changes


async def ensure_bucket(js: JetStreamContext, wanted: api.KeyValueConfig) -> tuple[KeyValue, list[str]]:
    """Create the KV bucket, or update its replicas to ``wanted``'s (its history and TTL are kept)."""
    stream = f"KV_{wanted.bucket}"
    try:
        info = await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        try:
            bucket = await js.create_key_value(wanted)
            log.info(
                "jetstream bucket created",
                extra={"bucket": wanted.bucket, "replicas": wanted.replicas, "storage": _name(wanted.storage)},
            )
            return bucket, []
        except nats.js.errors.BadRequestError:
            info = await js.stream_info(stream)
    current = info.config
    _refuse_other_storage(stream, current.storage, wanted.storage)
    changes = []
    if (current.num_replicas or 1) != wanted.replicas:
        changes.append(f"num_replicas: {current.num_replicas or 1} -> {wanted.replicas}")
        await js.update_stream(dataclasses.replace(current, num_replicas=wanted.replicas))
        log.warning("jetstream settings changed", extra={"stream": stream, "changes": changes})
        await _led(js, stream)
    return await js.key_value(wanted.bucket), changes


async def _led(js: JetStreamContext, stream: str) -> None:
    """Wait (up to ``LEADER_WAIT_S``) for the stream's new replica group to elect a leader.

    Right after a change of replicas the stream has no leader for a moment, and NATS refuses a new
    consumer on it ("insufficient resources"); it offers no notification, so ask until it has one.
    """
    deadline = asyncio.get_running_loop().time() + LEADER_WAIT_S
    while asyncio.get_running_loop().time() < deadline:
        info = await js.stream_info(stream)
        if info.cluster is None or info.cluster.leader is not None:
            return
        await asyncio.sleep(0.1)
    log.warning("jetstream stream has no leader yet", extra={"stream": stream, "waited_s": LEADER_WAIT_S})


def _differences(current: api.StreamConfig, wanted: api.StreamConfig, fields: tuple[str, ...]) -> list[str]:
    changes = []
    for field in fields:
        old, new = getattr(current, field), getattr(wanted, field)
        if field == "num_replicas":
            old, new = old or 1, new or 1
        if isinstance(old, float) or isinstance(new, float):
            same = old is not None and new is not None and math.isclose(old, new, rel_tol=1e-9, abs_tol=1e-6)
        else:
            same = old == new
        if not same:
            changes.append(f"{field}: {_name(old)} -> {_name(new)}")
    return changes


def _refuse_other_storage(stream: str, current: api.StorageType | None, wanted: api.StorageType | None) -> None:
    # nats-py reports the server's value as a plain string; StorageType is a str enum, so they compare.
    if current is not None and wanted is not None and current != wanted:
        raise BusError(
            f"JetStream stream {stream} keeps its messages in {_name(current)} storage and this node is set to"
            f" {_name(wanted)}; NATS cannot change a stream's storage type. Set storage={_name(current)} in the"
            f" bus URL, or stop every node and remove the stream (its messages are lost) to change it"
        )


def _described(config: api.StreamConfig) -> dict[str, object]:
    return {
        "stream": config.name,
        "replicas": config.num_replicas,
        "storage": _name(config.storage),
        "max_age_s": config.max_age,
    }


def _name(value: object) -> object:
    return value.value if isinstance(value, Enum) else value


def _replicas(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"bus URL: replicas must be a whole number, got {value!r}") from None
    if not 1 <= number <= MAX_REPLICAS:
        raise ConfigError(f"bus URL: replicas must be between 1 and {MAX_REPLICAS}, got {number}")
    return number


def _storage(value: str) -> Storage:
    if value == "file":
        return "file"
    if value == "memory":
        return "memory"
    raise ConfigError(f"bus URL: storage must be file or memory, got {value!r}")


def _max_age(value: str) -> float:
    low, high = MAX_AGE_LIMITS_S
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"bus URL: max_age must be a number of seconds, got {value!r}") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise ConfigError(f"bus URL: max_age must be between {low:g} and {high:g} seconds, got {value}")
    return number
