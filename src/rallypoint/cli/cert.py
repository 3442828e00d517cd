"""`rallypoint cert ...` and `rallypoint ca ...`: manage the built-in certificate authority."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rallypoint.clock import SystemClock
from rallypoint.errors import ConfigError
from rallypoint.security.ca import DEFAULT_P12_PASSWORD, CertificateAuthority, CertificateRequestError

cert_app = typer.Typer(no_args_is_help=True)
ca_app = typer.Typer(no_args_is_help=True)


# The callbacks keep each app a command group even with a single command, so `cert issue` reads the
# same whether the app runs on its own or mounted in the main CLI.
@cert_app.callback()
def _cert_group() -> None:
    """Issue client certificates from the built-in CA."""


@ca_app.callback()
def _ca_group() -> None:
    """Create and inspect the built-in certificate authority."""


DataDir = Annotated[
    Path, typer.Option("--data-dir", help="Server data directory; the CA lives in DATA_DIR/ca.")
]


def _console(*, stderr: bool = False) -> Console:
    # Fingerprints contain ":AB:"-style runs that rich would turn into emoji; paths and fingerprints
    # must also stay on one line so they can be copied.
    return Console(stderr=stderr, emoji=False, highlight=False, soft_wrap=True)


def _load_ca(data_dir: Path, server_names: list[str] | None = None) -> CertificateAuthority:
    try:
        if server_names:
            return CertificateAuthority.load_or_create(
                data_dir / "ca", clock=SystemClock(), server_names=server_names
            )
        return CertificateAuthority.load_or_create(data_dir / "ca", clock=SystemClock())
    except (ConfigError, OSError) as exc:
        _console(stderr=True).print(f"[red]cannot open the certificate authority:[/red] {escape(str(exc))}")
        raise typer.Exit(code=1) from exc


ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="TOML configuration file to read p12_password from (RALLYPOINT_* too)."),
]
P12Password = Annotated[
    str | None,
    typer.Option("--password", help="PKCS#12 password; default: the p12_password setting (atakatak)."),
]


def p12_password_for(config: Path | None, password: str | None) -> str:
    """``--password`` if given, else the ``p12_password`` setting (TOML file and environment).

    The server answers enrollment with ``p12_password``; bundles written here use the same one so an
    operator who changed it does not hand out files with a different password by accident.
    """
    if password is not None:
        return password
    from rallypoint.config import load_settings

    try:
        return load_settings(config).p12_password
    except ConfigError as exc:
        _console(stderr=True).print(f"[red]configuration error:[/red] {escape(str(exc))}")
        raise typer.Exit(code=2) from exc


def record_audit(data_dir: Path, action: str, target: str, detail: dict[str, str]) -> None:
    """Append one entry to the data directory's audit log (actor: the operating-system user)."""
    import asyncio

    from rallypoint.cli.audit import cli_actor
    from rallypoint.cli.stores import cli_stores
    from rallypoint.security.audit import AuditLog

    async def go() -> None:
        log = AuditLog(cli_stores(data_dir).audit())
        try:
            await log.append(cli_actor(), action, target, detail, now_ms=SystemClock().now_ms())
        finally:
            await log.close()

    asyncio.run(go())


@cert_app.command("issue")
def issue(
    name: Annotated[str, typer.Argument(help="Client name; becomes the certificate CN (the TAK username).")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Output directory (default DATA_DIR/clients/NAME).")
    ] = None,
    data_dir: DataDir = Path("rallypoint-data"),
    password: P12Password = None,
    days: Annotated[int, typer.Option("--days", min=1, max=3650, help="Validity in days.")] = 365,
    config: ConfigFile = None,
) -> None:
    """Issue a client certificate and write it as PEM and PKCS#12 (with the CA truststore)."""
    console = _console()
    p12_password = p12_password_for(config, password)
    ca = _load_ca(data_dir)
    try:
        issued = ca.issue_client(name, days=days)
    except CertificateRequestError as exc:
        _console(stderr=True).print(f"[red]refused:[/red] {escape(exc.detail)}")
        raise typer.Exit(code=1) from exc
    paths = ca.write_client_bundle(issued, out if out is not None else data_dir / "clients" / name, p12_password)
    record_audit(data_dir, "cert.issue", name, {"serial": f"{issued.serial:032x}", "days": str(days)})
    table = Table(title=f"Client certificate for {name}", show_header=False)
    table.add_row("serial", f"{issued.serial:032x}")
    labels = ("certificate", "private key", "PKCS#12 keystore", "CA certificate", "CA truststore")
    for label, path in zip(labels, paths, strict=True):
        table.add_row(label, escape(str(path)))
    console.print(table)
    console.print(
        f"Import [bold]{name}.p12[/bold] as the client certificate and [bold]truststore.p12[/bold] as the "
        "CA certificate; both use the password given (--password, else the p12_password setting, "
        f"default [bold]{DEFAULT_P12_PASSWORD}[/bold])."
    )


@ca_app.command("init")
def init(
    data_dir: DataDir = Path("rallypoint-data"),
    server_name: Annotated[
        list[str] | None,
        typer.Option("--server-name", help="Name or IP the server certificate must cover (repeatable)."),
    ] = None,
) -> None:
    """Create the CA and server certificate if missing, then print the CA's SHA-256 fingerprint."""
    ca = _load_ca(data_dir, server_name)
    console = _console()
    console.print(f"CA certificate: {escape(str(ca.ca_path))}")
    console.print(f"server certificate: {escape(str(ca.server_cert_path))}")
    console.print(f"SHA-256 fingerprint: [bold]{ca.fingerprint}[/bold]")


@cert_app.command("revoke")
def revoke(
    name: Annotated[str | None, typer.Argument(help="Revoke every live certificate of this client.")] = None,
    serial: Annotated[str | None, typer.Option("--serial", help="Revoke one certificate by hex serial.")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the revocation list).")] = "unspecified",
    data_dir: DataDir = Path("./rallypoint-data"),
) -> None:
    """Revoke client certificates and the holder's API tokens; a running server disconnects them within seconds.

    The account itself stays usable: a user with a password can enroll a new certificate (a lost
    phone gets a new one). Use ``rallypoint user disable`` to shut the account out as well.
    """
    from rallypoint.security.revocation import CertificateRegistry

    if (name is None) == (serial is None):
        _console(stderr=True).print("[red]give a NAME or --serial, not both[/red]")
        raise typer.Exit(code=2)
    ca = _load_ca(data_dir)
    registry = CertificateRegistry(ca.directory)
    try:
        serial_int = None if serial is None else int(serial, 16)
    except ValueError as exc:
        _console(stderr=True).print(f"[red]not a hex serial:[/red] {escape(serial or '')}")
        raise typer.Exit(code=2) from exc
    if name is not None:
        # Account names ignore case, so "alice" also revokes a certificate issued to "Alice".
        serials = [r.serial for r in registry.issued() if not r.revoked and r.name.casefold() == name.casefold()]
        added = [
            rev for s in serials for rev in registry.revoke(ca, SystemClock(), serial=s, reason=reason)
        ]
    else:
        added = registry.revoke(ca, SystemClock(), serial=serial_int, reason=reason)
    console = _console()
    if not added:
        console.print("nothing to revoke (no live certificate matches)")
        raise typer.Exit(code=1)
    for rev in added:
        console.print(f"revoked {escape(rev.name)} serial {rev.serial}")
        record_audit(data_dir, "cert.revoke", rev.name, {"serial": rev.serial, "reason": reason})
    # A token obtained with the certificate (or the account's password) would otherwise keep the
    # native API open until it expires; tokens do not record which credential issued them.
    for principal in sorted({rev.name for rev in added}, key=str.casefold):
        revoked = _revoke_tokens(data_dir, principal)
        if revoked:
            console.print(f"revoked {revoked} API token(s) of {escape(principal)}")
        record_audit(data_dir, "token.revoke", principal, {"scope": "cert.revoke", "revoked": str(revoked)})
    console.print(f"CRL: {registry.crl_path}")


def _revoke_tokens(data_dir: Path, principal: str) -> int:
    """Revoke every live native-API bearer token of ``principal`` (any case); how many were live."""
    import asyncio

    from rallypoint.cli.stores import cli_stores
    from rallypoint.security.tokens import KEY_FILE, TokenService
    from rallypoint.storage.factory import TOKENS_FILE

    stores = cli_stores(data_dir)
    if not stores.on_postgres("tokens") and not (data_dir / TOKENS_FILE).exists():
        return 0  # the native API never ran here, so no token was ever issued

    async def go() -> int:
        tokens = TokenService(stores.tokens(), key_path=data_dir / KEY_FILE, clock=SystemClock())
        try:
            return await tokens.revoke_principal(principal)
        finally:
            await tokens.close()

    return asyncio.run(go())


@cert_app.command("list")
def list_certificates(data_dir: DataDir = Path("./rallypoint-data")) -> None:
    """List every certificate the CA issued, with its revocation state."""
    from rallypoint.clock import ms_to_datetime
    from rallypoint.security.revocation import CertificateRegistry

    ca = _load_ca(data_dir)
    table = Table("name", "serial", "expires", "state")
    for record in CertificateRegistry(ca.directory).issued():
        table.add_row(
            escape(record.name), f"{record.serial:032x}", f"{ms_to_datetime(record.not_after_ms):%Y-%m-%d}",
            "revoked" if record.revoked else "valid",
        )
    _console().print(table)


@ca_app.command("rotate")
def rotate(
    data_dir: DataDir = Path("./rallypoint-data"),
    server_name: Annotated[
        list[str] | None,
        typer.Option("--server-name", help="Name or IP the new server certificate must cover (repeatable)."),
    ] = None,
) -> None:
    """Replace the CA key and certificate; certificates it issued stay trusted until they expire.

    The old CA moves to ``ca/previous/<fingerprint>/`` and stays a trust anchor for client
    certificates; the server certificate is re-issued by the new CA, so clients need the new
    truststore (re-run ``rallypoint onboard``). Restart the server to apply.
    """
    import shutil

    ca = _load_ca(data_dir)
    old_fingerprint = ca.fingerprint
    target = ca.directory / "previous" / old_fingerprint.replace(":", "")[:16]
    target.mkdir(parents=True, mode=0o700, exist_ok=True)
    shutil.move(str(ca.ca_path), target / "ca.pem")
    # The old key is kept (0600) so the old CA could still sign a CRL for what it issued.
    shutil.move(str(ca.directory / "ca.key"), target / "ca.key")
    new = _load_ca(data_dir, server_name)
    record_audit(data_dir, "ca.rotate", "ca", {"old": old_fingerprint, "new": new.fingerprint})
    console = _console()
    console.print(f"new CA fingerprint (SHA-256): {new.fingerprint}")
    console.print(f"previous CA kept in {escape(str(target))}; restart the server to apply")
