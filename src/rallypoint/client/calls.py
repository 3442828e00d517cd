"""What the REST clients send, and the data package and mission operations (shared by both clients)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

Params = dict[str, str | int]


@dataclass(frozen=True)
class Call:
    """One API request, independent of how it is sent."""

    method: str
    path: str
    params: Params = field(default_factory=dict)
    json: Any = None
    authenticated: bool = True
    # A raw body (uploads) and whether the answer is raw bytes (downloads) rather than JSON.
    content: bytes | None = None
    content_type: str | None = None
    raw: bool = False


def time_param(value: int | str | None) -> str | None:
    """A time query value: epoch milliseconds or ISO 8601, sent as given."""
    return None if value is None else str(value)


def params(**values: Any) -> Params:
    """Query parameters without the ``None`` ones; sequences joined with commas."""
    out: Params = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, tuple | list):
            value = ",".join(str(v) for v in value)
        out[key] = value if isinstance(value, int) and not isinstance(value, bool) else str(value)
    return out


def area(bbox: Iterable[float] | None, antimeridian: bool) -> Params:
    """``bbox`` (west, south, east, north) and, when it crosses the 180th meridian, ``antimeridian``."""
    return params(bbox=tuple(bbox) if bbox is not None else None, antimeridian="true" if antimeridian else None)


def segment(value: str) -> str:
    """``value`` quoted as one path segment."""
    return quote(value, safe="")


class CatalogCalls:
    """Data packages and missions; ``_call`` sends a :class:`Call` (and is awaitable in the async client)."""

    def _call(self, call: Call) -> Any:
        raise NotImplementedError

    # -- data packages --------------------------------------------------------------------------

    def packages(self, *, keyword: str | None = None, tool: str | None = None) -> Any:
        """Data packages you can read."""
        return self._call(Call("GET", "/api/packages", params(keyword=keyword, tool=tool)))

    def package(self, digest: str) -> Any:
        """One data package's metadata by SHA-256."""
        return self._call(Call("GET", f"/api/packages/{segment(digest)}"))

    def upload_package(
        self, data: bytes, *, name: str, keywords: Iterable[str] = (), tool: str | None = None,
        creator_uid: str | None = None, expected_hash: str | None = None,
        content_type: str = "application/octet-stream",
    ) -> Any:
        """Upload content as a data package for your write groups; ``created`` False if already stored."""
        query = params(name=name, keywords=",".join(keywords) or None, tool=tool, creator_uid=creator_uid,
                       hash=expected_hash)
        return self._call(Call("POST", "/api/packages", query, content=data, content_type=content_type))

    def download_package(self, digest: str) -> Any:
        """A data package's content (bytes)."""
        return self._call(Call("GET", f"/api/packages/{segment(digest)}/content", raw=True))

    def delete_package(self, digest: str) -> Any:
        """Delete a package you submitted (any you can read, as admin)."""
        return self._call(Call("DELETE", f"/api/packages/{segment(digest)}"))

    # -- missions -------------------------------------------------------------------------------

    def missions(self) -> Any:
        """Data Sync missions you can see."""
        return self._call(Call("GET", "/api/missions"))

    def mission(self, name: str) -> Any:
        """One mission with its contents, uids and your role."""
        return self._call(Call("GET", f"/api/missions/{segment(name)}"))

    def create_mission(
        self, name: str, *, description: str = "", groups: Iterable[str] = (), tool: str = "public",
        keywords: Iterable[str] = (), password: str | None = None, default_role: str | None = None,
        invite_only: bool = False, uid: str | None = None,
    ) -> Any:
        """Create a mission you own (``groups`` default: your write groups); ``uid`` is subscribed as owner."""
        body: dict[str, Any] = {"name": name, "description": description, "groups": list(groups), "tool": tool,
                                "keywords": list(keywords), "invite_only": invite_only}
        for key, value in (("password", password), ("default_role", default_role), ("uid", uid)):
            if value is not None:
                body[key] = value
        return self._call(Call("POST", "/api/missions", json=body))

    def delete_mission(self, name: str) -> Any:
        """Delete a mission (owner or admin)."""
        return self._call(Call("DELETE", f"/api/missions/{segment(name)}"))

    def subscribe_mission(self, name: str, *, uid: str | None = None, password: str | None = None) -> Any:
        """Subscribe a device of yours (default: your API sender uid) to a mission's changes."""
        body = {k: v for k, v in (("uid", uid), ("password", password)) if v is not None}
        return self._call(Call("PUT", f"/api/missions/{segment(name)}/subscription", json=body))

    def unsubscribe_mission(self, name: str, *, uid: str | None = None) -> Any:
        """Drop that subscription: ``{"id": uid, "deleted": bool}``."""
        return self._call(Call("DELETE", f"/api/missions/{segment(name)}/subscription", params(uid=uid)))

    def mission_subscriptions(self, name: str) -> Any:
        """Who is subscribed to a mission (tokens withheld)."""
        return self._call(Call("GET", f"/api/missions/{segment(name)}/subscriptions"))

    def add_mission_contents(
        self, name: str, *, hashes: Iterable[str] = (), uids: Iterable[str] = (), uid: str | None = None
    ) -> Any:
        """Add data packages (by SHA-256) and CoT uids, acting from device ``uid``; the changes made."""
        return self._call(Call("POST", f"/api/missions/{segment(name)}/contents", params(uid=uid),
                               json={"hashes": list(hashes), "uids": list(uids)}))

    def remove_mission_content(self, name: str, digest: str, *, uid: str | None = None) -> Any:
        """Remove a data package from a mission."""
        return self._call(Call("DELETE", f"/api/missions/{segment(name)}/contents/{segment(digest)}",
                               params(uid=uid)))

    def remove_mission_uid(self, name: str, item: str, *, uid: str | None = None) -> Any:
        """Remove a CoT uid from a mission."""
        return self._call(Call("DELETE", f"/api/missions/{segment(name)}/uids/{segment(item)}", params(uid=uid)))

    def mission_changes(self, name: str, *, since: int | str | None = None, until: int | str | None = None) -> Any:
        """A mission's change log, oldest first."""
        return self._call(Call("GET", f"/api/missions/{segment(name)}/changes",
                               params(since=time_param(since), until=time_param(until))))
