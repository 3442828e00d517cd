"""PKCS#12 keystores, truststores and client bundles for the certificates Rallypoint's CA issues.

PKCS#12 files use a SHA-1 MAC and PBE-SHA1-3DES: ATAK refuses the SHA-256 MAC that OpenSSL 3 writes
by default. The password for generated bundles defaults to ``atakatak``, the TAK convention.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from rallypoint.security.certificates import IssuedCertificate, validate_name, write_file

if TYPE_CHECKING:
    from rallypoint.security.ca import CertificateAuthority

DEFAULT_P12_PASSWORD = "atakatak"


def p12_encryption(password: str) -> serialization.KeySerializationEncryption:
    """PKCS#12 encryption settings every TAK client accepts (SHA-1 MAC, PBE-SHA1-3DES)."""
    # ATAK rejects the SHA-256 MAC and PBES2 that OpenSSL 3 uses by default.
    return (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())
        .build(password.encode())
    )


def pkcs12_bytes(
    issued: IssuedCertificate,
    ca_certificate: x509.Certificate,
    *,
    password: str = DEFAULT_P12_PASSWORD,
    include_ca: bool = True,
) -> bytes:
    """PKCS#12 keystore with the client key, its certificate and (by default) the CA certificate."""
    key = serialization.load_pem_private_key(issued.private_key_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise TypeError(f"unexpected key type {type(key).__name__}")
    return pkcs12.serialize_key_and_certificates(
        issued.name.encode(),
        key,
        x509.load_pem_x509_certificate(issued.certificate_pem),
        [ca_certificate] if include_ca else None,
        p12_encryption(password),
    )


def truststore_p12(ca_certificate: x509.Certificate, password: str = DEFAULT_P12_PASSWORD) -> bytes:
    """PKCS#12 truststore holding only the CA certificate (ATAK's "CA certificate" setting)."""
    return certificates_p12([ca_certificate], ca_certificate, password=password)


def certificates_p12(
    certificates: Sequence[x509.Certificate],
    ca_certificate: x509.Certificate,
    *,
    password: str = DEFAULT_P12_PASSWORD,
) -> bytes:
    """PKCS#12 of trusted certificates only, e.g. a signed enrollment certificate plus the CA."""
    entries = [
        pkcs12.PKCS12Certificate(cert, _friendly_name(cert, index, ca_certificate))
        for index, cert in enumerate(certificates)
    ]
    return pkcs12.serialize_java_truststore(entries, p12_encryption(password))


def _friendly_name(cert: x509.Certificate, index: int, ca_certificate: x509.Certificate) -> bytes:
    if cert == ca_certificate:
        return b"ca0"
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = cns[0].value if cns else f"cert{index}"
    return value.encode() if isinstance(value, str) else value


def write_client_bundle(
    issued: IssuedCertificate,
    out_dir: Path,
    password: str = DEFAULT_P12_PASSWORD,
    *,
    ca: CertificateAuthority,
) -> list[Path]:
    """Write NAME.pem, NAME.key (0600), NAME.p12 (0600), ca.pem and truststore.p12 into ``out_dir``."""
    validate_name(issued.name)
    out_dir = Path(out_dir)
    os.makedirs(out_dir, mode=0o700, exist_ok=True)
    paths = {
        "cert": out_dir / f"{issued.name}.pem",
        "key": out_dir / f"{issued.name}.key",
        "p12": out_dir / f"{issued.name}.p12",
        "ca": out_dir / "ca.pem",
        "trust": out_dir / "truststore.p12",
    }
    write_file(paths["cert"], issued.certificate_pem, 0o644)
    write_file(paths["key"], issued.private_key_pem, 0o600)
    write_file(paths["p12"], pkcs12_bytes(issued, ca.ca_certificate, password=password), 0o600)
    write_file(paths["ca"], ca.ca_pem, 0o644)
    write_file(paths["trust"], truststore_p12(ca.ca_certificate, password), 0o644)
    return list(paths.values())
