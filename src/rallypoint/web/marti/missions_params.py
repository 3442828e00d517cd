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

from datetime import UTC, datetime

from starlette.requests import Request

from rallypoint.clock import datetime_to_ms
from rallypoint.security.policy import IdentityPolicy
from rallypoint.services.missions_access import Caller, InvalidMissionRequest, MissionForbidden
from rallypoint.web.context import RequestIdentity

# Where each route reads the caller's own uid. Routes that name *another* client in ``uid`` or
# ``clientUid`` (the uid removed from contents, the subscriber whose role changes) read only
# ``creatorUid`` for the caller.
CALLER_UID_PARAMS = ("creatorUid", "uid", "clientUid")
CREATOR_UID_ONLY = ("creatorUid",)


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


def integer(value: str | None, default: int) -> int:
    """A whole number, or ``default`` when absent."""
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidMissionRequest(f"not a number: {value[:32]!r}") from None


def time_ms(value: str | None) -> int | None:
    """An ISO-8601 time as epoch milliseconds, or None when absent."""
    if not value:
        return None
    try:
        return datetime_to_ms(datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC))
    except ValueError:
        raise InvalidMissionRequest(f"not a time: {value[:32]!r}") from None


def time_window(request: Request, now_ms: int) -> tuple[int, int | None]:
    """``(since, until)`` from ``start``, ``end`` and ``secago`` (seconds before now)."""
    p = request.query_params
    since = time_ms(p.get("start")) or 0
    if p.get("secago"):
        since = max(since, now_ms - integer(p.get("secago"), 0) * 1000)
    return since, time_ms(p.get("end"))
