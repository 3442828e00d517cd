"""Who calls the Mission API and what its query says: the client uid it claims, flags, numbers, times.

A request names its client uid in a query parameter (``creatorUid``, ``uid`` or ``clientUid``,
depending on the route). That text is only a claim, so it is checked against the streaming identity
binding (:class:`~rallypoint.security.policy.IdentityPolicy`), which records the principal whose
certificate first sent SA for each uid:

* a uid held by another principal is refused (403): no one acts, subscribes or takes an
  invitation under someone else's device uid;
* a uid held by the caller's own principal is *held* (``Caller.uid_held``): invitations addressed
  to that uid or to its callsign apply to the caller;
* a uid no principal holds may be used (a client may call before its stream has sent SA), but it
  proves nothing, so uid and callsign invitations do not apply to it. Anonymous callers share one
  identity and hold every uid that no principal holds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from starlette.datastructures import QueryParams
from starlette.requests import Request

from rallypoint.clock import datetime_to_ms
from rallypoint.model.mission import Role, parse_role
from rallypoint.security.policy import IdentityPolicy
from rallypoint.services.missions_access import Caller, InvalidMissionRequest, MissionForbidden
from rallypoint.web.context import RequestIdentity

# Where each route reads the caller's own uid. Routes that name *another* client in ``uid`` or
# ``clientUid`` (the uid removed from contents, the subscriber whose role changes) read only
# ``creatorUid`` for the caller.
CALLER_UID_PARAMS = ("creatorUid", "uid", "clientUid")
CREATOR_UID_ONLY = ("creatorUid",)
# Whole-number parameters (expiration in epoch seconds, secago) stay far inside a 64-bit column.
MAX_INTEGER = 10**15
_INTEGER = re.compile(r"-?[0-9]{1,18}")


class UidNotYours(MissionForbidden):
    """The claimed client uid is bound to another principal."""


def caller_of(request: Request, who: RequestIdentity, identity: IdentityPolicy | None,
              uid_params: tuple[str, ...]) -> Caller:
    """The :class:`Caller` of a request; ``UidNotYours`` if it claims a uid another principal holds."""
    params = request.query_params
    client_uid = next((params[p] for p in uid_params if params.get(p)), "")
    held = False
    if client_uid:
        holder = identity.holder_of(client_uid) if identity is not None else None
        if holder is not None and holder != who.principal:
            raise UidNotYours("this client uid belongs to another identity")
        held = holder is not None or who.principal is None
    return Caller(
        principal=who.principal, write_groups=who.write_groups, read_groups=who.read_groups,
        client_uid=client_uid, token=bearer(request), admin=who.role == "admin", uid_held=held,
    )


def bearer(request: Request) -> str | None:
    """The bearer token of the ``Authorization`` header, if any."""
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def flag(value: str | None) -> bool:
    """A query flag: ``true``, ``1`` or ``yes``."""
    return (value or "").strip().lower() in ("true", "1", "yes")


def integer(params: QueryParams, name: str, default: int) -> int:
    """Query parameter ``name`` as a whole number, or ``default`` when absent."""
    value = params.get(name)
    if not value:
        return default
    if not _INTEGER.fullmatch(value.strip()):
        raise InvalidMissionRequest(f"{name} must be a whole number (got {value[:32]!r})")
    number = int(value)
    if abs(number) > MAX_INTEGER:
        raise InvalidMissionRequest(f"{name} must be between {-MAX_INTEGER} and {MAX_INTEGER} (got {number})")
    return number


def role_param(params: QueryParams, name: str) -> Role | None:
    """Query parameter ``name`` as a mission role (TAK name or short alias); None when absent."""
    value = params.get(name)
    if not value:
        return None
    found = parse_role(value)
    if found is None:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidMissionRequest(f"{name} must be one of: {allowed} (got {value[:64]!r})")
    return found


def time_ms(params: QueryParams, name: str) -> int | None:
    """Query parameter ``name``, an ISO 8601 time, as epoch milliseconds; None when absent."""
    value = params.get(name)
    if not value:
        return None
    try:
        return datetime_to_ms(datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC))
    except (ValueError, OverflowError, OSError):
        raise InvalidMissionRequest(
            f"{name} must be an ISO 8601 time such as 2024-05-01T12:00:00Z (got {value[:32]!r})"
        ) from None


def time_window(request: Request, now_ms: int) -> tuple[int, int | None]:
    """``(since, until)`` from ``start``, ``end`` and ``secago`` (seconds before now)."""
    p = request.query_params
    since = time_ms(p, "start") or 0
    if p.get("secago"):
        since = max(since, now_ms - integer(p, "secago", 0) * 1000)
    return since, time_ms(p, "end")
