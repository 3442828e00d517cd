"""Issued-certificate registry, revocation and the published CRL.

Every certificate the CA signs is kept as ``ca/issued/<serial>.pem``. Revoking writes
``ca/revoked.json`` (serial -> who/when/why) and a fresh ``ca/crl.pem``. The running server watches
``revoked.json`` and disconnects live sessions whose certificate was revoked within seconds; new
handshakes are refused by the application check right after the handshake (the CRL is published
for clients and other servers; it is not loaded into OpenSSL).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from rallypoint.clock import Clock, ms_to_datetime
from rallypoint.security.ca import CertificateAuthority

CRL_VALIDITY = timedelta(days=7)


class IssuedRecord(msgspec.Struct, frozen=True):
    """One certificate this CA signed."""

    serial: int
    name: str
    not_after_ms: int
    revoked: bool


class Revocation(msgspec.Struct, frozen=True):
    serial: str
    name: str
    revoked_ms: int
    reason: str = "unspecified"


class CertificateRegistry:
    """Reads issued certificates and maintains the revocation list of one CA directory."""

    def __init__(self, ca_dir: Path) -> None:
        self._dir = Path(ca_dir)

    @property
    def revoked_path(self) -> Path:
        return self._dir / "revoked.json"

    @property
    def crl_path(self) -> Path:
        return self._dir / "crl.pem"

    def issued(self) -> list[IssuedRecord]:
        """Every certificate issued by this CA (newest expiry last)."""
        revoked = self.revoked_serials()
        out: list[IssuedRecord] = []
        for path in sorted((self._dir / "issued").glob("*.pem")):
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            name = str(cns[0].value) if cns else "?"
            out.append(
                IssuedRecord(
                    serial=cert.serial_number,
                    name=name,
                    not_after_ms=int(cert.not_valid_after_utc.timestamp() * 1000),
                    revoked=cert.serial_number in revoked,
                )
            )
        return sorted(out, key=lambda r: r.not_after_ms)

    def revocations(self) -> list[Revocation]:
        try:
            raw = self.revoked_path.read_bytes()
        except FileNotFoundError:
            return []
        return msgspec.json.decode(raw, type=list[Revocation])

    def revoked_serials(self) -> frozenset[int]:
        """Serial numbers revoked so far."""
        return frozenset(int(r.serial, 16) for r in self.revocations())

    def revoke(
        self, ca: CertificateAuthority, clock: Clock, *, name: str | None = None, serial: int | None = None,
        reason: str = "unspecified",
    ) -> list[Revocation]:
        """Revoke every live certificate of ``name`` (or the one ``serial``) and republish the CRL."""
        if (name is None) == (serial is None):
            raise ValueError("give exactly one of name or serial")
        now = clock.now_ms()
        current = {r.serial: r for r in self.revocations()}
        added: list[Revocation] = []
        for record in self.issued():
            if record.revoked:
                continue
            if (serial is not None and record.serial == serial) or (name is not None and record.name == name):
                rev = Revocation(serial=f"{record.serial:032x}", name=record.name, revoked_ms=now, reason=reason)
                current[rev.serial] = rev
                added.append(rev)
        if added:
            _atomic_write(self.revoked_path, msgspec.json.encode(sorted(current.values(), key=lambda r: r.serial)))
        self.publish_crl(ca, clock)
        return added

    def merge(self, ca: CertificateAuthority, clock: Clock, revocations: list[Revocation]) -> list[Revocation]:
        """Add the revocations another node made that this list lacks (whether or not this directory
        issued the certificate) and republish the CRL; returns those added."""
        current = {r.serial: r for r in self.revocations()}
        added = [r for r in revocations if r.serial not in current]
        if added:
            current.update((r.serial, r) for r in added)
            _atomic_write(self.revoked_path, msgspec.json.encode(sorted(current.values(), key=lambda r: r.serial)))
            self.publish_crl(ca, clock)
        return added

    def publish_crl(self, ca: CertificateAuthority, clock: Clock) -> bytes:
        """Write ``crl.pem`` signed by the CA and return it."""
        now = ms_to_datetime(clock.now_ms())
        builder = x509.CertificateRevocationListBuilder().last_update(now).next_update(now + CRL_VALIDITY)
        for rev in self.revocations():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(int(rev.serial, 16))
                .revocation_date(ms_to_datetime(rev.revoked_ms))
                .build()
            )
        pem = ca.sign_crl(builder).public_bytes(serialization.Encoding.PEM)
        _atomic_write(self.crl_path, pem)
        return pem

    def stamp(self) -> float:
        """Modification time of the revocation list (0 when none): cheap change detection."""
        try:
            return self.revoked_path.stat().st_mtime_ns / 1e9
        except FileNotFoundError:
            return 0.0


def serial_of(peercert_der: bytes | None) -> int | None:
    """Serial number of a DER certificate (the peer's, from ``getpeercert(binary_form=True)``)."""
    if not peercert_der:
        return None
    try:
        return x509.load_der_x509_certificate(peercert_der).serial_number
    except ValueError:
        return None


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["CertificateRegistry", "IssuedRecord", "Revocation", "serial_of"]


class RevocationWatcher:
    """The server's view of the revocation list, refreshed when ``revoked.json`` changes."""

    def __init__(self, registry: CertificateRegistry) -> None:
        self._registry = registry
        self._stamp = -1.0
        self.revoked: frozenset[int] = frozenset()
        self._listeners: list[Callable[[], object]] = []
        self.refresh()

    @property
    def registry(self) -> CertificateRegistry:
        """The revocation list this view reads."""
        return self._registry

    def on_change(self, listener: Callable[[], object]) -> None:
        """Call ``listener()`` whenever a refresh finds the list changed."""
        self._listeners.append(listener)

    def refresh(self) -> bool:
        """Reload if the list changed on disk; True when it did."""
        stamp = self._registry.stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        self.revoked = self._registry.revoked_serials()
        for listener in self._listeners:
            listener()
        return True

    def is_revoked(self, serial: int | None) -> bool:
        return serial is not None and serial in self.revoked
