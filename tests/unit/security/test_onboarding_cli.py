"""`rallypoint onboard`: writes a connection package and an enrollment QR code."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import typer
from cryptography.hazmat.primitives.serialization import pkcs12
from lxml import etree
from typer.testing import CliRunner

from rallypoint.cli.onboard import onboard_command


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("onboard")(onboard_command)

    @app.callback()
    def _group() -> None:
        """Keeps `onboard` a subcommand, as in the main CLI."""

    return app


def _run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(_app(), ["onboard", *args], input=stdin)
    return result.exit_code, result.output


def test_certificate_mode_writes_package_and_qr(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, output = _run("alice", "--data-dir", str(data_dir), "--host", "tak.example.org", "--out", str(out))
    assert code == 0, output
    package, qr = out / "alice-connection.zip", out / "alice-qr.svg"
    assert str(package) in output and str(qr) in output
    assert stat.S_IMODE(package.stat().st_mode) == 0o600
    archive = zipfile.ZipFile(io.BytesIO(package.read_bytes()))
    assert "certs/alice.p12" in archive.namelist()
    assert pkcs12.load_pkcs12(archive.read("certs/alice.p12"), b"atakatak").key is not None
    assert etree.fromstring(qr.read_bytes()).tag == "{http://www.w3.org/2000/svg}svg"


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


def test_hostile_names_are_refused(data_dir: Path, tmp_path: Path) -> None:
    code, _ = _run("../evil", "--data-dir", str(data_dir), "--host", "h.example", "--out", str(tmp_path / "o"))
    assert code == 1
    code, _ = _run("alice", "--data-dir", str(data_dir), "--host", "a/b", "--out", str(tmp_path / "o"))
    assert code == 2
    assert not (tmp_path / "o").exists()


def test_host_is_required(data_dir: Path) -> None:
    code, _ = _run("alice", "--data-dir", str(data_dir))
    assert code != 0
