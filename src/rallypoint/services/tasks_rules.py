"""Who may see a task and who may move it, and the errors the task service answers with.

* The **creator** (the principal that created it) and an **admin** may make any move the lifecycle
  has, cancelling included, and see every task they created (an admin: every task).
* The **assignee** may acknowledge, start, finish (``done``) or give up (``failed``), never cancel.
  A unit is the assignee when its client uid or callsign is the task's, or, for an API caller, when
  it holds that uid (its device's SA bound it); a team task's assignee is anyone reading the group.
* Anyone else reading one of the groups the creator wrote to may see the task, not move it.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from rallypoint.model.task import Task, TaskState

ASSIGNEE_MOVES = frozenset({TaskState.ACKNOWLEDGED, TaskState.IN_PROGRESS, TaskState.DONE, TaskState.FAILED})


class Actor(msgspec.Struct, frozen=True):
    """Who asks: an API principal, or a TAK client (its uid and callsign), with its groups.

    ``label`` is what the task's history records as ``by``.
    """

    label: str
    principal: str | None = None
    uid: str | None = None
    callsign: str | None = None
    read_groups: frozenset[str] = frozenset()
    write_groups: frozenset[str] = frozenset()
    admin: bool = False


class TaskError(Exception):
    """A refused task operation; ``status`` is the HTTP answer, ``error`` a stable label."""

    status = 400
    error = "invalid_task"


class TaskNotFound(TaskError):
    """No such task, or one the caller may not see (the two look the same)."""

    status = 404
    error = "not_found"


class TaskForbidden(TaskError):
    """The caller may see the task but not make this move."""

    status = 403
    error = "forbidden"


class TaskConflict(TaskError):
    """The lifecycle has no such move from the task's current state."""

    status = 409
    error = "invalid_transition"


class TaskRules:
    """Applies the rules above; ``holder_of(uid)`` names the principal that holds a client uid."""

    def __init__(self, holder_of: Callable[[str], str | None] | None = None,
                 callsign_uid: Callable[[str], str | None] | None = None) -> None:
        self._holder_of = holder_of or (lambda uid: None)
        self._callsign_uid = callsign_uid or (lambda callsign: None)

    def is_creator(self, actor: Actor, task: Task) -> bool:
        """The actor created the task (same principal, or the creator's own device)."""
        if actor.principal is not None and actor.principal == task.creator:
            return True
        return actor.uid is not None and actor.uid == task.creator_uid

    def is_assignee(self, actor: Actor, task: Task) -> bool:
        """The actor is the unit (or in the team) the task is assigned to."""
        a = task.assignee
        if a.group is not None:
            return a.group in actor.read_groups
        if actor.uid is not None and actor.uid == a.uid:
            return True
        if actor.callsign is not None and actor.callsign == a.callsign:
            return True
        if actor.principal is None:
            return False
        uid = a.uid if a.uid is not None else self._callsign_uid(a.callsign or "")
        return uid is not None and self._holder_of(uid) == actor.principal

    def may_see(self, actor: Actor, task: Task) -> bool:
        """Admin, creator, assignee, or a reader of one of the task's groups."""
        return (actor.admin or self.is_creator(actor, task) or self.is_assignee(actor, task)
                or not actor.read_groups.isdisjoint(task.groups))

    def check_move(self, actor: Actor, task: Task, wanted: TaskState) -> None:
        """Raise ``TaskForbidden`` unless ``actor`` may move ``task`` to ``wanted`` (visibility checked first)."""
        if actor.admin or self.is_creator(actor, task):
            return
        if self.is_assignee(actor, task):
            if wanted in ASSIGNEE_MOVES:
                return
            raise TaskForbidden("only the creator or an admin may cancel a task")
        raise TaskForbidden("only the creator, the assignee or an admin may change a task")
