"""NATS names of a cluster: subjects per delivery class, the JetStream stream and the KV bucket.

Positions and bulk feeds go over core NATS: at most once, and a lost report is replaced by the
next one (the outbox coalesces them by uid anyway). Everything whose loss a user would notice
(emergencies, deletes, chat, tasks, designations, mission and account changes: the
``EMERGENCY`` and ``MESSAGE`` classes of ``model.cot_type.priority_of``) goes through
JetStream: stored, acknowledged, deduplicated by message id and replayed to a node that was away.

    rp.<cluster>.position     core NATS   own-team and other positions (Priority.POSITION)
    rp.<cluster>.bulk         core NATS   feeds and anything unclassified (Priority.BULK)
    rp.<cluster>.js.emergency JetStream   emergencies, cancels, deletes (Priority.EMERGENCY)
    rp.<cluster>.js.message   JetStream   chat, tasks, map items, mission changes (Priority.MESSAGE)
    stream RP_<CLUSTER>       subjects rp.<cluster>.js.>, file storage
    KV bucket rp_<cluster>_latest   latest state per uid
    KV bucket rp_<cluster>_leases   one holder per cluster-wide job (bus/lease.py), entries expire
"""

from __future__ import annotations

import hashlib
import re
from enum import Enum

import msgspec

from rallypoint.errors import ConfigError
from rallypoint.model.cot_type import Priority

DEFAULT_CLUSTER = "rallypoint"
# Subject tokens, stream, consumer and bucket names share this alphabet safely.
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class Transport(Enum):
    """How a class travels: ``CORE`` at most once, ``JETSTREAM`` stored and acknowledged."""

    CORE = "core"
    JETSTREAM = "jetstream"


_CLASS_TOKENS: dict[Priority, str] = {
    Priority.EMERGENCY: "js.emergency",
    Priority.MESSAGE: "js.message",
    Priority.POSITION: "position",
    Priority.OTHER_POSITION: "position",
    Priority.BULK: "bulk",
}


def transport_of(priority: Priority) -> Transport:
    """Whether envelopes of ``priority`` go over core NATS or JetStream."""
    if priority in (Priority.EMERGENCY, Priority.MESSAGE):
        return Transport.JETSTREAM
    return Transport.CORE


class Subjects(msgspec.Struct, frozen=True):
    """Every NATS name used by one cluster; build with :func:`subjects_for`."""

    cluster: str
    prefix: str
    core_wildcard: str
    jetstream_wildcard: str
    stream: str
    latest_bucket: str
    lease_bucket: str

    def subject_for(self, priority: Priority) -> str:
        """The subject an envelope of ``priority`` is published on."""
        return f"{self.prefix}.{_CLASS_TOKENS[priority]}"

    def consumer_for(self, node: str) -> str:
        """The durable JetStream consumer name of ``node`` (node ids may hold characters NATS refuses)."""
        return "rp_" + safe_name(node)

    def core_subjects(self) -> tuple[str, ...]:
        """The core NATS subjects a node subscribes to."""
        return tuple(sorted({self.subject_for(p) for p in Priority if transport_of(p) is Transport.CORE}))


def subjects_for(cluster: str = DEFAULT_CLUSTER) -> Subjects:
    """The names of ``cluster``; ``ConfigError`` when it cannot be a NATS subject token."""
    if not _NAME.fullmatch(cluster):
        raise ConfigError(f"bus cluster name {cluster!r}: use 1 to 64 letters, digits, '-' or '_'")
    prefix = f"rp.{cluster}"
    return Subjects(
        cluster=cluster,
        prefix=prefix,
        core_wildcard=f"{prefix}.*",
        jetstream_wildcard=f"{prefix}.js.>",
        stream=f"RP_{cluster.upper()}",
        latest_bucket=f"rp_{cluster}_latest",
        lease_bucket=f"rp_{cluster}_leases",
    )


def safe_name(name: str) -> str:
    """``name`` if NATS accepts it as a consumer name, else a readable and still unique substitute."""
    if _NAME.fullmatch(name):
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"{_UNSAFE.sub('_', name)[:48]}_{digest}"
