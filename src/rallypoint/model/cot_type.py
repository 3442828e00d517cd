"""Predicates on CoT type codes (``a-f-G-U-C``, ``b-t-f``, ``t-x-c-t``...)."""

from __future__ import annotations

from enum import IntEnum
from functools import lru_cache

PING = "t-x-c-t"
PONG = "t-x-c-t-r"
DELETE = "t-x-d-d"
CHAT = "b-t-f"
CHAT_DELIVERY_FAILURE = "b-t-f-s"
GROUPS_CHANGED = "t-x-g-c"
PROTOCOL_SUPPORT = "t-x-takp-v"
PROTOCOL_REQUEST = "t-x-takp-q"
PROTOCOL_RESPONSE = "t-x-takp-r"
EMERGENCY_CANCEL = "b-a-o-can"
EMERGENCY_TYPES = frozenset({"b-a-o-tbl", "b-a-o-pan", "b-a-o-opn", "b-a-g", "b-a-o-c"})
ALL_CHAT_ROOMS = "All Chat Rooms"

# Items other clients keep on their map and that a late joiner must see (taky's KEPT_EVENTS, extended).
PERSISTENT_PREFIXES = ("b-m-p", "b-m-r", "u-d-", "u-rb-", "u-r-b-", "b-r-f-h-c", "b-i-x-i")

# Control messages consumed by the server and never brokered (TAK Server's controlMsgTypes).
_CONTROL_TYPES = frozenset(
    {PING, PROTOCOL_SUPPORT, PROTOCOL_REQUEST, PROTOCOL_RESPONSE, "t-b", "t-b-a", "t-b-c", "t-b-q",
     "t-x-c-f", "t-x-c-m", "t-x-c-i-e", "t-x-c-i-d"}
)


class Priority(IntEnum):
    """Delivery classes, most urgent first (lower value = more urgent)."""

    EMERGENCY = 0
    MESSAGE = 1
    POSITION = 2
    OTHER_POSITION = 3
    BULK = 4


def is_atom(cot_type: str) -> bool:
    """``a-*``: a real thing (unit, vehicle, person)."""
    return cot_type.startswith("a-") or cot_type == "a"


def is_chat(cot_type: str) -> bool:
    """GeoChat message (``b-t-f``) or one of its receipts."""
    return cot_type == CHAT or cot_type.startswith("b-t-f-")


def is_emergency(cot_type: str) -> bool:
    """An emergency beacon being raised."""
    return cot_type in EMERGENCY_TYPES


def is_control(cot_type: str) -> bool:
    """Consumed by the server, never forwarded."""
    return cot_type in _CONTROL_TYPES


def is_persistent_item(cot_type: str) -> bool:
    """Markers, shapes, routes, casevac: replayed to late joiners until stale."""
    return cot_type.startswith(PERSISTENT_PREFIXES)


# Every event in flight asks once (Envelope): a device sends a handful of types over and over.
@lru_cache(maxsize=1024)
def priority_of(cot_type: str) -> Priority:
    """The delivery class of an event type."""
    if cot_type in EMERGENCY_TYPES or cot_type in (EMERGENCY_CANCEL, DELETE):
        return Priority.EMERGENCY
    if is_atom(cot_type):
        return Priority.POSITION
    if cot_type.startswith(("b-t-f", "t-", "b-f-t", "b-m-p-s-p-i")) or is_persistent_item(cot_type):
        return Priority.MESSAGE
    return Priority.BULK


# Classes where a newer report of a uid replaces the queued one (the latest state is all that matters).
COALESCED_CLASSES = frozenset({Priority.POSITION, Priority.OTHER_POSITION, Priority.BULK})


def delivery_priority(priority: Priority, *, own_group: bool) -> Priority:
    """The class an envelope is queued in for one receiver.

    ``priority_of`` only knows the type; whether a position belongs to the receiver's own team
    depends on who receives it, so the caller says ``own_group`` and positions of others rank
    below those of the receiver's own group.
    """
    if priority is Priority.POSITION and not own_group:
        return Priority.OTHER_POSITION
    return priority
