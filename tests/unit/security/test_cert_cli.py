"""`rallypoint ca init` and `rallypoint cert issue`."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from typer.testing import CliRunner

from rallypoint.cli.cert import ca_app, cert_app
from rallypoint.clock import SystemClock
from rallypoint.security.ca import CertificateAuthority
from rallypoint.security.tokens import KEY_FILE
from rallypoint.storage.sqlite.audit import SqliteAuditRecords
from rallypoint.storage.sqlite.tokens import SqliteTokenRecords

runner = CliRunner()


def test_ca_init_creates_ca_and_prints_fingerprint(tmp_path: Path) -> None:
    result = runner.invoke(ca_app, ["init", "--data-dir", str(tmp_path), "--server-name", "tak.example.org"])
    assert result.exit_code == 0, result.output
    ca = CertificateAuthority.load_or_create(
        tmp_path / "ca", clock=SystemClock(), server_names=["tak.example.org"]
    )
    assert f"SHA-256 fingerprint: {ca.fingerprint}\n" in result.output
    server = x509.load_pem_x509_certificate(ca.server_cert_path.read_bytes())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["tak.example.org"]

    again = runner.invoke(ca_app, ["init", "--data-dir", str(tmp_path)])
    assert again.exit_code == 0
    assert f"SHA-256 fingerprint: {ca.fingerprint}\n" in again.output


def test_cert_issue_writes_bundle(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    result = runner.invoke(
        cert_app,
        [
            "issue",
            "eve",
            "--data-dir",
            str(tmp_path),
            "--out",
            str(out),
            "--password",
            "pw123",
            "--days",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "ca.pem",
        "eve.key",
        "eve.p12",
        "eve.pem",
        "truststore.p12",
    ]
    assert stat.S_IMODE((out / "eve.p12").stat().st_mode) == 0o600
    loaded = pkcs12.load_pkcs12((out / "eve.p12").read_bytes(), b"pw123")
    assert loaded.cert is not None
    cert = loaded.cert.certificate
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 10
    assert (tmp_path / "ca" / "ca.key").exists()


def test_cert_issue_defaults_to_data_dir_clients(tmp_path: Path) -> None:
    result = runner.invoke(cert_app, ["issue", "frank", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    loaded = pkcs12.load_pkcs12((tmp_path / "clients" / "frank" / "frank.p12").read_bytes(), b"atakatak")
    assert loaded.key is not None


def test_cert_issue_refuses_unsafe_name(tmp_path: Path) -> None:
    result = runner.invoke(cert_app, ["issue", "../../etc/x", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "refused" in result.output
    assert not (tmp_path / "clients").exists()
    assert not list(tmp_path.parent.glob("etc"))


def test_fingerprints_are_printed_verbatim() -> None:
    # ":AB:" is a rich emoji code; a fingerprint containing it must not be rewritten.
    from rallypoint.cli.cert import _console

    console = _console()
    fingerprint = "77:D5:51:AB:7F:40:" + ":".join(["C3"] * 40)
    with console.capture() as captured:
        console.print(f"SHA-256 fingerprint: {fingerprint}")
    assert captured.get() == f"SHA-256 fingerprint: {fingerprint}\n"


def test_cert_issue_uses_the_p12_password_setting(tmp_path: Path) -> None:
    config = tmp_path / "rallypoint.toml"
    config.write_text('[rallypoint]\np12_password = "from-config-1"\n')
    result = runner.invoke(cert_app, ["issue", "gina", "--data-dir", str(tmp_path), "--config", str(config)])
    assert result.exit_code == 0, result.output
    bundle = tmp_path / "clients" / "gina"
    assert pkcs12.load_pkcs12((bundle / "gina.p12").read_bytes(), b"from-config-1").key is not None
    pkcs12.load_pkcs12((bundle / "truststore.p12").read_bytes(), b"from-config-1")

    result = runner.invoke(
        cert_app, ["issue", "hal", "--data-dir", str(tmp_path)], env={"RALLYPOINT_P12_PASSWORD": "from-env-22"}
    )
    assert result.exit_code == 0, result.output
    assert pkcs12.load_pkcs12((tmp_path / "clients" / "hal" / "hal.p12").read_bytes(), b"from-env-22").key

    result = runner.invoke(
        cert_app, ["issue", "ivy", "--data-dir", str(tmp_path), "--config", str(config), "--password", "given-3"]
    )
    assert result.exit_code == 0, result.output
    assert pkcs12.load_pkcs12((tmp_path / "clients" / "ivy" / "ivy.p12").read_bytes(), b"given-3").key


def _audit_actions(data_dir: Path) -> list[tuple[str, str, dict[str, str]]]:
    from rallypoint.cli.audit import audit_path
    from rallypoint.security.audit import AuditLog

    async def go() -> list[tuple[str, str, dict[str, str]]]:
        log = AuditLog(SqliteAuditRecords(audit_path(data_dir)))
        try:
            return [(e.action, e.target, e.detail) for e in await log.entries()]
        finally:
            await log.close()

    return asyncio.run(go())


def test_revoke_by_name_ignores_case_and_revokes_the_api_tokens(tmp_path: Path) -> None:
    from rallypoint.security.revocation import CertificateRegistry
    from rallypoint.security.tokens import TokenService

    assert runner.invoke(cert_app, ["issue", "Alice", "--data-dir", str(tmp_path)]).exit_code == 0
    assert runner.invoke(cert_app, ["issue", "bob", "--data-dir", str(tmp_path)]).exit_code == 0

    async def issue_tokens() -> tuple[str, str]:
        tokens = TokenService(SqliteTokenRecords(tmp_path / "tokens.db"), key_path=tmp_path / KEY_FILE,
                              clock=SystemClock())
        try:
            return (await tokens.issue("Alice")).token, (await tokens.issue("bob")).token
        finally:
            await tokens.close()

    alice_token, bob_token = asyncio.run(issue_tokens())
    result = runner.invoke(cert_app, ["revoke", "alice", "--data-dir", str(tmp_path), "--reason", "phone lost"])
    assert result.exit_code == 0, result.output
    assert "revoked 1 API token(s) of Alice" in result.output

    async def live() -> tuple[str | None, str | None]:
        tokens = TokenService(SqliteTokenRecords(tmp_path / "tokens.db"), key_path=tmp_path / KEY_FILE,
                              clock=SystemClock())
        try:
            return await tokens.principal_of(alice_token), await tokens.principal_of(bob_token)
        finally:
            await tokens.close()

    assert asyncio.run(live()) == (None, "bob")
    by_name = {r.name: r.revoked for r in CertificateRegistry(tmp_path / "ca").issued()}
    assert (by_name["Alice"], by_name["bob"]) == (True, False)
    actions = _audit_actions(tmp_path)
    assert ("token.revoke", "Alice", {"scope": "cert.revoke", "revoked": "1"}) in actions
    assert [a for a, target, _ in actions if a == "cert.revoke" and target == "Alice"] == ["cert.revoke"]


def test_revoke_without_a_token_store_creates_none(tmp_path: Path) -> None:
    assert runner.invoke(cert_app, ["issue", "carl", "--data-dir", str(tmp_path)]).exit_code == 0
    result = runner.invoke(cert_app, ["revoke", "carl", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "tokens.db").exists()
    assert ("token.revoke", "carl", {"scope": "cert.revoke", "revoked": "0"}) in _audit_actions(tmp_path)
