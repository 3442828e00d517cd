"""`rallypoint user ...`: manage accounts and their groups. Every change is written to the audit log.

Passwords are only ever read from standard input (``--password-stdin``), never from arguments
(which other local users can see) and never by prompting; without it an account is certificate-only.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rallypoint.cli.audit import cli_actor
from rallypoint.cli.stores import cli_stores
from rallypoint.cli.wording import RallypointGroup
from rallypoint.clock import SystemClock
from rallypoint.errors import StorageError
from rallypoint.security.audit import AuditLog
from rallypoint.security.users import Role, User, UserAccounts, UserError, effective_groups

user_app = typer.Typer(no_args_is_help=True, cls=RallypointGroup)

DataDir = Annotated[
    Path, typer.Option("--data-dir", help="Server data directory; accounts are in DATA_DIR/users.db.")
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input.")
]
Groups = Annotated[list[str] | None, typer.Option("--group", help="Group for both reading and writing (repeat).")]
InGroups = Annotated[list[str] | None, typer.Option("--in-group", "--in", help="Group the user writes to (IN).")]
OutGroups = Annotated[list[str] | None, typer.Option("--out-group", "--out", help="Group the user reads (OUT).")]

Action = Callable[[UserAccounts, AuditLog], Awaitable[None]]


@user_app.callback()
def _user_group() -> None:
    """Add, change and list user accounts."""


@user_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Account name (also the client certificate CN).")],
    group: Groups = None,
    in_group: InGroups = None,
    out_group: OutGroups = None,
    role: Annotated[Role, typer.Option("--role", help="member, approver or admin.")] = Role.MEMBER,
    password_stdin: PasswordStdin = False,
    data_dir: DataDir = Path("rallypoint-data"),
) -> None:
    """Create an account (certificate-only unless --password-stdin)."""
    password = _read_password() if password_stdin else None
    g_in = {*(group or ()), *(in_group or ())}
    g_out = {*(group or ()), *(out_group or ())}

    async def act(store: UserAccounts, audit: AuditLog) -> None:
        user = await store.add(name, password=password, role=role, groups_in=g_in, groups_out=g_out)
        detail = {
            "role": user.role.value,
            "groups_in": ",".join(sorted(user.groups_in)),
            "groups_out": ",".join(sorted(user.groups_out)),
            "password": "set" if password is not None else "none",
        }
        await audit.append(cli_actor(), "user.add", user.name, detail, now_ms=SystemClock().now_ms())

    _run(data_dir, act)
    typer.echo(f"user {name} added")


@user_app.command("disable")
def disable(name: Annotated[str, typer.Argument()], data_dir: DataDir = Path("rallypoint-data")) -> None:
    """Disable an account: it can no longer log in."""
    _set_disabled(data_dir, name, True)
    typer.echo(f"user {name} disabled")


@user_app.command("enable")
def enable(name: Annotated[str, typer.Argument()], data_dir: DataDir = Path("rallypoint-data")) -> None:
    """Re-enable a disabled account."""
    _set_disabled(data_dir, name, False)
    typer.echo(f"user {name} enabled")


@user_app.command("passwd")
def passwd(
    name: Annotated[str, typer.Argument()],
    password_stdin: PasswordStdin = False,
    data_dir: DataDir = Path("rallypoint-data"),
) -> None:
    """Set an account's password, read from standard input."""
    if not password_stdin:
        typer.echo("refusing to read a password from anywhere but stdin: pass --password-stdin", err=True)
        raise typer.Exit(code=2)
    password = _read_password()

    async def act(store: UserAccounts, audit: AuditLog) -> None:
        user = await store.set_password(name, password)
        await audit.append(cli_actor(), "user.passwd", user.name, now_ms=SystemClock().now_ms())

    _run(data_dir, act)
    typer.echo(f"password of {name} changed")


@user_app.command("groups")
def groups(
    name: Annotated[str, typer.Argument()],
    group: Groups = None,
    in_group: InGroups = None,
    out_group: OutGroups = None,
    data_dir: DataDir = Path("rallypoint-data"),
) -> None:
    """Replace an account's groups; a direction given no option keeps its current groups."""
    if group is None and in_group is None and out_group is None:
        typer.echo("nothing to change: give --group, --in or --out", err=True)
        raise typer.Exit(code=2)

    async def act(store: UserAccounts, audit: AuditLog) -> None:
        current = await store.get(name)
        if current is None:
            raise UserError("not_found", f"no user {name!r}")
        g_in = {*(group or ()), *(in_group or ())} if group or in_group is not None else current.groups_in
        g_out = {*(group or ()), *(out_group or ())} if group or out_group is not None else current.groups_out
        user = await store.set_groups(name, groups_in=g_in, groups_out=g_out)
        detail = {
            "groups_in": ",".join(sorted(user.groups_in)),
            "groups_out": ",".join(sorted(user.groups_out)),
            "was_in": ",".join(sorted(current.groups_in)),
            "was_out": ",".join(sorted(current.groups_out)),
        }
        await audit.append(cli_actor(), "group.change", user.name, detail, now_ms=SystemClock().now_ms())

    _run(data_dir, act)
    typer.echo(f"groups of {name} changed")


@user_app.command("role")
def role(
    name: Annotated[str, typer.Argument()],
    new_role: Annotated[Role, typer.Argument(metavar="ROLE", help="member, approver or admin.")],
    data_dir: DataDir = Path("rallypoint-data"),
) -> None:
    """Change an account's role."""

    async def act(store: UserAccounts, audit: AuditLog) -> None:
        current = await store.get(name)
        if current is None:
            raise UserError("not_found", f"no user {name!r}")
        user = await store.set_role(current.name, new_role)
        detail = {"role": user.role.value, "was": current.role.value}
        await audit.append(cli_actor(), "user.role", user.name, detail, now_ms=SystemClock().now_ms())

    _run(data_dir, act)
    typer.echo(f"role of {name} is now {new_role.value}")


@user_app.command("unlock")
def unlock(name: Annotated[str, typer.Argument()], data_dir: DataDir = Path("rallypoint-data")) -> None:
    """Lift a lock after too many failed logins (and reset the failure count) without waiting."""
    was_locked: list[bool] = []

    async def act(store: UserAccounts, audit: AuditLog) -> None:
        current = await store.get(name)
        if current is None:
            raise UserError("not_found", f"no user {name!r}")
        now = SystemClock().now_ms()
        locked = current.locked_until_ms is not None and current.locked_until_ms > now
        was_locked.append(locked)
        user = await store.unlock(current.name)
        detail = {"was_locked": "yes" if locked else "no", "failed_logins": str(current.failed_logins)}
        await audit.append(cli_actor(), "user.unlock", user.name, detail, now_ms=now)

    _run(data_dir, act)
    typer.echo(f"user {name} unlocked" if was_locked and was_locked[0] else f"user {name} was not locked")


@user_app.command("list")
def list_users(
    data_dir: DataDir = Path("rallypoint-data"),
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array instead of a table.")] = False,
) -> None:
    """List accounts (never their password hashes)."""
    found: list[User] = []

    async def act(store: UserAccounts, _audit: AuditLog) -> None:
        found.extend(await store.list())

    _run(data_dir, act)
    if as_json:
        typer.echo(msgspec.json.encode([_as_dict(u) for u in found]).decode())
        return
    table = Table(title="Users")
    for column in ("name", "role", "in", "out", "password", "state"):
        table.add_column(column)
    for u in found:
        g_in, g_out = effective_groups(u)
        state = "disabled" if u.disabled else "active"
        table.add_row(
            escape(u.name), u.role.value, escape(",".join(sorted(g_in))), escape(",".join(sorted(g_out))),
            "yes" if u.has_password else "cert only", state,
        )
    Console(emoji=False, highlight=False, soft_wrap=True).print(table)


def _as_dict(u: User) -> dict[str, object]:
    return {
        "name": u.name,
        "role": u.role.value,
        "groups_in": sorted(u.groups_in),
        "groups_out": sorted(u.groups_out),
        "has_password": u.has_password,
        "disabled": u.disabled,
        "created_ms": u.created_ms,
        "updated_ms": u.updated_ms,
        "failed_logins": u.failed_logins,
        "locked_until_ms": u.locked_until_ms,
    }


def _set_disabled(data_dir: Path, name: str, disabled: bool) -> None:
    async def act(store: UserAccounts, audit: AuditLog) -> None:
        user = await store.set_disabled(name, disabled)
        action = "user.disable" if disabled else "user.enable"
        await audit.append(cli_actor(), action, user.name, now_ms=SystemClock().now_ms())

    _run(data_dir, act)


def _read_password() -> str:
    line = sys.stdin.readline()
    password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        typer.echo("no password on standard input", err=True)
        raise typer.Exit(code=2)
    return password


def _run(data_dir: Path, act: Action) -> None:
    """Open the stores, run ``act``, close them; refusals exit 1 with a one-line reason."""

    async def go() -> None:
        stores = cli_stores(data_dir)
        store = UserAccounts(stores.users())
        audit = AuditLog(stores.audit())
        try:
            await act(store, audit)
        finally:
            await store.close()
            await audit.close()

    try:
        asyncio.run(go())
    except UserError as exc:
        typer.echo(f"refused: {exc.detail}", err=True)
        raise typer.Exit(code=1) from exc
    except StorageError as exc:
        typer.echo(f"storage error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
