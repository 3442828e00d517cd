"""PKCS#12 output must be loadable by ATAK: SHA-1 MAC and PBE-SHA1-3DES, never PBES2 or a SHA-256 MAC."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from rallypoint.clock import ManualClock
from rallypoint.security.ca import CertificateAuthority, IssuedCertificate

OID_SHA1 = "1.3.14.3.2.26"
OID_SHA256 = "2.16.840.1.101.3.4.2.1"
OID_PBE_SHA1_3DES = "1.2.840.113549.1.12.1.3"
OID_PBES2 = "1.2.840.113549.1.5.13"


# ---- a tiny DER reader, enough to walk a PFX -------------------------------------------------


def _read_tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4:
            raise ValueError("unsupported length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated")
    return tag, data[pos : pos + length], pos + length


def _children(value: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(value):
        tag, body, pos = _read_tlv(value, pos)
        out.append((tag, body))
    return out


def _oid(body: bytes) -> str:
    arcs, acc = list(divmod(body[0], 40)) if body[0] < 80 else [2, body[0] - 80], 0
    for byte in body[1:]:
        acc = (acc << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(acc)
            acc = 0
    return ".".join(map(str, arcs))


def _all_oids(value: bytes) -> list[str]:
    """Every OID in a DER value, descending into constructed values and into OCTET STRINGs holding DER."""
    found: list[str] = []
    try:
        items = _children(value)
    except (ValueError, IndexError):
        return found
    for tag, body in items:
        if tag == 0x06:
            found.append(_oid(body))
        elif tag & 0x20 or tag == 0x04:
            found += _all_oids(body)
    return found


def _mac_data(pfx: bytes) -> tuple[str, int]:
    """(digest OID, iterations) of the PFX MacData."""
    [(tag, pfx_body)] = _children(pfx)
    assert tag == 0x30
    version, _auth_safe, (mac_tag, mac_data) = _children(pfx_body)
    assert version == (0x02, b"\x03")
    assert mac_tag == 0x30
    digest_info, _salt, (iter_tag, iterations) = _children(mac_data)
    assert iter_tag == 0x02
    algorithm, _digest = _children(digest_info[1])
    oid_tag, oid_body = _children(algorithm[1])[0]
    assert oid_tag == 0x06
    return _oid(oid_body), int.from_bytes(iterations, "big")


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(tmp_path_factory.mktemp("p12") / "ca", clock=ManualClock())


@pytest.fixture(scope="module")
def issued(ca: CertificateAuthority) -> IssuedCertificate:
    return ca.issue_client("dave")


def test_der_reader_understands_oids() -> None:
    assert _oid(bytes.fromhex("2b0e03021a")) == OID_SHA1
    assert _oid(bytes.fromhex("608648016503040201")) == OID_SHA256


def test_der_reader_sees_the_modern_defaults_it_must_reject(issued: IssuedCertificate) -> None:
    # OpenSSL 3 style output (what ATAK refuses) must not pass the checks below.
    key = serialization.load_pem_private_key(issued.private_key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    cert = x509.load_pem_x509_certificate(issued.certificate_pem)
    modern = pkcs12.serialize_key_and_certificates(
        b"dave", key, cert, None, serialization.BestAvailableEncryption(b"atakatak")
    )
    assert _mac_data(modern)[0] == OID_SHA256
    assert OID_PBES2 in _all_oids(modern)


def test_client_p12_uses_sha1_mac_and_legacy_pbe(ca: CertificateAuthority, issued: IssuedCertificate) -> None:
    blob = ca.pkcs12_bytes(issued)
    assert _mac_data(blob) == (OID_SHA1, 2048)
    oids = _all_oids(blob)
    assert oids.count(OID_PBE_SHA1_3DES) >= 2  # the certificate bag and the shrouded key bag
    assert OID_PBES2 not in oids
    assert OID_SHA256 not in oids


def test_truststore_p12_uses_sha1_mac_and_holds_only_the_ca(ca: CertificateAuthority) -> None:
    blob = ca.truststore_p12()
    assert _mac_data(blob)[0] == OID_SHA1
    assert OID_PBES2 not in _all_oids(blob)
    loaded = pkcs12.load_pkcs12(blob, b"atakatak")
    assert loaded.key is None and loaded.cert is None
    assert [c.certificate for c in loaded.additional_certs] == [ca.ca_certificate]


def test_client_p12_loads_with_the_default_password(
    ca: CertificateAuthority, issued: IssuedCertificate
) -> None:
    loaded = pkcs12.load_pkcs12(ca.pkcs12_bytes(issued), b"atakatak")
    assert loaded.cert is not None and loaded.key is not None
    assert loaded.cert.certificate == x509.load_pem_x509_certificate(issued.certificate_pem)
    assert loaded.cert.friendly_name == b"dave"
    assert loaded.key.public_key() == loaded.cert.certificate.public_key()
    assert [c.certificate for c in loaded.additional_certs] == [ca.ca_certificate]
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(ca.pkcs12_bytes(issued), b"wrong")


def test_client_p12_without_ca(ca: CertificateAuthority, issued: IssuedCertificate) -> None:
    loaded = pkcs12.load_pkcs12(ca.pkcs12_bytes(issued, password="other", include_ca=False), b"other")
    assert loaded.additional_certs == []


def test_certificates_p12_holds_signed_cert_and_ca(
    ca: CertificateAuthority, issued: IssuedCertificate
) -> None:
    signed = x509.load_pem_x509_certificate(issued.certificate_pem)
    loaded = pkcs12.load_pkcs12(ca.certificates_p12([signed, ca.ca_certificate]), b"atakatak")
    assert [c.certificate for c in loaded.additional_certs] == [signed, ca.ca_certificate]
    assert [c.friendly_name for c in loaded.additional_certs] == [b"dave", b"ca0"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl binary not installed")
def test_openssl_reports_legacy_algorithms(
    ca: CertificateAuthority, issued: IssuedCertificate, tmp_path: Path
) -> None:
    path = tmp_path / "dave.p12"
    path.write_bytes(ca.pkcs12_bytes(issued))
    result = subprocess.run(
        ["openssl", "pkcs12", "-info", "-noout", "-legacy", "-passin", "pass:atakatak", "-in", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if "legacy" in result.stderr and "unknown option" in result.stderr.lower():
        pytest.skip("openssl 1.x has no -legacy flag")
    assert result.returncode == 0, result.stderr
    assert "MAC: sha1" in result.stderr
    assert "pbeWithSHA1And3-KeyTripleDES-CBC" in result.stderr
    assert "PBES2" not in result.stderr


def test_private_key_in_p12_matches_issued_pem(ca: CertificateAuthority, issued: IssuedCertificate) -> None:
    loaded = pkcs12.load_pkcs12(ca.pkcs12_bytes(issued), b"atakatak")
    assert loaded.key is not None
    pem = loaded.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert pem == issued.private_key_pem
