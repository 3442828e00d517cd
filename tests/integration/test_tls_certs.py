"""Certificates from the built-in CA against a real TLS listener built with ``server_ssl_context``."""

from __future__ import annotations

import asyncio
import ssl
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from rallypoint.clock import ManualClock, SystemClock
from rallypoint.security.ca import CertificateAuthority
from rallypoint.transport.tls import client_ssl_context, principal_from_peercert, server_ssl_context

DEADLINE_S = 15
PAYLOAD = b"<event uid='x'/>\n"


@dataclass
class EchoServer:
    """Echoes one line per connection and records the principal of every accepted client."""

    port: int = 0
    principals: list[str | None] = field(default_factory=list)
    dict_principals: list[str | None] = field(default_factory=list)
    ciphers: list[tuple[str, str, int]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ssl_object = writer.get_extra_info("ssl_object")
        self.principals.append(principal_from_peercert(ssl_object.getpeercert(binary_form=True)))
        self.dict_principals.append(principal_from_peercert(ssl_object.getpeercert()))
        self.ciphers.append(ssl_object.cipher())
        try:
            writer.write(await reader.readline())
            await writer.drain()
        finally:
            writer.close()


@dataclass(frozen=True)
class Bundle:
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(tmp_path_factory.mktemp("tls") / "ca", clock=SystemClock())


def _bundle(ca: CertificateAuthority, name: str, out: Path, **kwargs: int) -> Bundle:
    ca.write_client_bundle(ca.issue_client(name, **kwargs), out)
    return Bundle(out / f"{name}.pem", out / f"{name}.key")


@pytest.fixture(scope="module")
def alice(ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return _bundle(ca, "alice", tmp_path_factory.mktemp("alice"))


@pytest_asyncio.fixture
async def server(ca: CertificateAuthority) -> AsyncIterator[EchoServer]:
    echo = EchoServer()
    listener = await asyncio.start_server(echo.handle, "127.0.0.1", 0, ssl=server_ssl_context(ca))
    echo.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield echo


async def _exchange(port: int, ctx: ssl.SSLContext, host: str = "localhost") -> bytes:
    """Send one line and return what came back (b"" if the server hung up)."""
    async with asyncio.timeout(DEADLINE_S):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=host)
        try:
            writer.write(PAYLOAD)
            await writer.drain()
            return await reader.readline()
        finally:
            writer.close()


async def _assert_rejected(echo: EchoServer, ctx: ssl.SSLContext) -> None:
    # With TLS 1.3 the client learns of the rejection only when it reads, so both outcomes count as
    # a refusal; what matters is that nothing was echoed and the server never accepted the client.
    try:
        answer = await _exchange(echo.port, ctx)
    except (ssl.SSLError, ConnectionError):
        answer = b""
    assert answer == b""
    assert echo.principals == []


async def test_issued_client_connects_and_is_identified(
    server: EchoServer, ca: CertificateAuthority, alice: Bundle
) -> None:
    answer = await _exchange(server.port, client_ssl_context(ca.ca_path, alice.cert, alice.key))
    assert answer == PAYLOAD
    assert server.principals == ["alice"]
    assert server.dict_principals == ["alice"]


async def test_server_certificate_covers_loopback_ip(
    server: EchoServer, ca: CertificateAuthority, alice: Bundle
) -> None:
    ctx = client_ssl_context(ca.ca_path, alice.cert, alice.key)
    assert ctx.check_hostname
    assert await _exchange(server.port, ctx, host="127.0.0.1") == PAYLOAD


async def test_wrong_hostname_is_refused_by_the_client(
    server: EchoServer, ca: CertificateAuthority, alice: Bundle
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        await _exchange(
            server.port, client_ssl_context(ca.ca_path, alice.cert, alice.key), host="evil.example"
        )


async def test_tls12_client_gets_ecdhe_aead(
    server: EchoServer, ca: CertificateAuthority, alice: Bundle
) -> None:
    ctx = client_ssl_context(ca.ca_path, alice.cert, alice.key)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    assert await _exchange(server.port, ctx) == PAYLOAD
    [(cipher, version, _bits)] = server.ciphers
    assert version == "TLSv1.2"
    assert cipher.startswith("ECDHE-")
    assert "GCM" in cipher or "CHACHA20" in cipher


def test_server_context_refuses_tls_compression_and_renegotiation(ca: CertificateAuthority) -> None:
    ctx = server_ssl_context(ca)
    # TLS compression leaks secrets through sizes (CRIME); it must never be negotiated.
    assert ctx.options & ssl.OP_NO_COMPRESSION
    assert ctx.options & getattr(ssl, "OP_NO_RENEGOTIATION", 0) == getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2


async def test_client_without_certificate_is_rejected(server: EchoServer, ca: CertificateAuthority) -> None:
    await _assert_rejected(server, client_ssl_context(ca.ca_path))


async def test_certificate_from_another_ca_is_rejected(
    server: EchoServer, ca: CertificateAuthority, tmp_path: Path
) -> None:
    other = CertificateAuthority.load_or_create(tmp_path / "other-ca", clock=SystemClock())
    stranger = _bundle(other, "alice", tmp_path / "stranger")
    await _assert_rejected(server, client_ssl_context(ca.ca_path, stranger.cert, stranger.key))


async def test_expired_certificate_is_rejected(
    server: EchoServer, ca: CertificateAuthority, tmp_path: Path
) -> None:
    past = ManualClock(SystemClock().now_ms() - 400 * 86_400_000)
    ca_in_the_past = CertificateAuthority.load_or_create(ca.ca_path.parent, clock=past)
    assert ca_in_the_past.fingerprint == ca.fingerprint
    expired = _bundle(ca_in_the_past, "old", tmp_path, days=30)
    await _assert_rejected(server, client_ssl_context(ca.ca_path, expired.cert, expired.key))


def _tls11_client(ca: CertificateAuthority, bundle: Bundle) -> ssl.SSLContext:
    ctx = client_ssl_context(ca.ca_path, bundle.cert, bundle.key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the local OpenSSL actually offer TLS 1.1
    return ctx


async def test_tls11_client_is_refused(server: EchoServer, ca: CertificateAuthority, alice: Bundle) -> None:
    await _assert_rejected(server, _tls11_client(ca, alice))


def test_tls11_hello_gets_protocol_version_alert(ca: CertificateAuthority, alice: Bundle) -> None:
    # Drive both ends in memory to see that the hello really is TLS 1.1 and that the server refuses it.
    client_in, client_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = _tls11_client(ca, alice).wrap_bio(client_in, client_out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    hello = client_out.read()
    assert hello[0] == 0x16 and hello[5] == 0x01  # handshake record, ClientHello
    assert hello[9:11] == b"\x03\x02"  # client_version TLS 1.1
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_ssl_context(ca).wrap_bio(server_in, server_out, server_side=True)
    server_in.write(hello)
    with pytest.raises(ssl.SSLError) as info:
        server.do_handshake()
    assert info.value.reason == "UNSUPPORTED_PROTOCOL"
    alert = server_out.read()
    assert alert[0] == 0x15 and alert[-1] == 70  # alert record, protocol_version


async def test_enrollment_context_needs_no_client_certificate(ca: CertificateAuthority) -> None:
    echo = EchoServer()
    listener = await asyncio.start_server(
        echo.handle, "127.0.0.1", 0, ssl=server_ssl_context(ca, require_client_cert=False)
    )
    async with listener:
        port = listener.sockets[0].getsockname()[1]
        assert await _exchange(port, client_ssl_context(ca.ca_path)) == PAYLOAD
    assert echo.principals == [None]


async def test_pytak_style_p12_loading_connects(
    server: EchoServer, ca: CertificateAuthority, tmp_path: Path
) -> None:
    # PyTAK users point PYTAK_TLS_CLIENT_CERT at the .p12 with password atakatak; PyTAK opens it this way.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # PyTAK warns about optional extras at import
        from pytak.crypto_functions import load_cert

    ca.write_client_bundle(ca.issue_client("pytak-user"), tmp_path)
    private_key, cert, extra = load_cert(str(tmp_path / "pytak-user.p12"), "atakatak")
    assert [c.fingerprint(cert.signature_hash_algorithm) for c in extra] == [
        ca.ca_certificate.fingerprint(cert.signature_hash_algorithm)
    ]
    key_path, cert_path = tmp_path / "extracted.key", tmp_path / "extracted.pem"
    key_path.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    answer = await _exchange(server.port, client_ssl_context(ca.ca_path, cert_path, key_path))
    assert answer == PAYLOAD
    assert server.principals == ["pytak-user"]


def test_principal_from_peercert_edge_cases(alice: Bundle) -> None:
    der = x509.load_pem_x509_certificate(alice.cert.read_bytes()).public_bytes(serialization.Encoding.DER)
    assert principal_from_peercert(der) == "alice"
    assert principal_from_peercert(b"") is None
    assert principal_from_peercert(None) is None
    assert principal_from_peercert(b"\x30\x03garbage") is None
    assert principal_from_peercert({}) is None
    assert principal_from_peercert({"subject": ((("organizationName", "x"),),)}) is None
    two = {"subject": ((("commonName", "a"),), (("commonName", "b"),))}
    assert principal_from_peercert(two) is None
