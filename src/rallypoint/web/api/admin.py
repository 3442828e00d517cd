"""Account administration over the API (role ``admin``); every change is audited."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from rallypoint.security.users import Role, User, UserError, UserExists, UserNotFound
from rallypoint.web.api.auth import ApiAuth
from rallypoint.web.api.common import ApiError, Endpoint, Param, check_only, json_response, read_body
from rallypoint.web.api.schemas import ErrorBody, GroupInfo, RevokeResult, UserCreate, UserPatch, UserView
from rallypoint.web.context import WebContext

_NAME = Param("name", "path", {"type": "string", "minLength": 1, "maxLength": 64}, "account name", required=True)
_ERRORS = {401: ("Not authenticated", ErrorBody), 403: ("Not an admin", ErrorBody), 400: ("Bad request", ErrorBody)}


def user_view(user: User) -> UserView:
    """What the API shows of an account."""
    return UserView(
        name=user.name, role=str(user.role), groups_in=sorted(user.groups_in), groups_out=sorted(user.groups_out),
        disabled=user.disabled, has_password=user.has_password, created_ms=user.created_ms,
        updated_ms=user.updated_ms, locked_until_ms=user.locked_until_ms,
    )


def groups_known(users: list[User], client_groups: dict[str, tuple[str, ...]]) -> list[GroupInfo]:
    """Every group named by an account (IN or OUT) or by the ``client_groups`` setting, by name."""
    names = {g for u in users for g in (*u.groups_in, *u.groups_out)} | {
        g for groups in client_groups.values() for g in groups}
    return [
        GroupInfo(
            name=name, readers=sorted(u.name for u in users if name in u.groups_in),
            writers=sorted(u.name for u in users if name in u.groups_out),
            certificates=sorted(cn for cn, groups in client_groups.items() if name in groups),
        )
        for name in sorted(names)
    ]


def _groups_detail(user: User) -> dict[str, str]:
    return {"groups_in": ",".join(sorted(user.groups_in)), "groups_out": ",".join(sorted(user.groups_out))}


class AdminApi:
    """``/api/admin/users`` and token revocation for an account."""

    def __init__(self, ctx: WebContext, auth: ApiAuth) -> None:
        self._ctx = ctx
        self._auth = auth

    async def _refresh(self) -> None:
        # The node notices the file change within seconds; reload now so the next request agrees.
        self._ctx.accounts.load(await self._ctx.users.list())
        if self._ctx.announce_accounts is not None:
            self._ctx.announce_accounts()

    def endpoints(self) -> list[Endpoint]:
        """The route table of this module."""
        ctx = self._ctx
        auth = self._auth
        users = ctx.users
        limit = ctx.settings.max_http_body_bytes

        async def list_users(request: Request) -> Response:
            check_only(request, frozenset())
            await auth.with_role(request, "admin")
            return json_response([user_view(u) for u in await users.list()])

        async def create_user(request: Request) -> Response:
            check_only(request, frozenset())
            admin = await auth.with_role(request, "admin")
            body = await read_body(request, UserCreate, limit)
            try:
                user = await users.add(
                    body.name, password=body.password, role=Role(body.role),
                    groups_in={*body.groups, *body.groups_in}, groups_out={*body.groups, *body.groups_out},
                )
            except UserExists as exc:
                raise ApiError(409, "exists", exc.detail) from exc
            except UserError as exc:
                raise ApiError(422, exc.reason, exc.detail) from exc
            await self._refresh()
            ctx.auditor.record(
                admin.principal or "-", "admin.user.add", user.name,
                {"role": str(user.role), **_groups_detail(user), "password": "set" if user.has_password else "none"},
            )
            return json_response(user_view(user), status=201)

        async def patch_user(request: Request) -> Response:
            check_only(request, frozenset())
            admin = await auth.with_role(request, "admin")
            name = request.path_params["name"]
            body = await read_body(request, UserPatch, limit)
            actor = admin.principal or "-"
            try:
                user = await users.get(name)
                if user is None:
                    raise UserNotFound("not_found", f"no user {name[:64]!r}")
                if body.role is not None and body.role != str(user.role):
                    user = await users.set_role(user.name, Role(body.role))
                    ctx.auditor.record(actor, "admin.user.role", user.name, {"role": str(user.role)})
                if body.groups is not None or body.groups_in is not None or body.groups_out is not None:
                    base = body.groups
                    g_in = body.groups_in if body.groups_in is not None else base
                    g_out = body.groups_out if body.groups_out is not None else base
                    user = await users.set_groups(
                        user.name,
                        groups_in=user.groups_in if g_in is None else g_in,
                        groups_out=user.groups_out if g_out is None else g_out,
                    )
                    ctx.auditor.record(actor, "admin.user.groups", user.name, _groups_detail(user))
                if body.disabled is not None and body.disabled != user.disabled:
                    user = await users.set_disabled(user.name, body.disabled)
                    action = "admin.user.disable" if body.disabled else "admin.user.enable"
                    revoked = await auth.tokens.revoke_principal(user.name) if body.disabled else 0
                    ctx.auditor.record(actor, action, user.name, {"tokens_revoked": str(revoked)})
            except UserNotFound as exc:
                raise ApiError(404, "not_found", exc.detail) from exc
            except UserError as exc:
                raise ApiError(422, exc.reason, exc.detail) from exc
            await self._refresh()
            return json_response(user_view(user))

        async def delete_user(request: Request) -> Response:
            # Accounts are disabled, never erased: the name stays reserved (a new account of that
            # name would inherit its certificates, missions and audit trail) and can be re-enabled.
            check_only(request, frozenset())
            admin = await auth.with_role(request, "admin")
            name = request.path_params["name"]
            if name == admin.principal:
                raise ApiError(409, "own_account", "an admin cannot remove its own account")
            user = await users.get(name)
            if user is None:
                raise ApiError(404, "not_found", f"no user {name[:64]!r}")
            if not user.disabled:
                user = await users.set_disabled(user.name, True)
            revoked = await auth.tokens.revoke_principal(user.name)
            ctx.auditor.record(admin.principal or "-", "admin.user.remove", user.name, {"tokens_revoked": str(revoked)})
            await self._refresh()
            return json_response(user_view(user))

        async def list_groups(request: Request) -> Response:
            check_only(request, frozenset())
            await auth.with_role(request, "admin")
            return json_response(groups_known(await users.list(), dict(ctx.settings.client_groups)))

        async def revoke_tokens(request: Request) -> Response:
            check_only(request, frozenset())
            admin = await auth.with_role(request, "admin")
            name = request.path_params["name"]
            user = await users.get(name)
            target = user.name if user is not None else name[:64]
            revoked = await auth.tokens.revoke_principal(target)
            ctx.auditor.record(admin.principal or "-", "admin.tokens.revoke", target, {"revoked": str(revoked)})
            return json_response(RevokeResult(revoked=revoked))

        body_errors = {413: ("Body too large", ErrorBody), 415: ("Not JSON", ErrorBody),
                       422: ("Invalid body", ErrorBody)}
        return [
            Endpoint("GET", "/api/admin/users", list_users, "List accounts", "admin",
                     {200: ("Accounts", list[UserView]), **_ERRORS}, operation_id="listUsers"),
            Endpoint("POST", "/api/admin/users", create_user, "Create an account", "admin",
                     {201: ("Created", UserView), 409: ("Name taken", ErrorBody), **_ERRORS, **body_errors},
                     body=UserCreate, operation_id="createUser"),
            Endpoint("PATCH", "/api/admin/users/{name}", patch_user,
                     "Change an account: disable/enable, role, groups (disabling revokes its tokens)", "admin",
                     {200: ("Updated", UserView), 404: ("No such account", ErrorBody), **_ERRORS, **body_errors},
                     body=UserPatch, params=(_NAME,), operation_id="updateUser"),
            Endpoint("DELETE", "/api/admin/users/{name}", delete_user,
                     "Remove an account: disabled for good, its tokens revoked (the name stays reserved)", "admin",
                     {200: ("Removed", UserView), 404: ("No such account", ErrorBody),
                      409: ("Your own account", ErrorBody), **_ERRORS},
                     params=(_NAME,), operation_id="deleteUser"),
            Endpoint("GET", "/api/admin/groups", list_groups, "Every group known from accounts and configuration",
                     "admin", {200: ("Groups", list[GroupInfo]), **_ERRORS}, operation_id="listGroups"),
            Endpoint("DELETE", "/api/admin/users/{name}/tokens", revoke_tokens, "Revoke every token of an account",
                     "admin", {200: ("Revoked", RevokeResult), **_ERRORS}, params=(_NAME,),
                     operation_id="revokeUserTokens"),
        ]
