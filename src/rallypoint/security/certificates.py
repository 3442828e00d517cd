"""X.509 building blocks shared by the certificate authority and the PKCS#12 bundles.

Names accepted as certificate CNs (and file names), the issued-certificate record, fingerprints,
serial numbers, key and extension helpers, and private file writes.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Sequence
from pathlib import Path

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from rallypoint.errors import AuthError

# Names end up in file names and in logs; keep them to a conservative, shell- and path-safe alphabet.
# 64 is the X.509 upper bound for a common name.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class CertificateRequestError(AuthError, ValueError):
    """A name or certificate signing request was refused; ``reason`` is a short stable label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class IssuedCertificate(msgspec.Struct, frozen=True):
    """A client certificate together with its freshly generated private key (both PEM)."""

    name: str
    certificate_pem: bytes
    private_key_pem: bytes
    serial: int


def validate_name(name: str) -> str:
    """Return ``name`` if it is safe as a CN and as a file name; raise CertificateRequestError if not."""
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or ".." in name:
        shown = repr(name[:40]) + ("..." if len(name) > 40 else "") if isinstance(name, str) else "?"
        raise CertificateRequestError(
            "bad_name",
            f"{shown} must be 1-64 characters of letters, digits, '.', '_', '@', '-' "
            "(starting with a letter or digit, no '..')",
        )
    return name


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """Colon-separated upper-case SHA-256 fingerprint, as ``openssl x509 -fingerprint`` prints it."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def random_serial() -> int:
    while True:
        serial = secrets.randbits(128)
        if serial:
            return serial


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` atomically to ``path``; the file has ``mode`` from the moment it exists."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def subject_name(cn: str, org: str, org_unit: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, org_unit),
        ]
    )


def key_usage(**enabled: bool) -> x509.KeyUsage:
    names = "digital_signature content_commitment key_encipherment data_encipherment key_agreement"
    flags = dict.fromkeys((names + " key_cert_sign crl_sign encipher_only decipher_only").split(), False)
    return x509.KeyUsage(**(flags | enabled))


def san_entries(names: Sequence[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def san_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = list(san.get_values_for_type(x509.DNSName))
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return names
