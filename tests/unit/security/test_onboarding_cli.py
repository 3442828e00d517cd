"""`rallypoint onboard`: writes a connection package and, in enrollment mode, an enrollment QR code."""

from __future__ import annotations

import asyncio
import io
import stat
import zipfile
from pathlib import Path

import pytest
import typer
from cryptography.hazmat.primitives.serialization import pkcs12
from lxml import etree
from typer.testing import CliRunner

from rallypoint.cli.audit import audit_path
from rallypoint.cli.onboard import onboard_command
from rallypoint.security.audit import AuditEntry, AuditLog
from rallypoint.security.onboarding import enrollment_uri, onboarding_qr
from rallypoint.security.users import UserAccounts
from rallypoint.storage.sqlite.audit import SqliteAuditRecords
from rallypoint.storage.sqlite.users import SqliteUserRecords

ACCOUNTS = ("alice", "bob", "carol", "dave")


def _add_accounts(data_dir: Path, *names: str, disabled: bool = False) -> None:
    async def go() -> None:
        store = UserAccounts(SqliteUserRecords(data_dir / "users.db"))
        try:
            for name in names:
                await store.add(name, password=None)
                if disabled:
                    await store.set_disabled(name, True)
        finally:
            await store.close()

    asyncio.run(go())


@pytest.fixture
def data_dir(data_dir: Path) -> Path:
    """The shared data directory with the accounts these tests onboard."""
    _add_accounts(data_dir, *ACCOUNTS)
    return data_dir


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("onboard")(onboard_command)

    @app.callback()
    def _group() -> None:
        """Keeps `onboard` a subcommand, as in the main CLI."""

    return app


def _run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(_app(), ["onboard", *args], input=stdin, env=env)
    return result.exit_code, result.output


def _audit_entries(data_dir: Path) -> list[AuditEntry]:
    async def go() -> list[AuditEntry]:
        log = AuditLog(SqliteAuditRecords(audit_path(data_dir)))
        try:
            return await log.entries()
        finally:
            await log.close()

    return asyncio.run(go())


def test_certificate_mode_writes_package_and_no_enrollment_qr(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    # Left by an earlier enrollment-mode run: it would send this user to enrollment.
    (out / "alice-qr.svg").write_bytes(onboarding_qr(enrollment_uri("tak.example.org", "alice", "old-secret")))
    code, output = _run("alice", "--data-dir", str(data_dir), "--host", "tak.example.org", "--out", str(out))
    assert code == 0, output
    package = out / "alice-connection.zip"
    assert str(package) in output
    assert stat.S_IMODE(package.stat().st_mode) == 0o600
    archive = zipfile.ZipFile(io.BytesIO(package.read_bytes()))
    assert "certs/alice.p12" in archive.namelist()
    assert pkcs12.load_pkcs12(archive.read("certs/alice.p12"), b"atakatak").key is not None
    assert sorted(p.name for p in out.iterdir()) == ["alice-connection.zip"]
    assert "QR" not in output.replace("no QR code in certificate mode", "")


def test_certificate_mode_audits_the_issued_certificate(data_dir: Path, tmp_path: Path) -> None:
    code, output = _run("alice", "--data-dir", str(data_dir), "--host", "tak.example.org", "--out", str(tmp_path / "o"))
    assert code == 0, output
    issued = [e for e in _audit_entries(data_dir) if e.action == "cert.issue"]
    assert len(issued) == 1
    assert issued[0].target == "alice" and issued[0].detail["via"] == "onboard"
    assert f"certificate serial: {issued[0].detail['serial']}" in output


def test_enrollment_mode_issues_and_audits_nothing(data_dir: Path, tmp_path: Path) -> None:
    code, output = _run(
        "bob", "--data-dir", str(data_dir), "--host", "tak.example.org", "--mode", "enrollment", "--out", str(tmp_path)
    )
    assert code == 0, output
    assert [e for e in _audit_entries(data_dir) if e.action == "cert.issue"] == []
    # Without --token-stdin the QR code pre-fills host and username only.
    assert (tmp_path / "bob-qr.svg").read_bytes() == onboarding_qr(enrollment_uri("tak.example.org", "bob"))


def test_token_stdin_is_refused_in_certificate_mode(data_dir: Path, tmp_path: Path) -> None:
    code, output = _run(
        "alice", "--data-dir", str(data_dir), "--host", "h.example", "--out", str(tmp_path / "o"), "--token-stdin",
        stdin="secret\n",
    )  # fmt: skip
    assert code == 2
    assert "secret" not in output
    assert not (tmp_path / "o").exists()


def test_p12_password_comes_from_the_setting_unless_given(data_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "rallypoint.toml"
    config.write_text('[rallypoint]\np12_password = "from-config-1"\n')
    out = tmp_path / "a"
    code, output = _run("alice", "--data-dir", str(data_dir), "--host", "h.example", "--out", str(out),
                        "--config", str(config))  # fmt: skip
    assert code == 0, output
    archive = zipfile.ZipFile(io.BytesIO((out / "alice-connection.zip").read_bytes()))
    assert pkcs12.load_pkcs12(archive.read("certs/alice.p12"), b"from-config-1").key is not None
    pkcs12.load_pkcs12(archive.read("certs/truststore.p12"), b"from-config-1")
    pref = {e.get("key"): e.text for e in etree.fromstring(archive.read("certs/h.example.pref")).iter("entry")}
    assert pref["clientPassword0"] == "from-config-1"

    out = tmp_path / "b"
    code, output = _run("carol", "--data-dir", str(data_dir), "--host", "h.example", "--out", str(out),
                        "--mode", "enrollment", env={"RALLYPOINT_P12_PASSWORD": "from-env-22"})  # fmt: skip
    assert code == 0, output
    archive = zipfile.ZipFile(io.BytesIO((out / "carol-connection.zip").read_bytes()))
    pkcs12.load_pkcs12(archive.read("certs/truststore.p12"), b"from-env-22")

    out = tmp_path / "c"
    code, output = _run("dave", "--data-dir", str(data_dir), "--host", "h.example", "--out", str(out),
                        "--config", str(config), "--password", "explicit-3")  # fmt: skip
    assert code == 0, output
    archive = zipfile.ZipFile(io.BytesIO((out / "dave-connection.zip").read_bytes()))
    assert pkcs12.load_pkcs12(archive.read("certs/dave.p12"), b"explicit-3").key is not None


def test_unreadable_config_is_a_usage_error(data_dir: Path, tmp_path: Path) -> None:
    code, output = _run("alice", "--data-dir", str(data_dir), "--host", "h.example", "--out", str(tmp_path / "o"),
                        "--config", str(tmp_path / "missing.toml"))  # fmt: skip
    assert code == 2
    assert "configuration error" in output
    assert not (tmp_path / "o").exists()


def test_enrollment_mode_with_token_and_custom_ports(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, output = _run(
        "bob", "--data-dir", str(data_dir), "--host", "10.0.0.5", "--tls-port", "9089", "--mode", "enrollment",
        "--out", str(out), "--password", "pw123456", "--token-stdin",
        stdin="bob's password\n",
    )  # fmt: skip
    assert code == 0, output
    archive = zipfile.ZipFile(io.BytesIO((out / "bob-connection.zip").read_bytes()))
    assert not [n for n in archive.namelist() if n.endswith("bob.p12")]
    pref = etree.fromstring(archive.read("certs/10.0.0.5.pref"))
    entries = {e.get("key"): e.text for e in pref.iter("entry")}
    assert entries["connectString0"] == "10.0.0.5:9089:ssl"
    assert entries["enrollForCertificateWithTrust0"] == "true"
    pkcs12.load_pkcs12(archive.read("certs/truststore.p12"), b"pw123456")
    assert "bob's password" not in output
    # The QR code is ATAK's enrollment link with the password, because it was asked for explicitly.
    expected = onboarding_qr(enrollment_uri("10.0.0.5", "bob", "bob's password"))
    assert (out / "bob-qr.svg").read_bytes() == expected


def test_hostile_names_are_refused(data_dir: Path, tmp_path: Path) -> None:
    code, _ = _run("../evil", "--data-dir", str(data_dir), "--host", "h.example", "--out", str(tmp_path / "o"))
    assert code == 1
    code, _ = _run("alice", "--data-dir", str(data_dir), "--host", "a/b", "--out", str(tmp_path / "o"))
    assert code == 2
    assert not (tmp_path / "o").exists()


def test_host_is_required(data_dir: Path) -> None:
    code, _ = _run("alice", "--data-dir", str(data_dir))
    assert code != 0


def test_unknown_account_is_refused_and_nothing_is_written(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    code, output = _run("mallory", "--data-dir", str(data_dir), "--host", "localhost", "--out", str(out))
    assert code == 1
    assert "no account 'mallory'" in output and "rallypoint user add mallory" in output
    assert not out.exists()
    assert _audit_entries(data_dir) == []


def test_without_any_accounts_nothing_is_created(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, output = _run("alice", "--data-dir", str(empty), "--host", "localhost", "--mode", "enrollment")
    assert code == 1
    assert "no account 'alice'" in output
    assert list(empty.iterdir()) == []  # neither a CA nor an empty users.db


def test_disabled_account_is_refused(data_dir: Path, tmp_path: Path) -> None:
    _add_accounts(data_dir, "erin", disabled=True)
    code, output = _run("erin", "--data-dir", str(data_dir), "--host", "localhost", "--out", str(tmp_path / "o"))
    assert code == 1
    assert "'erin' is disabled" in output
    assert not (tmp_path / "o").exists()


def _run_split(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(_app(), ["onboard", *args])
    return result.exit_code, result.stdout, result.stderr


def test_host_outside_the_server_certificate_is_warned_about(data_dir: Path, tmp_path: Path) -> None:
    # The test CA's server certificate names localhost and 127.0.0.1 only.
    code, stdout, stderr = _run_split("alice", "--data-dir", str(data_dir), "--host", "tak.example.org",
                                      "--out", str(tmp_path / "a"))  # fmt: skip
    assert code == 0, stdout + stderr
    assert "warning: tak.example.org is not among the server certificate's names" in stderr
    assert "localhost, 127.0.0.1" in stderr and "server_names" in stderr
    assert "warning" not in stdout
    assert (tmp_path / "a" / "alice-connection.zip").exists()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST"])
def test_host_in_the_server_certificate_gets_no_warning(data_dir: Path, tmp_path: Path, host: str) -> None:
    code, stdout, stderr = _run_split("alice", "--data-dir", str(data_dir), "--host", host, "--out", str(tmp_path))
    assert code == 0, stdout + stderr
    assert "warning" not in stderr
