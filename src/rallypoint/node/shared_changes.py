"""What a node does when any node changes a mission, an account or the revocation list.

Wired by ``build_node``: each change is announced on the bus by the node that made it
(``services.cluster_changes``) and applied by every node as its own change is applied:

* a mission (or its subscriptions, roles, keywords): the other nodes re-read it from the store
  (shared with ``--storage postgresql://``) into their in-memory mirror;
* accounts (the admin API changed one): every node, the one that made it included, reloads the
  accounts and re-applies them to its live sessions (disabled accounts closed, groups re-applied);
* the revocation list: the node whose ``ca/revoked.json`` changed (``cert revoke`` ran on its
  data directory) sends the whole list; every other node adds what its own list lacks (so the
  revocation persists in every data directory) and aborts the sessions of revoked certificates.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import msgspec

from rallypoint.clock import Clock
from rallypoint.security.ca import CertificateAuthority
from rallypoint.security.revocation import Revocation, RevocationWatcher
from rallypoint.services.cluster_changes import Change, ChangeKind, ClusterChanges
from rallypoint.services.missions import MissionService

log = logging.getLogger("rallypoint")
_REVOCATIONS = msgspec.json.Decoder(list[Revocation])


def share_changes(
    changes: ClusterChanges,
    *,
    missions: MissionService | None,
    revocations: RevocationWatcher,
    ca: CertificateAuthority,
    clock: Clock,
    enforce_revocations: Callable[[], None],
    apply_accounts: Callable[[], Awaitable[None]],
) -> None:
    """Announce this node's changes on the bus and apply every node's changes here."""
    if missions is not None:
        mirror = missions
        mirror.on_change(lambda name: changes.announce(ChangeKind.MISSION, name))

        async def mission_changed(change: Change) -> None:
            if not change.local:
                await mirror.refresh(change.key)

        changes.listen(ChangeKind.MISSION, mission_changed)

    async def accounts_changed(change: Change) -> None:
        await apply_accounts()

    changes.listen(ChangeKind.ACCOUNTS, accounts_changed)

    registry = revocations.registry
    revocations.on_change(
        lambda: changes.announce(ChangeKind.REVOCATIONS, payload=registry.revoked_path.read_bytes()
                                 if registry.revoked_path.exists() else b"[]")
    )

    async def revocations_changed(change: Change) -> None:
        if change.local:
            return
        added = registry.merge(ca, clock, _REVOCATIONS.decode(change.payload))
        if added:
            log.info("revocations of another node added", extra={"added": len(added)})
        enforce_revocations()

    changes.listen(ChangeKind.REVOCATIONS, revocations_changed)
