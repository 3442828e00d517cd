"""Builds the node's task service and ties it to the bus: announcements out, other nodes' changes in."""

from __future__ import annotations

from rallypoint.clock import Clock
from rallypoint.routing.directory import Directory
from rallypoint.security.policy import IdentityPolicy
from rallypoint.services.cluster_changes import Change, ChangeKind, ClusterChanges
from rallypoint.services.ingest import Ingest
from rallypoint.services.tasks import TaskService
from rallypoint.services.tasks_rules import TaskRules
from rallypoint.storage.factory import Stores


def task_service(stores: Stores, *, ingest: Ingest, directory: Directory, clock: Clock, identity: IdentityPolicy,
                 changes: ClusterChanges, check_period_s: float = 15.0) -> TaskService:
    """Tasks over the node's task store; sends through ``ingest``; changes shared with every node."""

    def callsign_uid(callsign: str) -> str | None:
        sub = directory.by_callsign(callsign)
        return directory.uid_of(sub.id) if sub is not None else None

    def device_of(principal: str) -> str | None:
        # A client streaming with the creator's certificate (or account) is the creator's device.
        for sub in directory:
            uid = directory.uid_of(sub.id)
            if uid is not None and getattr(sub, "principal", None) == principal:
                return uid
        return None

    tasks = TaskService(
        stores.tasks(), accept=ingest.accept, clock=clock, directory=directory, entered_here=ingest.entered_here,
        device_of=device_of,
        rules=TaskRules(holder_of=identity.holder_of, callsign_uid=callsign_uid), check_period_s=check_period_s,
    )
    tasks.on_change(lambda task_id: changes.announce(ChangeKind.TASK, task_id))

    async def changed(change: Change) -> None:
        if not change.local:
            await tasks.refresh(change.key)

    changes.listen(ChangeKind.TASK, changed)
    return tasks
