"""HTTP clients for the native API: ``RallypointClient`` (sync) and ``AsyncRallypointClient``.

Both expose the same methods; the async one returns awaitables. Answers are decoded JSON
(dicts and lists, as documented in ``docs/api.md``); errors raise :class:`ApiError`.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterable
from typing import Any

import httpx

from rallypoint.client.calls import Call, CatalogCalls
from rallypoint.client.calls import area as _area
from rallypoint.client.calls import params as _params
from rallypoint.client.calls import segment as _segment
from rallypoint.client.calls import time_param as _time
from rallypoint.client.exercises import ExerciseCalls
from rallypoint.client.plans import PlanCalls
from rallypoint.client.tasks import TaskCalls

DEFAULT_TIMEOUT_S = 10.0


class ApiError(Exception):
    """The server refused a request: HTTP ``status``, its ``error`` label and ``detail``."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail


def _ssl_context(ca: str | None, cert: str | tuple[str, str] | None) -> ssl.SSLContext | bool:
    if ca is None and cert is None:
        return True
    context = ssl.create_default_context(cafile=ca)
    if isinstance(cert, tuple):
        context.load_cert_chain(cert[0], cert[1])
    elif cert is not None:
        context.load_cert_chain(cert)
    return context


def _result(response: httpx.Response, raw: bool = False) -> Any:
    if response.status_code >= 400:
        try:
            body = response.json()
            error, detail = str(body.get("error", "")), str(body.get("detail", ""))
        except (ValueError, AttributeError):
            error, detail = "http_error", response.text[:200]
        raise ApiError(response.status_code, error, detail)
    if raw:
        return response.content
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


class _Api(CatalogCalls, PlanCalls, TaskCalls, ExerciseCalls):
    """Every API operation as a :class:`Call`; subclasses send them."""

    def __init__(self, token: str | None, username: str | None, password: str | None) -> None:
        self.token = token
        self._username = username
        self._password = password

    def _basic(self) -> dict[str, str]:
        if self._username is None:
            return {}
        pair = f"{self._username}:{self._password or ''}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}

    def _bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def _headers(self, call: Call) -> dict[str, str]:
        headers = self._bearer() if call.authenticated and self.token else {}
        if call.content_type is not None:
            headers["Content-Type"] = call.content_type
        return headers

    def _login_first(self, call: Call) -> bool:
        """Whether to log in before sending ``call`` (credentials given, no token yet)."""
        return call.authenticated and self.token is None and self._username is not None

    def _login_again(self, call: Call, response: httpx.Response) -> bool:
        """Whether ``call`` was refused for an expired token that credentials can renew."""
        return response.status_code == 401 and call.authenticated and self._username is not None

    def _use_token(self, response: httpx.Response) -> str:
        answer = _result(response)
        self.token = str(answer["access_token"])
        return self.token

    def _call(self, call: Call) -> Any:
        raise NotImplementedError

    def clients(self) -> Any:
        """Connected clients you can see."""
        return self._call(Call("GET", "/api/clients"))

    def tracks(
        self, *, bbox: Iterable[float] | None = None, type: str | None = None, since: int | str | None = None,
        geojson: bool = False, antimeridian: bool = False,
    ) -> Any:
        """The live picture (a GeoJSON FeatureCollection with ``geojson=True``).

        ``bbox`` is (west, south, east, north); a box whose west is greater than its east crosses the
        180th meridian and needs ``antimeridian=True`` (the server refuses it otherwise).
        """
        params = _params(type=type, since=_time(since), format="geojson" if geojson else None)
        params.update(_area(bbox, antimeridian))
        return self._call(Call("GET", "/api/tracks", params))

    def history(
        self, *, since: int | str | None = None, until: int | str | None = None, uid: str | None = None,
        type: str | None = None, bbox: Iterable[float] | None = None, limit: int | None = None,
        order: str | None = None, cursor: str | None = None, antimeridian: bool = False,
    ) -> Any:
        """One page of stored events: ``{"events": [...], "count": n, "truncated": bool, "next": str|None}``.

        Pass the page's ``next`` as ``cursor`` (same filters) for the following page. ``bbox`` and
        ``antimeridian`` as for :meth:`tracks`.
        """
        params = _params(since=_time(since), until=_time(until), uid=uid, type=type, limit=limit, order=order,
                         cursor=cursor)
        params.update(_area(bbox, antimeridian))
        return self._call(Call("GET", "/api/history", params))

    def send_chat(
        self, text: str, *, to_uid: str | None = None, to_callsign: str | None = None, room: str | None = None
    ) -> Any:
        """Send a GeoChat message to one client (uid or callsign) or a room."""
        body = {k: v for k, v in {"text": text, "to_uid": to_uid, "to_callsign": to_callsign, "room": room}.items()
                if v is not None}
        return self._call(Call("POST", "/api/chat", json=body))

    def emergencies(self) -> Any:
        """Active emergencies you can see."""
        return self._call(Call("GET", "/api/emergencies"))

    def raise_emergency(
        self, lat: float, lon: float, *, kind: str = "911 Alert", hae: float | None = None,
        callsign: str | None = None,
    ) -> Any:
        """Raise an alert as yourself (``kind``: 911 Alert, Ring The Bell, Geo-fence Breached, In Contact)."""
        body: dict[str, Any] = {"lat": lat, "lon": lon, "kind": kind}
        if hae is not None:
            body["hae"] = hae
        if callsign is not None:
            body["callsign"] = callsign
        return self._call(Call("POST", "/api/emergencies", json=body))

    def cancel_emergency(self, uid: str) -> Any:
        """Cancel an active emergency (approver or admin)."""
        return self._call(Call("POST", f"/api/emergencies/{_segment(uid)}/cancel"))

    def users(self) -> Any:
        """Every account (admin)."""
        return self._call(Call("GET", "/api/admin/users"))

    def create_user(
        self, name: str, *, role: str = "member", groups: Iterable[str] = (), groups_in: Iterable[str] = (),
        groups_out: Iterable[str] = (), password: str | None = None,
    ) -> Any:
        """Create an account (admin)."""
        body: dict[str, Any] = {"name": name, "role": role, "groups": list(groups), "groups_in": list(groups_in),
                                "groups_out": list(groups_out)}
        if password is not None:
            body["password"] = password
        return self._call(Call("POST", "/api/admin/users", json=body))

    def update_user(
        self, name: str, *, disabled: bool | None = None, role: str | None = None,
        groups: Iterable[str] | None = None, groups_in: Iterable[str] | None = None,
        groups_out: Iterable[str] | None = None,
    ) -> Any:
        """Change an account (admin); omitted fields stay as they are."""
        body: dict[str, Any] = {}
        if disabled is not None:
            body["disabled"] = disabled
        if role is not None:
            body["role"] = role
        for key, value in (("groups", groups), ("groups_in", groups_in), ("groups_out", groups_out)):
            if value is not None:
                body[key] = list(value)
        return self._call(Call("PATCH", f"/api/admin/users/{_segment(name)}", json=body))

    def disable_user(self, name: str) -> Any:
        """Disable an account and revoke its tokens (admin)."""
        return self.update_user(name, disabled=True)

    def enable_user(self, name: str) -> Any:
        """Re-enable an account (admin)."""
        return self.update_user(name, disabled=False)

    def set_role(self, name: str, role: str) -> Any:
        """Change an account's role: member, approver or admin (admin)."""
        return self.update_user(name, role=role)

    def delete_user(self, name: str) -> Any:
        """Remove an account: disabled for good and its tokens revoked; the name stays reserved (admin)."""
        return self._call(Call("DELETE", f"/api/admin/users/{_segment(name)}"))

    def groups(self) -> Any:
        """Every group known from accounts and configuration, with its readers and writers (admin)."""
        return self._call(Call("GET", "/api/admin/groups"))

    def revoke_user_tokens(self, name: str) -> Any:
        """Revoke every token of an account (admin): ``{"revoked": n}``."""
        return self._call(Call("DELETE", f"/api/admin/users/{_segment(name)}/tokens"))

    def propose_designation(
        self, title: str, category: str, *, point: tuple[float, float] | None = None,
        polygon: Iterable[tuple[float, float]] | None = None, affiliation: str = "unknown", priority: int = 3,
        notes: str = "", hae: float | None = None, attachments: Iterable[str] = (), mission: str | None = None,
    ) -> Any:
        """Propose a designation: ``point`` (lat, lon) or ``polygon`` [(lat, lon), ...]; visible to your groups."""
        body: dict[str, Any] = {"title": title, "category": category, "affiliation": affiliation,
                                "priority": priority, "notes": notes, "attachments": list(attachments)}
        if point is not None:
            body["point"] = {"lat": point[0], "lon": point[1]}
        if polygon is not None:
            body["polygon"] = [{"lat": lat, "lon": lon} for lat, lon in polygon]
        if hae is not None:
            body["hae"] = hae
        if mission is not None:
            body["mission"] = mission
        return self._call(Call("POST", "/api/designations", json=body))

    def designations(self, *, state: str | None = None) -> Any:
        """Designations you may see, oldest first (``state``: proposed, approved, rejected, withdrawn)."""
        return self._call(Call("GET", "/api/designations", _params(state=state)))

    def designation(self, designation_id: str) -> Any:
        """One designation you may see."""
        return self._call(Call("GET", f"/api/designations/{_segment(designation_id)}"))

    def approve_designation(self, designation_id: str, *, groups: Iterable[str] | None = None) -> Any:
        """Approve (role approver, not the proposer); share with ``groups`` (default: the proposer's)."""
        body = {"groups": list(groups)} if groups is not None else {}
        return self._call(Call("POST", f"/api/designations/{_segment(designation_id)}/approve", json=body))

    def reject_designation(self, designation_id: str, reason: str) -> Any:
        """Reject with a reason (role approver, not the proposer)."""
        return self._call(Call("POST", f"/api/designations/{_segment(designation_id)}/reject",
                               json={"reason": reason}))

    def withdraw_designation(self, designation_id: str) -> Any:
        """Withdraw your own proposal."""
        return self._call(Call("DELETE", f"/api/designations/{_segment(designation_id)}"))

    def feeds(self) -> Any:
        """Source feeds with their statistics (admin)."""
        return self._call(Call("GET", "/api/feeds"))

    def add_feed(
        self, url: str, *, name: str = "", groups: Iterable[str] = (), stale_s: float | None = None,
        quality: float | None = None, exercise: str | None = None,
    ) -> Any:
        """Add and start a feed, e.g. ``sbs+tcp://host:30003`` (admin; runs until removed or the server stops).

        ``exercise``: the feed is that scripted exercise's, and its tracks are marked as its traffic.
        """
        body: dict[str, Any] = {"url": url, "name": name, "groups": list(groups)}
        if exercise is not None:
            body["exercise"] = exercise
        if stale_s is not None:
            body["stale_s"] = stale_s
        if quality is not None:
            body["quality"] = quality
        return self._call(Call("POST", "/api/feeds", json=body))

    def pause_feed(self, name: str) -> Any:
        """Pause a feed (admin)."""
        return self._call(Call("POST", f"/api/feeds/{_segment(name)}/pause"))

    def resume_feed(self, name: str) -> Any:
        """Resume a paused feed (admin)."""
        return self._call(Call("POST", f"/api/feeds/{_segment(name)}/resume"))

    def remove_feed(self, name: str) -> Any:
        """Stop and remove a feed (admin)."""
        return self._call(Call("DELETE", f"/api/feeds/{_segment(name)}"))

    def merge_proposals(self) -> Any:
        """Open merge proposals of the server's tracker, oldest first (admin)."""
        return self._call(Call("GET", "/api/feeds/proposals"))

    def accept_merge(self, proposal_id: str) -> Any:
        """Accept a merge proposal: the secondary track joins the primary, kept across restarts (admin)."""
        return self._call(Call("POST", f"/api/feeds/proposals/{_segment(proposal_id)}/accept"))

    def reject_merge(self, proposal_id: str) -> Any:
        """Reject a merge proposal: that pair is not proposed again (admin)."""
        return self._call(Call("POST", f"/api/feeds/proposals/{_segment(proposal_id)}/reject"))

    def openapi(self) -> Any:
        """The server's OpenAPI document."""
        return self._call(Call("GET", "/api/openapi.json", authenticated=False))


class RallypointClient(_Api):
    """Synchronous client. Give a ``token``, or ``username``/``password`` (logs in on first use and
    again when the token expires), or a client certificate ``cert`` (PEM path, or (cert, key) paths)
    with the server's ``ca`` for HTTPS."""

    def __init__(
        self, base_url: str, *, token: str | None = None, cert: str | tuple[str, str] | None = None,
        ca: str | None = None, username: str | None = None, password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        super().__init__(token, username, password)
        self._http = httpx.Client(base_url=base_url, verify=_ssl_context(ca, cert), timeout=timeout)

    def login(self) -> str:
        """Get a token (Basic credentials if given, else the client certificate) and use it from now on."""
        return self._use_token(self._http.post("/api/auth/token", headers=self._basic()))

    def logout(self) -> None:
        """Revoke the current token."""
        if self.token is not None:
            _result(self._http.delete("/api/auth/token", headers=self._bearer()))
            self.token = None

    def _call(self, call: Call) -> Any:
        if self._login_first(call):
            self.login()
        response = self._send(call)
        if self._login_again(call, response):
            self.login()
            response = self._send(call)
        return _result(response, call.raw)

    def _send(self, call: Call) -> httpx.Response:
        return self._http.request(call.method, call.path, params=call.params, json=call.json, content=call.content,
                                  headers=self._headers(call))

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> RallypointClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRallypointClient(_Api):
    """The asyncio flavour of :class:`RallypointClient`: same arguments, every method awaitable."""

    def __init__(
        self, base_url: str, *, token: str | None = None, cert: str | tuple[str, str] | None = None,
        ca: str | None = None, username: str | None = None, password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        super().__init__(token, username, password)
        self._http = httpx.AsyncClient(base_url=base_url, verify=_ssl_context(ca, cert), timeout=timeout)

    async def login(self) -> str:
        """Get a token and use it from now on."""
        return self._use_token(await self._http.post("/api/auth/token", headers=self._basic()))

    async def logout(self) -> None:
        """Revoke the current token."""
        if self.token is not None:
            _result(await self._http.delete("/api/auth/token", headers=self._bearer()))
            self.token = None

    async def _call(self, call: Call) -> Any:
        if self._login_first(call):
            await self.login()
        response = await self._send(call)
        if self._login_again(call, response):
            await self.login()
            response = await self._send(call)
        return _result(response, call.raw)

    async def _send(self, call: Call) -> httpx.Response:
        return await self._http.request(call.method, call.path, params=call.params, json=call.json,
                                        content=call.content, headers=self._headers(call))

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncRallypointClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
