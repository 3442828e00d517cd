"""TLS contexts for Rallypoint's listeners and clients, and the principal behind a peer certificate.

TLS 1.2 is the floor because ATAK (and many Android releases it runs on) negotiate nothing newer on
some devices; TLS 1.3 is used whenever both sides offer it. For TLS 1.2 only ECDHE key exchange with
AEAD ciphers is offered (forward secrecy, no CBC). TLS 1.3 suites are all AEAD already.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from rallypoint.security.ca import CertificateAuthority

TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def _harden(ctx: ssl.SSLContext) -> None:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    # Renegotiation is never needed by TAK clients and is a long-standing source of attacks.
    ctx.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)


def server_ssl_context(ca: CertificateAuthority, *, require_client_cert: bool = True) -> ssl.SSLContext:
    """Server context presenting the CA-issued server certificate.

    With ``require_client_cert`` (CoT streaming, Marti API) a client must present a certificate issued
    by this CA, the only trust anchor loaded; system roots are never trusted. Without it (the
    enrollment port, where clients authenticate with a password to obtain their first certificate)
    no client certificate is requested at all.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(ctx)
    ctx.load_cert_chain(certfile=ca.server_cert_path, keyfile=ca.server_key_path)
    if require_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=ca.ca_path)
        # After a rotation, client certificates from the previous CAs stay valid until they expire.
        for previous in sorted((ca.ca_path.parent / "previous").glob("*/ca.pem")):
            ctx.load_verify_locations(cafile=previous)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client_ssl_context(
    ca_pem_path: Path | str,
    cert_path: Path | str | None = None,
    key_path: Path | str | None = None,
    *,
    check_hostname: bool = True,
) -> ssl.SSLContext:
    """Client context trusting only ``ca_pem_path`` and, if given, presenting a client certificate.

    Used by the load tool and tests. The server certificate names ``localhost`` and ``127.0.0.1`` by
    default, so hostname checking can stay on for local connections.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _harden(ctx)
    ctx.load_verify_locations(cafile=str(ca_pem_path))
    ctx.check_hostname = check_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cert_path is not None:
        ctx.load_cert_chain(certfile=str(cert_path), keyfile=None if key_path is None else str(key_path))
    return ctx


def principal_from_peercert(peercert: bytes | dict[str, Any] | None) -> str | None:
    """Common name of a verified peer certificate, or None when there is none to read.

    Accepts either ``getpeercert(binary_form=True)`` (DER) or the dict form of ``getpeercert()``.
    The certificate must already have been verified by the TLS handshake; this only extracts the name.
    """
    if not peercert:
        return None
    names: list[object]
    if isinstance(peercert, dict):
        names = [value for rdn in peercert.get("subject", ()) for key, value in rdn if key == "commonName"]
    else:
        try:
            cert = x509.load_der_x509_certificate(peercert)
        except ValueError:
            return None
        names = [attr.value for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if len(names) != 1:
        # Several CNs would make the identity ambiguous; the CA never issues such certificates.
        return None
    value = names[0]
    return value if isinstance(value, str) and value else None
