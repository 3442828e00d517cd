"""Certificate enrollment end to end: HTTPS on a real socket, then a TLS handshake with the new certificate."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from starlette.applications import Starlette

from rallypoint.clock import SystemClock
from rallypoint.errors import AuthError
from rallypoint.security.ca import CertificateAuthority
from rallypoint.storage.sqlite.users import SqliteUserRecords
from rallypoint.transport.tls import client_ssl_context, principal_from_peercert, server_ssl_context
from rallypoint.web.enrollment import create_enrollment_app


class _Refused(AuthError):
    reason = "bad_password"


@dataclass(frozen=True)
class _User:
    name: str


@dataclass
class _Passwords:
    """A one-user stand-in for the user store."""

    name: str
    password: str

    async def authenticate(self, name: str, password: str, *, now_ms: int) -> _User:
        if (name, password) != (self.name, self.password):
            raise _Refused(name)
        return _User(name)


@dataclass
class _Audit:
    entries: list[tuple[str, str, str, dict[str, str]]] = field(default_factory=list)

    async def __call__(self, actor: str, action: str, target: str, detail: dict[str, str]) -> None:
        self.entries.append((actor, action, target, detail))


@pytest.fixture
def ca(data_dir: Path) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(data_dir / "ca", clock=SystemClock())


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: the test owns the process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def serve_https(app: Starlette, ctx: ssl.SSLContext) -> AsyncIterator[int]:
    """Run ``app`` under uvicorn with ``ctx`` on 127.0.0.1; yields the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    # Listening before serve() starts: early connections wait in the backlog, no readiness polling.
    sock.listen(64)
    sock.setblocking(False)
    config = uvicorn.Config(app, log_config=None, lifespan="off", access_log=False)
    config.load()
    config.ssl = ctx
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        await task
        sock.close()


def _csr_body(key: rsa.RSAPrivateKey, cn: str, org: str, unit: str) -> bytes:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
        ]
    )
    pem = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    return b"\n".join(line for line in pem.splitlines() if not line.startswith(b"-----"))


async def _enroll_and_connect(
    ca: CertificateAuthority, authenticator: object, tmp_path: Path, user: str, pw: str, csr_cn: str | None = None
) -> str:
    """Enroll ``user`` (CSR CN ``csr_cn``, default ``user``) over HTTPS, then present the new
    certificate to a client-cert TLS server.

    Returns the CN the TLS server saw.
    """
    audit = _Audit()
    app = create_enrollment_app(
        ca=ca,
        authenticator=authenticator,  # type: ignore[arg-type]
        clock=SystemClock(),
        audit=audit,
        server_host="localhost",
        org="Rallypoint",
        org_unit="Rallypoint",
    )
    auth = httpx.BasicAuth(user, pw)
    async with serve_https(app, server_ssl_context(ca, require_client_cert=False)) as port:
        base = f"https://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, verify=client_ssl_context(ca.ca_path), auth=auth) as http:
            config = await http.get("/Marti/api/tls/config")
            assert config.status_code == 200
            names = {
                e.get("name"): e.get("value")
                for e in etree.fromstring(config.content).iter("{http://bbn.com/marti/xml/config}nameEntry")
            }
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            signed = await http.post(
                "/Marti/api/tls/signClient/v2",
                params={"clientUid": "ANDROID-int", "version": "5.2"},
                content=_csr_body(key, csr_cn or user, names["O"], names["OU"]),
                headers={"Accept": "application/json"},
            )
            assert signed.status_code == 200, signed.text
            doc = signed.json()
            denied = await http.get("/Marti/api/tls/config", auth=httpx.BasicAuth(user, pw + "x"))
            assert denied.status_code == 401
    assert [e[1] for e in audit.entries] == ["enrollment.signed", "enrollment.denied"]

    cert = x509.load_der_x509_certificate(base64.b64decode(doc["signedCert"]))
    assert x509.load_der_x509_certificate(base64.b64decode(doc["ca0"])) == ca.ca_certificate
    cert_path, key_path = tmp_path / "client.pem", tmp_path / "client.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )

    seen: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not seen.done():
            seen.set_result(principal_from_peercert(writer.get_extra_info("ssl_object").getpeercert(binary_form=True)))
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0, ssl=server_ssl_context(ca))
    async with server:
        tls_port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", tls_port, ssl=client_ssl_context(ca.ca_path, cert_path, key_path)
        )
        assert await reader.read(2) == b"ok"
        writer.close()
        cn = await asyncio.wait_for(seen, timeout=10)
    assert cn is not None
    return cn


async def test_enroll_then_connect_with_the_issued_certificate(ca: CertificateAuthority, tmp_path: Path) -> None:
    cn = await _enroll_and_connect(ca, _Passwords("alice", "correct horse"), tmp_path, "alice", "correct horse")
    assert cn == "alice"


async def test_without_enrollment_the_client_certificate_port_refuses(ca: CertificateAuthority) -> None:
    handshakes: list[str] = []

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Only reached after a completed handshake.
        handshakes.append("done")
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0, ssl=server_ssl_context(ca))
    async with server:
        port = server.sockets[0].getsockname()[1]
        received = b""
        try:
            reader, _writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ssl_context(ca.ca_path))
            # TLS 1.3 reports a missing client certificate only on the first read.
            received = await reader.readexactly(2)
        except (ssl.SSLError, ConnectionResetError):
            pass
        except asyncio.IncompleteReadError as exc:
            received = exc.partial
    assert received == b""
    assert handshakes == []


async def test_enroll_with_the_sqlite_user_store(ca: CertificateAuthority, tmp_path: Path) -> None:
    from argon2 import PasswordHasher

    from rallypoint.security.users import UserAccounts

    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    store = UserAccounts(SqliteUserRecords(tmp_path / "users.db"), hasher=fast)
    try:
        await store.add("carol", password="s3cret-passphrase")
        cn = await _enroll_and_connect(ca, store, tmp_path, "carol", "s3cret-passphrase")
    finally:
        await store.close()
    assert cn == "carol"


async def test_enrollment_ignores_name_case_and_issues_the_stored_name(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    from argon2 import PasswordHasher

    from rallypoint.security.users import UserAccounts

    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    store = UserAccounts(SqliteUserRecords(tmp_path / "users.db"), hasher=fast)
    try:
        await store.add("Dana", password="s3cret-passphrase")
        # ATAK puts whatever the user typed in the CSR CN; the account is stored as "Dana".
        cn = await _enroll_and_connect(ca, store, tmp_path, "dana", "s3cret-passphrase", csr_cn="dana")
    finally:
        await store.close()
    assert cn == "Dana"
