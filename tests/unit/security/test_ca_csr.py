"""Signing client CSRs (certificate enrollment): what is accepted, what is stripped, what is refused."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rallypoint.clock import ManualClock
from rallypoint.security.ca import CertificateAuthority, CertificateRequestError


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(
        tmp_path_factory.mktemp("csr") / "ca", clock=ManualClock(), org="Field Team", org_unit="Blue"
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _csr(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
    attributes: list[x509.NameAttribute[str]],
    *,
    extensions: Sequence[x509.ExtensionType] = (),
) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    for ext in extensions:
        builder = builder.add_extension(ext, critical=False)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


def _cn(value: str) -> x509.NameAttribute[str]:
    return x509.NameAttribute(NameOID.COMMON_NAME, value)


def _pem(csr: x509.CertificateSigningRequest) -> bytes:
    return csr.public_bytes(serialization.Encoding.PEM)


def _refusal(ca: CertificateAuthority, data: bytes, expected_cn: str = "alice") -> CertificateRequestError:
    with pytest.raises(CertificateRequestError) as info:
        ca.sign_csr(data, expected_cn=expected_cn, days=365)
    # Messages stay short whatever the request held, so they are safe to log and return.
    assert len(str(info.value)) < 300
    return info.value


def test_rsa_csr_is_signed_with_configured_subject(
    ca: CertificateAuthority, rsa_key: rsa.RSAPrivateKey
) -> None:
    csr = _csr(
        rsa_key,
        [
            _cn("alice"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Evil Corp"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "ZZ"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "root@example.org"),
        ],
        extensions=[
            x509.BasicConstraints(ca=True, path_length=None),
            x509.SubjectAlternativeName([x509.DNSName("bank.example.com")]),
        ],
    )
    cert = ca.sign_csr(_pem(csr), expected_cn="alice", days=90)
    assert [(a.oid, a.value) for a in cert.subject] == [
        (NameOID.COMMON_NAME, "alice"),
        (NameOID.ORGANIZATION_NAME, "Field Team"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "Blue"),
    ]
    assert cert.public_key() == rsa_key.public_key()
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 90
    cert.verify_directly_issued_by(ca.ca_certificate)


def test_der_csr_is_accepted(ca: CertificateAuthority, rsa_key: rsa.RSAPrivateKey) -> None:
    der = _csr(rsa_key, [_cn("alice")]).public_bytes(serialization.Encoding.DER)
    cert = ca.sign_csr(der, expected_cn="alice", days=1)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()])
def test_ec_p256_and_p384_are_accepted(ca: CertificateAuthority, curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve)
    cert = ca.sign_csr(_pem(_csr(key, [_cn("alice")])), expected_cn="alice", days=30)
    assert cert.public_key() == key.public_key()


def test_wrong_cn_is_refused(ca: CertificateAuthority, rsa_key: rsa.RSAPrivateKey) -> None:
    error = _refusal(ca, _pem(_csr(rsa_key, [_cn("mallory")])), expected_cn="alice")
    assert error.reason == "cn_mismatch"


def test_two_cns_are_refused(ca: CertificateAuthority, rsa_key: rsa.RSAPrivateKey) -> None:
    assert _refusal(ca, _pem(_csr(rsa_key, [_cn("alice"), _cn("admin")]))).reason == "bad_subject"


def test_missing_cn_is_refused(ca: CertificateAuthority, rsa_key: rsa.RSAPrivateKey) -> None:
    csr = _csr(rsa_key, [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "x")])
    assert _refusal(ca, _pem(csr)).reason == "bad_subject"


def test_rsa_1024_is_refused(ca: CertificateAuthority) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    error = _refusal(ca, _pem(_csr(small, [_cn("alice")])))
    assert error.reason == "weak_key"
    assert "1024" in str(error)


def test_other_curves_and_key_types_are_refused(ca: CertificateAuthority) -> None:
    p521 = _csr(ec.generate_private_key(ec.SECP521R1()), [_cn("alice")])
    assert _refusal(ca, _pem(p521)).reason == "unsupported_key"
    edwards = _csr(ed25519.Ed25519PrivateKey.generate(), [_cn("alice")])
    assert _refusal(ca, _pem(edwards)).reason == "unsupported_key"


def test_tampered_signature_is_refused(ca: CertificateAuthority, rsa_key: rsa.RSAPrivateKey) -> None:
    der = bytearray(_csr(rsa_key, [_cn("alice")]).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # last byte of the signature
    assert _refusal(ca, bytes(der)).reason == "bad_signature"


@pytest.mark.parametrize(
    "data", [b"", b"not a csr", b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", b"\x30\x82\xff"]
)
def test_garbage_is_refused(ca: CertificateAuthority, data: bytes) -> None:
    assert _refusal(ca, data).reason == "malformed"


def test_oversized_input_is_refused_before_parsing(ca: CertificateAuthority) -> None:
    assert _refusal(ca, b"0" * 100_000).reason == "too_large"


@pytest.mark.filterwarnings("ignore:Attribute's length must be:UserWarning")
@pytest.mark.parametrize(
    "hostile",
    ["alice; rm -rf /", "`reboot`", "$(curl evil)", "../../etc", "..", "a|b", "x\ny", "A" * 10_000],
)
def test_hostile_cn_is_refused_cleanly(
    ca: CertificateAuthority, rsa_key: rsa.RSAPrivateKey, hostile: str
) -> None:
    # _validate=False lets the test build names a well-behaved client library would refuse to build.
    attribute = x509.NameAttribute(NameOID.COMMON_NAME, hostile, _validate=False)
    csr_pem = _pem(_csr(rsa_key, [attribute]))
    assert _refusal(ca, csr_pem, expected_cn="alice").reason == "bad_name"
    # Even if the authenticated user name were the hostile string itself, nothing is signed.
    assert _refusal(ca, csr_pem, expected_cn=hostile).reason == "bad_name"


def test_days_must_be_positive(ca: CertificateAuthority, rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError, match="at least one day"):
        ca.sign_csr(_pem(_csr(rsa_key, [_cn("alice")])), expected_cn="alice", days=0)
