"""The built-in CA: files, permissions, certificate contents, reuse and re-issue."""

from __future__ import annotations

import stat
from datetime import timedelta
from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rallypoint.clock import ManualClock, ms_to_datetime
from rallypoint.errors import AuthError, ConfigError
from rallypoint.security.ca import (
    CertificateAuthority,
    CertificateRequestError,
    fingerprint_sha256,
    write_client_bundle,
)

NOW_MS = 1_750_000_000_000


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data") / "ca"


@pytest.fixture(scope="module")
def ca(ca_dir: Path) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(
        ca_dir, clock=ManualClock(NOW_MS), server_names=("localhost", "127.0.0.1", "tak.example.org")
    )


def _server_cert(ca: CertificateAuthority) -> x509.Certificate:
    return x509.load_pem_x509_certificate(ca.server_cert_path.read_bytes())


def test_first_run_creates_files_with_private_permissions(ca: CertificateAuthority, ca_dir: Path) -> None:
    assert sorted(p.name for p in ca_dir.iterdir()) == ["ca.key", "ca.pem", "issued", "server.key", "server.pem"]
    assert oct((ca_dir / "issued").stat().st_mode & 0o777) == "0o700"
    assert _mode(ca_dir) == 0o700
    assert _mode(ca_dir / "ca.key") == 0o600
    assert _mode(ca_dir / "server.key") == 0o600
    assert ca.ca_path == ca_dir / "ca.pem"


def test_ca_certificate_is_a_constrained_rsa_ca(ca: CertificateAuthority) -> None:
    cert = ca.ca_certificate
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Rallypoint CA"
    assert cert.issuer == cert.subject
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 3072
    assert ca.ca_pem.startswith(b"-----BEGIN CERTIFICATE-----")


def test_validity_comes_from_the_injected_clock(ca: CertificateAuthority) -> None:
    now = ms_to_datetime(NOW_MS)
    assert ca.ca_certificate.not_valid_before_utc == now - timedelta(minutes=5)
    assert ca.ca_certificate.not_valid_after_utc == now + timedelta(days=3650)
    server = _server_cert(ca)
    assert server.not_valid_before_utc == now - timedelta(minutes=5)
    assert server.not_valid_after_utc == now + timedelta(days=730)
    client = x509.load_pem_x509_certificate(ca.issue_client("alice", days=30).certificate_pem)
    assert client.not_valid_after_utc == now + timedelta(days=30)
    default = x509.load_pem_x509_certificate(ca.issue_client("bob").certificate_pem)
    assert default.not_valid_after_utc == now + timedelta(days=365)


def test_server_certificate_names_and_usage(ca: CertificateAuthority) -> None:
    server = _server_cert(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "tak.example.org"}
    assert san.get_values_for_type(x509.IPAddress) == [ip_address("127.0.0.1")]
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    server.verify_directly_issued_by(ca.ca_certificate)


def test_client_certificate_subject_usage_and_key(ca: CertificateAuthority) -> None:
    issued = ca.issue_client("alice")
    cert = x509.load_pem_x509_certificate(issued.certificate_pem)
    assert issued.name == "alice"
    assert issued.serial == cert.serial_number
    assert [(a.oid, a.value) for a in cert.subject] == [
        (NameOID.COMMON_NAME, "alice"),
        (NameOID.ORGANIZATION_NAME, "Rallypoint"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "Rallypoint"),
    ]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 2048
    cert.verify_directly_issued_by(ca.ca_certificate)
    assert issued.private_key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")


def test_serials_are_random_128_bit_and_distinct(ca: CertificateAuthority) -> None:
    serials = [ca.issue_client(f"user{i}").serial for i in range(6)]
    serials += [ca.ca_certificate.serial_number, _server_cert(ca).serial_number]
    assert len(set(serials)) == len(serials)
    assert all(0 < s < 2**128 for s in serials)
    # 8 random 128-bit values all below 2**100 would be a broken generator.
    assert max(s.bit_length() for s in serials) > 100


def test_second_load_reuses_the_same_ca(ca: CertificateAuthority, ca_dir: Path) -> None:
    server_before = ca.server_cert_path.read_bytes()
    again = CertificateAuthority.load_or_create(ca_dir, clock=ManualClock(NOW_MS + 86_400_000))
    assert again.fingerprint == ca.fingerprint == fingerprint_sha256(ca.ca_certificate)
    assert ca.server_cert_path.read_bytes() == server_before


def test_new_server_name_reissues_server_cert_keeping_old_names(tmp_path: Path) -> None:
    clock = ManualClock(NOW_MS)
    first = CertificateAuthority.load_or_create(tmp_path / "ca", clock=clock)
    old_key = first.server_key_path.read_bytes()
    second = CertificateAuthority.load_or_create(
        tmp_path / "ca", clock=clock, server_names=("rally.example.net", "10.1.2.3")
    )
    assert second.fingerprint == first.fingerprint
    san = _server_cert(second).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "rally.example.net"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {ip_address("127.0.0.1"), ip_address("10.1.2.3")}
    assert second.server_key_path.read_bytes() != old_key
    assert _mode(second.server_key_path) == 0o600


def test_expiring_server_cert_is_renewed(tmp_path: Path) -> None:
    clock = ManualClock(NOW_MS)
    ca = CertificateAuthority.load_or_create(tmp_path / "ca", clock=clock)
    serial = _server_cert(ca).serial_number
    clock.advance(710 * 86_400)  # inside the 30-day renewal window of the 730-day certificate
    renewed = CertificateAuthority.load_or_create(tmp_path / "ca", clock=clock)
    cert = _server_cert(renewed)
    assert cert.serial_number != serial
    assert cert.not_valid_after_utc == ms_to_datetime(clock.now_ms()) + timedelta(days=730)


def test_half_a_ca_is_refused(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "ca", clock=ManualClock(NOW_MS))
    ca.ca_path.unlink()
    with pytest.raises(ConfigError, match=r"only one of ca\.key and ca\.pem"):
        CertificateAuthority.load_or_create(tmp_path / "ca", clock=ManualClock(NOW_MS))


def test_mismatched_ca_key_is_refused(tmp_path: Path) -> None:
    one = CertificateAuthority.load_or_create(tmp_path / "one", clock=ManualClock(NOW_MS))
    CertificateAuthority.load_or_create(tmp_path / "two", clock=ManualClock(NOW_MS))
    (tmp_path / "two" / "ca.pem").write_bytes(one.ca_pem)
    with pytest.raises(ConfigError, match="not the RSA key"):
        CertificateAuthority.load_or_create(tmp_path / "two", clock=ManualClock(NOW_MS))


@pytest.mark.parametrize(
    "name", ["", "alice; rm -rf /", "../../etc/passwd", "a..b", "$(id)", "bob smith", "x" * 65, "-leading"]
)
def test_unsafe_client_names_are_refused(ca: CertificateAuthority, name: str) -> None:
    with pytest.raises(CertificateRequestError) as info:
        ca.issue_client(name)
    assert info.value.reason == "bad_name"
    assert isinstance(info.value, AuthError) and isinstance(info.value, ValueError)


def test_client_bundle_files_and_permissions(ca: CertificateAuthority, tmp_path: Path) -> None:
    issued = ca.issue_client("carol")
    paths = ca.write_client_bundle(issued, tmp_path / "out", "s3cret-pass")
    names = {p.name: p for p in paths}
    assert set(names) == {"carol.pem", "carol.key", "carol.p12", "ca.pem", "truststore.p12"}
    assert _mode(names["carol.key"]) == 0o600
    assert _mode(names["carol.p12"]) == 0o600
    assert names["carol.pem"].read_bytes() == issued.certificate_pem
    assert names["carol.key"].read_bytes() == issued.private_key_pem
    assert names["ca.pem"].read_bytes() == ca.ca_pem
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files left


def test_function_form_of_write_client_bundle(ca: CertificateAuthority, tmp_path: Path) -> None:
    paths = write_client_bundle(ca.issue_client("gina"), tmp_path, "atakatak", ca=ca)
    assert {p.name for p in paths} == {"gina.pem", "gina.key", "gina.p12", "ca.pem", "truststore.p12"}
    assert all(p.exists() for p in paths)
