"""`rallypoint onboard USER`: a connection data package (and, for enrollment, a QR code) for one user."""

from __future__ import annotations

import asyncio
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from rich.console import Console
from rich.markup import escape

from rallypoint.cli.cert import ConfigFile, P12Password, p12_password_for, record_audit
from rallypoint.cli.stores import cli_stores
from rallypoint.clock import SystemClock
from rallypoint.errors import ConfigError, StorageError
from rallypoint.security.ca import CertificateAuthority, CertificateRequestError
from rallypoint.security.certificates import san_names
from rallypoint.security.onboarding import (
    build_connection_package,
    enrollment_uri,
    host_in_certificate,
    onboarding_qr,
    validate_host,
)
from rallypoint.security.users import User, UserAccounts
from rallypoint.storage.factory import USERS_FILE


class OnboardMode(StrEnum):
    """How the client gets its certificate."""

    certificate = "certificate"
    enrollment = "enrollment"


def _write_private(path: Path, data: bytes) -> None:
    # Packages hold keys or credentials: readable by the owner only from the moment they exist.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _account_problem(data_dir: Path, user: str) -> str | None:
    """Why ``user`` cannot be onboarded from ``data_dir``'s accounts, or None if it can."""
    stores = cli_stores(data_dir)
    path = data_dir / USERS_FILE
    add_hint = f"create it first with `rallypoint user add {user} --data-dir {data_dir}`"
    # Checked before opening the store: opening would create an empty users.db as a side effect.
    if not stores.on_postgres("users") and not path.is_file():
        return f"no account {user!r}: {path} does not exist; {add_hint}"

    async def lookup() -> User | None:
        store = UserAccounts(stores.users())
        try:
            return await store.get(user)
        finally:
            await store.close()

    found = asyncio.run(lookup())
    if found is None:
        return f"no account {user!r} in {'the database' if stores.on_postgres('users') else path}; {add_hint}"
    if found.disabled:
        return f"account {user!r} is disabled; enable it first with `rallypoint user enable {user}`"
    return None


def _server_names(ca: CertificateAuthority) -> list[str]:
    try:
        return san_names(x509.load_pem_x509_certificate(ca.server_cert_path.read_bytes()))
    except (OSError, ValueError):
        return []


def onboard_command(
    user: Annotated[str, typer.Argument(help="User name; becomes the certificate CN (the TAK username).")],
    host: Annotated[str, typer.Option("--host", help="Public name or IPv4 address clients connect to.")],
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Server data directory; the CA lives in DATA_DIR/ca.")
    ] = Path("rallypoint-data"),
    tls_port: Annotated[int, typer.Option("--tls-port", min=1, max=65535, help="TLS CoT port.")] = 8089,
    enroll_port: Annotated[
        int, typer.Option("--enroll-port", min=1, max=65535, help="Certificate enrollment port.")
    ] = 8446,
    mode: Annotated[
        OnboardMode,
        typer.Option(
            "--mode",
            help="certificate: ship a client certificate; enrollment: the client enrolls with its password.",
        ),
    ] = OnboardMode.certificate,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output directory (default DATA_DIR/clients/USER).")
    ] = None,
    password: P12Password = None,
    token_stdin: Annotated[
        bool,
        typer.Option(
            "--token-stdin",
            help="Enrollment mode: read the user's enrollment password from stdin and put it in the QR code.",
        ),
    ] = False,
    config: ConfigFile = None,
) -> None:
    """Write USER-connection.zip (import it in ATAK/WinTAK/iTAK); in enrollment mode also USER-qr.svg.

    The QR code is ATAK's enrollment link, so only enrollment mode writes one: in certificate mode
    the key and certificate travel in the zip and there is nothing for a scanner to enroll with.
    """
    console = Console(emoji=False, highlight=False, soft_wrap=True)
    errors = Console(stderr=True, emoji=False, highlight=False, soft_wrap=True)
    try:
        validate_host(host)
    except ValueError as exc:
        errors.print(f"[red]refused:[/red] {escape(str(exc))}")
        raise typer.Exit(code=2) from exc
    if token_stdin and mode is OnboardMode.certificate:
        errors.print("[red]refused:[/red] --token-stdin needs --mode enrollment (no QR code in certificate mode)")
        raise typer.Exit(code=2)
    try:
        problem = _account_problem(data_dir, user)
    except StorageError as exc:
        errors.print(f"[red]cannot read the accounts:[/red] {escape(str(exc))}")
        raise typer.Exit(code=1) from exc
    if problem is not None:
        errors.print(f"[red]refused:[/red] {escape(problem)}")
        raise typer.Exit(code=1)
    p12_password = p12_password_for(config, password)
    token = sys.stdin.readline().rstrip("\r\n") if token_stdin else None
    try:
        ca = CertificateAuthority.load_or_create(data_dir / "ca", clock=SystemClock())
    except (ConfigError, OSError) as exc:
        errors.print(f"[red]cannot open the certificate authority:[/red] {escape(str(exc))}")
        raise typer.Exit(code=1) from exc
    names = _server_names(ca)
    if not host_in_certificate(host, names):
        # The phone checks the server certificate against the host it dials: TLS would fail.
        errors.print(
            f"[yellow]warning:[/yellow] {escape(host)} is not among the server certificate's names "
            f"({escape(', '.join(names) or 'none')}); clients will refuse the TLS connection. Add it to "
            "server_names in the configuration and restart the server (it reissues the certificate)."
        )
    try:
        issued = ca.issue_client(user) if mode is OnboardMode.certificate else None
        package = build_connection_package(
            ca=ca,
            user=user,
            server_host=host,
            tls_port=tls_port,
            enroll_port=enroll_port,
            mode=mode.value,
            issued=issued,
            p12_password=p12_password,
        )
    except CertificateRequestError as exc:
        errors.print(f"[red]refused:[/red] {escape(exc.detail)}")
        raise typer.Exit(code=1) from exc
    if issued is not None:
        record_audit(data_dir, "cert.issue", user, {"serial": f"{issued.serial:032x}", "via": "onboard"})
    out_dir = out if out is not None else data_dir / "clients" / user
    os.makedirs(out_dir, mode=0o700, exist_ok=True)
    package_path = out_dir / f"{user}-connection.zip"
    qr_path = out_dir / f"{user}-qr.svg"
    _write_private(package_path, package)
    console.print(f"connection package: {escape(str(package_path))}")
    if mode is OnboardMode.enrollment:
        _write_private(qr_path, onboarding_qr(enrollment_uri(host, user, token)))
        console.print(f"enrollment QR code: {escape(str(qr_path))}")
        if token is None:
            console.print("The QR code carries no password: the client asks for it when it enrolls.")
    else:
        # An enrollment QR left by an earlier run would point this user at enrollment (and may hold
        # a password); the package replaces it.
        qr_path.unlink(missing_ok=True)
        console.print("no QR code in certificate mode: move the package to the device and import it")
    if issued is not None:
        console.print(f"certificate serial: {issued.serial:032x}")
    console.print(f"CA SHA-256 fingerprint: {ca.fingerprint}")
