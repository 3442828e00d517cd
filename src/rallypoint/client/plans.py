"""Operation plan calls of the REST clients (``/api/missions/{name}/plan``; see ``docs/plans.md``).

Plans travel as JSON (dicts and lists); exports come back as bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rallypoint.client.calls import Call, params, segment

EXPORT_TYPES = {"datapackage": "application/zip", "kml": "application/vnd.google-earth.kml+xml",
                "geojson": "application/geo+json"}


def _path(mission: str, rest: str = "") -> str:
    return f"/api/missions/{segment(mission)}/plan{rest}"


class PlanCalls:
    """Plan operations; ``_call`` sends a :class:`Call` (and is awaitable in the async client)."""

    def _call(self, call: Call) -> Any:
        raise NotImplementedError

    def plan(self, mission: str, *, version: int | None = None) -> Any:
        """The mission's plan: ``{"mission", "version", "author", "time_ms", "reason", "plan"}`` (version 0: none)."""
        return self._call(Call("GET", _path(mission), params(version=version)))

    def replace_plan(self, mission: str, plan: dict[str, Any], reason: str, *,
                     base_version: int | None = None) -> Any:
        """Store ``plan`` as the new version; with ``base_version``, only if that is still the newest (409)."""
        body: dict[str, Any] = {"plan": plan, "reason": reason}
        if base_version is not None:
            body["base_version"] = base_version
        return self._call(Call("PUT", _path(mission), json=body))

    def edit_plan(self, mission: str, reason: str, *, upsert: dict[str, Any] | None = None,
                  remove: Iterable[str] = (), base_version: int | None = None) -> Any:
        """Add or replace items (``upsert``: a partial plan, matched by id) and remove items by id."""
        body: dict[str, Any] = {"reason": reason, "upsert": upsert or {}, "remove": list(remove)}
        if base_version is not None:
            body["base_version"] = base_version
        return self._call(Call("PATCH", _path(mission), json=body))

    def plan_versions(self, mission: str, *, limit: int | None = None) -> Any:
        """The plan's versions, oldest first (author, time, reason; without the plans)."""
        return self._call(Call("GET", _path(mission, "/versions"), params(limit=limit)))

    def plan_diff(self, mission: str, from_version: int, to_version: int) -> Any:
        """``{"added", "removed", "changed"}`` between two versions (0 is the empty plan)."""
        return self._call(Call("GET", _path(mission, "/diff"), {"from": from_version, "to": to_version}))

    def revert_plan(self, mission: str, version: int, reason: str) -> Any:
        """A new version equal to ``version``."""
        return self._call(Call("POST", _path(mission, "/revert"), json={"version": version, "reason": reason}))

    def export_plan(self, mission: str, *, format: str = "geojson", version: int | None = None) -> Any:
        """The plan as file bytes: ``datapackage`` (zip), ``kml`` or ``geojson``."""
        return self._call(Call("GET", _path(mission, "/export"), params(format=format, version=version), raw=True))

    def import_plan(self, mission: str, data: bytes, *, format: str, reason: str | None = None,
                    replace: bool = False) -> Any:
        """Import a file (merged by item id, or replacing the plan) as a new version."""
        query = params(format=format, reason=reason, mode="replace" if replace else None)
        return self._call(Call("POST", _path(mission, "/import"), query, content=data,
                               content_type=EXPORT_TYPES.get(format, "application/octet-stream")))

    def publish_plan(self, mission: str, *, package: bool = False) -> Any:
        """Send the plan's drawings to the mission's subscribers again: ``{"sent": n, "package": sha256 | None}``.

        ``package=True`` also stores the plan as a data package in the mission's contents.
        """
        return self._call(Call("POST", _path(mission, "/publish"), params(package="true" if package else None)))
