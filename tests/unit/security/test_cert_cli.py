"""`rallypoint ca init` and `rallypoint cert issue`."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from typer.testing import CliRunner

from rallypoint.cli.cert import ca_app, cert_app
from rallypoint.clock import SystemClock
from rallypoint.security.ca import CertificateAuthority

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
