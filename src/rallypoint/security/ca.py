"""Rallypoint's built-in certificate authority.

Key choices, made for the broadest TAK client compatibility (ATAK on old Android releases, WinTAK on
Windows SChannel, iTAK on iOS):

* The CA key is RSA 3072 (about 128-bit strength, valid for the CA's ten years). Every client stack we
  care about verifies RSA signatures; EC CA keys are not universally accepted by older WinTAK/Android
  trust stores.
* Server and client keys are RSA 2048, which is what ATAK itself generates for its enrollment CSRs.
* Signatures use SHA-256. Serial numbers are 128 random bits from ``secrets``.
* PKCS#12 bundles are written by :mod:`rallypoint.security.pkcs12` (SHA-1 MAC and PBE-SHA1-3DES, which
  ATAK requires; password ``atakatak`` by default, the TAK convention).

Files in ``ca_dir``: ``ca.key``, ``ca.pem``, ``server.key``, ``server.pem``. Private keys are created with
mode 0600 from the start; the directory is created with mode 0700.

The server certificate is re-issued (with a fresh key) when it is missing, no longer signed by this CA,
expired or within 30 days of expiry, or lacks one of the requested server names. A re-issued
certificate keeps the names the previous one had, so callers asking for different names never take
names away from each other.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rallypoint.clock import Clock, ms_to_datetime
from rallypoint.errors import ConfigError
from rallypoint.security import pkcs12
from rallypoint.security.certificates import (
    CertificateRequestError,
    IssuedCertificate,
    fingerprint_sha256,
    key_pem,
    key_usage,
    random_serial,
    san_entries,
    san_names,
    subject_name,
    validate_name,
    write_file,
)
from rallypoint.security.pkcs12 import DEFAULT_P12_PASSWORD, write_client_bundle

# Several of these live in sibling modules; callers import them from here.
__all__ = [
    "DEFAULT_P12_PASSWORD", "CertificateAuthority", "CertificateRequestError", "IssuedCertificate",
    "fingerprint_sha256", "validate_name", "write_client_bundle",
]

log = logging.getLogger(__name__)

CA_KEY_BITS = 3072
LEAF_KEY_BITS = 2048
CA_DAYS = 3650
SERVER_DAYS = 730
CLIENT_DAYS = 365
CLOCK_SKEW = timedelta(minutes=5)
SERVER_RENEW_BEFORE = timedelta(days=30)
MAX_CSR_BYTES = 64 * 1024
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
ALLOWED_EC_CURVES = ("secp256r1", "secp384r1")


class CertificateAuthority:
    """A file-backed CA that issues the server certificate and client certificates.

    Build it with :meth:`load_or_create`. Times come from the injected clock, so a CA loaded with a
    ``ManualClock`` issues certificates valid around that clock's time.
    """

    def __init__(
        self,
        ca_dir: Path,
        *,
        clock: Clock,
        key: rsa.RSAPrivateKey,
        certificate: x509.Certificate,
        org: str,
        org_unit: str,
    ) -> None:
        self._dir = ca_dir
        self._clock = clock
        self._key = key
        self._cert = certificate
        self._org = org
        self._org_unit = org_unit

    # ------------------------------------------------------------------ construction

    @classmethod
    def load_or_create(
        cls,
        ca_dir: Path,
        *,
        clock: Clock,
        common_name: str = "Rallypoint CA",
        server_names: Sequence[str] = ("localhost", "127.0.0.1"),
        org: str = "Rallypoint",
        org_unit: str = "Rallypoint",
    ) -> CertificateAuthority:
        """Load the CA from ``ca_dir``, creating the CA and server certificate on first run."""
        if not server_names:
            raise ConfigError("at least one server name is needed for the server certificate")
        ca_dir = Path(ca_dir)
        os.makedirs(ca_dir, mode=0o700, exist_ok=True)
        if ca_dir.stat().st_mode & 0o077:
            log.warning("CA directory %s is accessible by group or others; chmod 700 it", ca_dir)
        key_path, cert_path = ca_dir / "ca.key", ca_dir / "ca.pem"
        if key_path.exists() != cert_path.exists():
            raise ConfigError(
                f"{ca_dir} holds only one of ca.key and ca.pem; restore the other or remove both"
            )
        if key_path.exists():
            ca = cls._load(ca_dir, clock=clock, org=org, org_unit=org_unit)
        else:
            ca = cls._create(ca_dir, clock=clock, common_name=common_name, org=org, org_unit=org_unit)
        ca._ensure_server_certificate(list(server_names))
        return ca

    @classmethod
    def _load(cls, ca_dir: Path, *, clock: Clock, org: str, org_unit: str) -> CertificateAuthority:
        try:
            key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
        except ValueError as exc:
            raise ConfigError(f"cannot read the CA in {ca_dir}: {exc}") from exc
        if not isinstance(key, rsa.RSAPrivateKey) or key.public_key() != cert.public_key():
            raise ConfigError(f"ca.key in {ca_dir} is not the RSA key of ca.pem")
        return cls(ca_dir, clock=clock, key=key, certificate=cert, org=org, org_unit=org_unit)

    @classmethod
    def _create(
        cls, ca_dir: Path, *, clock: Clock, common_name: str, org: str, org_unit: str
    ) -> CertificateAuthority:
        now = ms_to_datetime(clock.now_ms())
        key = rsa.generate_private_key(public_exponent=65537, key_size=CA_KEY_BITS)
        subject = subject_name(common_name, org, org_unit)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(random_serial())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        write_file(ca_dir / "ca.key", key_pem(key), 0o600)
        write_file(ca_dir / "ca.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
        log.info("created certificate authority in %s (%s)", ca_dir, fingerprint_sha256(cert))
        return cls(ca_dir, clock=clock, key=key, certificate=cert, org=org, org_unit=org_unit)

    def _ensure_server_certificate(self, server_names: list[str]) -> None:
        reason = self._server_cert_problem(server_names)
        if reason is None:
            return
        names = list(server_names)
        if self.server_cert_path.exists() and reason != "unreadable":
            old = x509.load_pem_x509_certificate(self.server_cert_path.read_bytes())
            names += [n for n in san_names(old) if n not in names]
        key = rsa.generate_private_key(public_exponent=65537, key_size=LEAF_KEY_BITS)
        cert = self._leaf(
            names[0],
            key.public_key(),
            days=SERVER_DAYS,
            usages=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
            san=names,
        )
        write_file(self.server_key_path, key_pem(key), 0o600)
        write_file(self.server_cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        log.info("issued server certificate for %s (%s)", ", ".join(names), reason)

    def _server_cert_problem(self, server_names: list[str]) -> str | None:
        if not (self.server_cert_path.exists() and self.server_key_path.exists()):
            return "missing"
        try:
            cert = x509.load_pem_x509_certificate(self.server_cert_path.read_bytes())
            key = serialization.load_pem_private_key(self.server_key_path.read_bytes(), password=None)
        except ValueError:
            return "unreadable"
        if key.public_key() != cert.public_key():
            return "key mismatch"
        try:
            cert.verify_directly_issued_by(self._cert)
        except (ValueError, TypeError, InvalidSignature):
            return "not issued by this CA"
        if cert.not_valid_after_utc - SERVER_RENEW_BEFORE < self._now():
            return "expiring"
        missing = [n for n in server_names if n not in san_names(cert)]
        if missing:
            return "new names " + ", ".join(missing)
        return None

    # ------------------------------------------------------------------ properties

    @property
    def ca_certificate(self) -> x509.Certificate:
        """The CA certificate."""
        return self._cert

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate, PEM encoded."""
        return self._cert.public_bytes(serialization.Encoding.PEM)

    @property
    def fingerprint(self) -> str:
        """SHA-256 fingerprint of the CA certificate."""
        return fingerprint_sha256(self._cert)

    @property
    def directory(self) -> Path:
        """The directory holding the CA's files."""
        return self._dir

    def sign_crl(self, builder: x509.CertificateRevocationListBuilder) -> x509.CertificateRevocationList:
        """Sign a revocation list with the CA key (the key never leaves this object)."""
        return builder.issuer_name(self._cert.subject).sign(self._key, hashes.SHA256())

    @property
    def ca_path(self) -> Path:
        """Path of ``ca.pem``."""
        return self._dir / "ca.pem"

    @property
    def server_cert_path(self) -> Path:
        """Path of the server certificate (PEM)."""
        return self._dir / "server.pem"

    @property
    def server_key_path(self) -> Path:
        """Path of the server private key (PEM, 0600)."""
        return self._dir / "server.key"

    # ------------------------------------------------------------------ issuing

    def issue_client(self, name: str, *, days: int = CLIENT_DAYS) -> IssuedCertificate:
        """Generate an RSA 2048 key and a client certificate (CN=name, clientAuth) for it."""
        validate_name(name)
        key = rsa.generate_private_key(public_exponent=65537, key_size=LEAF_KEY_BITS)
        cert = self._leaf(name, key.public_key(), days=days, usages=[ExtendedKeyUsageOID.CLIENT_AUTH])
        return IssuedCertificate(
            name=name,
            certificate_pem=cert.public_bytes(serialization.Encoding.PEM),
            private_key_pem=key_pem(key),
            serial=cert.serial_number,
        )

    def sign_csr(
        self, csr_pem_or_der: bytes, *, expected_cn: str, days: int = CLIENT_DAYS
    ) -> x509.Certificate:
        """Sign a client CSR whose CN must name ``expected_cn`` (the authenticated user).

        Account names are unique regardless of case, so the CN is compared without case and the
        certificate is issued to ``expected_cn`` as given (the stored spelling). Only the CN is read
        from the request; O/OU come from this CA's configuration, and every other subject attribute
        and requested extension is ignored. Raises :class:`CertificateRequestError` on any refusal.
        """
        validate_name(expected_cn)
        if len(csr_pem_or_der) > MAX_CSR_BYTES:
            raise CertificateRequestError(
                "too_large", f"CSR is {len(csr_pem_or_der)} bytes, limit {MAX_CSR_BYTES}"
            )
        csr = self._parse_csr(csr_pem_or_der)
        if not csr.is_signature_valid:
            raise CertificateRequestError("bad_signature", "CSR signature does not verify")
        cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if len(cns) != 1:
            raise CertificateRequestError("bad_subject", f"CSR must have exactly one CN, has {len(cns)}")
        cn = cns[0].value
        if not isinstance(cn, str):
            raise CertificateRequestError("bad_subject", "CSR CN is not a string")
        validate_name(cn)
        if cn.casefold() != expected_cn.casefold():
            raise CertificateRequestError("cn_mismatch", f"CSR CN {cn!r} does not match user {expected_cn!r}")
        public_key = csr.public_key()
        match public_key:
            case rsa.RSAPublicKey() if not MIN_RSA_BITS <= public_key.key_size <= MAX_RSA_BITS:
                raise CertificateRequestError(
                    "weak_key", f"RSA key of {public_key.key_size} bits; need {MIN_RSA_BITS}-{MAX_RSA_BITS}"
                )
            case rsa.RSAPublicKey():
                pass
            case ec.EllipticCurvePublicKey() if public_key.curve.name not in ALLOWED_EC_CURVES:
                raise CertificateRequestError(
                    "unsupported_key", f"EC curve {public_key.curve.name} not accepted"
                )
            case ec.EllipticCurvePublicKey():
                pass
            case _:
                raise CertificateRequestError(
                    "unsupported_key", f"{type(public_key).__name__} keys not accepted"
                )
        return self._leaf(expected_cn, public_key, days=days, usages=[ExtendedKeyUsageOID.CLIENT_AUTH])

    @staticmethod
    def _parse_csr(data: bytes) -> x509.CertificateSigningRequest:
        try:
            if data.lstrip().startswith(b"-----BEGIN"):
                return x509.load_pem_x509_csr(data)
            return x509.load_der_x509_csr(data)
        except ValueError as exc:
            raise CertificateRequestError("malformed", f"cannot parse CSR: {exc}") from exc

    def _now(self) -> datetime:
        return ms_to_datetime(self._clock.now_ms())

    def _leaf(
        self,
        cn: str,
        public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
        *,
        days: int,
        usages: list[x509.ObjectIdentifier],
        san: Sequence[str] = (),
    ) -> x509.Certificate:
        if days < 1:
            raise ValueError(f"validity must be at least one day, got {days}")
        now = self._now()
        subject = subject_name(cn, self._org, self._org_unit)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._cert.subject)
            .public_key(public_key)
            .serial_number(random_serial())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                key_usage(digital_signature=True, key_encipherment=isinstance(public_key, rsa.RSAPublicKey)),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san_entries(san)), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        # Every certificate this CA signs is kept (public part only) so it can be listed and revoked.
        issued_dir = self._dir / "issued"
        issued_dir.mkdir(mode=0o700, exist_ok=True)
        write_file(issued_dir / f"{cert.serial_number:032x}.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return cert

    # ------------------------------------------------------------------ PKCS#12 bundles

    def pkcs12_bytes(
        self, issued: IssuedCertificate, *, password: str = DEFAULT_P12_PASSWORD, include_ca: bool = True
    ) -> bytes:
        """PKCS#12 keystore with the client key, its certificate and (by default) the CA certificate."""
        return pkcs12.pkcs12_bytes(issued, self._cert, password=password, include_ca=include_ca)

    def truststore_p12(self, password: str = DEFAULT_P12_PASSWORD) -> bytes:
        """PKCS#12 truststore holding only the CA certificate (ATAK's "CA certificate" setting)."""
        return pkcs12.truststore_p12(self._cert, password)

    def certificates_p12(
        self, certificates: Sequence[x509.Certificate], *, password: str = DEFAULT_P12_PASSWORD
    ) -> bytes:
        """PKCS#12 of trusted certificates only, e.g. a signed enrollment certificate plus the CA."""
        return pkcs12.certificates_p12(certificates, self._cert, password=password)

    def write_client_bundle(
        self, issued: IssuedCertificate, out_dir: Path, password: str = DEFAULT_P12_PASSWORD
    ) -> list[Path]:
        """Write NAME.pem, NAME.key (0600), NAME.p12 (0600), ca.pem and truststore.p12 into ``out_dir``."""
        return pkcs12.write_client_bundle(issued, out_dir, password, ca=self)
