"""Reaching a running server from the CLI: the connection options every remote command group shares,
and one client per command whose API and network errors become a one-line message and exit code 1."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

import httpx
import typer

from rallypoint.client.http import ApiError, RallypointClient

DEFAULT_SERVER = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class Connection:
    """How to reach the server and who to be there."""

    server: str
    token: str | None
    user: str | None
    password: str | None
    cert: str | None
    ca: str | None

    def client(self) -> RallypointClient:
        """A client for one command."""
        return RallypointClient(self.server, token=self.token, username=self.user, password=self.password,
                                cert=self.cert, ca=self.ca)


def connect(
    ctx: typer.Context,
    server: Annotated[str, typer.Option("--server", envvar="RALLYPOINT_URL", help="Server base URL.")] = DEFAULT_SERVER,
    token: Annotated[str | None, typer.Option("--token", envvar="RALLYPOINT_TOKEN", help="API token.")] = None,
    user: Annotated[str | None, typer.Option("--user", envvar="RALLYPOINT_USER", help="Account name.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    cert: Annotated[str | None, typer.Option("--cert", help="Client certificate (PEM) for HTTPS.")] = None,
    ca: Annotated[str | None, typer.Option("--ca", help="CA certificate (PEM) to check the server.")] = None,
) -> None:
    """Connection options, shared by every command of the group."""
    password = os.environ.get("RALLYPOINT_PASSWORD")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    if user is not None and not password:
        raise typer.BadParameter("give the password with RALLYPOINT_PASSWORD or --password-stdin", param_hint="--user")
    ctx.obj = Connection(server=server.rstrip("/"), token=token, user=user, password=password, cert=cert, ca=ca)


@contextmanager
def session(ctx: typer.Context) -> Iterator[RallypointClient]:
    conn: Connection = ctx.obj
    client = conn.client()
    try:
        yield client
    except ApiError as exc:
        typer.echo(f"error: {exc.status} {exc.error}: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    except httpx.HTTPError as exc:
        typer.echo(f"error: cannot reach {conn.server}: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        client.close()
