"""Stable track uids: from the source-given identity, or ``trk-<n>`` for identity-less tracks."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from rallypoint.model.track import Identity, IdentityKind

_PREFIX: Mapping[IdentityKind, str] = MappingProxyType(
    {
        IdentityKind.ICAO: "ICAO-",
        IdentityKind.MMSI: "MMSI-",
        IdentityKind.APRS: "APRS-",
        IdentityKind.TAK: "TAK-",
        IdentityKind.FEATURE: "FEATURE-",
        IdentityKind.GPS: "GPS-",
    }
)

# Which identity leads when an operator accepts a merge: the one people address (a TAK user),
# then transponders (fixed to the airframe or hull), then trackers that can move between objects.
PRIMACY = (
    IdentityKind.TAK,
    IdentityKind.ICAO,
    IdentityKind.MMSI,
    IdentityKind.APRS,
    IdentityKind.GPS,
    IdentityKind.FEATURE,
)


def uid_for(identity: Identity) -> str:
    """The track uid of an identity: ``ICAO-3c6444``, ``MMSI-227006760``, ``APRS-N0CALL-9``, ``TAK-<uid>``.

    ICAO addresses are written in lower-case hex and APRS callsigns in upper case whatever the
    source sent, so two sources naming the same object agree on the uid.
    """
    value = identity.value
    if identity.kind is IdentityKind.ICAO:
        value = value.lower()
    elif identity.kind is IdentityKind.APRS:
        value = value.upper()
    return _PREFIX[identity.kind] + value


def anonymous_uid(number: int) -> str:
    """The uid of the ``number``-th identity-less track this tracker started."""
    return f"trk-{number}"
