"""The difference between two plans, item by item (pure).

Items are matched by kind and id. An item in the newer plan only is added, in the older only
removed; one in both with other content is changed, with the names of the fields that differ.
Order follows the newer plan (then the older one for removals), so the same pair always gives the
same diff.
"""

from __future__ import annotations

import msgspec

from rallypoint.model.plan import ItemChange, ItemKind, ItemRef, Plan, PlanDiff, PlanItem, items_of


def diff_plans(before: Plan, after: Plan, *, from_version: int = 0, to_version: int = 0) -> PlanDiff:
    """What changed from ``before`` to ``after``."""
    old = {(kind, item.id): item for kind, item in items_of(before)}
    new = {(kind, item.id): item for kind, item in items_of(after)}
    added: list[ItemRef] = []
    changed: list[ItemChange] = []
    for key, item in new.items():
        previous = old.get(key)
        if previous is None:
            added.append(ItemRef(kind=key[0], id=key[1], item=item))
        elif previous != item:
            changed.append(ItemChange(kind=key[0], id=key[1], fields=changed_fields(previous, item),
                                      before=previous, after=item))
    removed = [ItemRef(kind=key[0], id=key[1], item=item) for key, item in old.items() if key not in new]
    return PlanDiff(from_version=from_version, to_version=to_version, added=tuple(added), removed=tuple(removed),
                    changed=tuple(changed))


def changed_fields(before: PlanItem, after: PlanItem) -> tuple[str, ...]:
    """Names of the fields whose values differ between two items of one kind."""
    return tuple(name for name in before.__struct_fields__
                 if getattr(before, name) != getattr(after, name))


def map_changes(diff: PlanDiff) -> tuple[list[tuple[ItemKind, PlanItem]], list[tuple[ItemKind, PlanItem]]]:
    """Items to (re)draw and items to erase for a diff: (added or changed, removed)."""
    drawn = [(ref.kind, ref.item) for ref in diff.added] + [(c.kind, c.after) for c in diff.changed]
    erased = [(ref.kind, ref.item) for ref in diff.removed]
    return drawn, erased


def to_builtins(diff: PlanDiff) -> object:
    """The diff as JSON-ready values (dicts, lists), as the API answers it."""
    return msgspec.to_builtins(diff)
