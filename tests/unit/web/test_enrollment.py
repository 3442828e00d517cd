"""The enrollment API on port 8446: every endpoint, its answers and its refusals."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from lxml import etree
from starlette.testclient import TestClient

from rallypoint.clock import ManualClock
from rallypoint.errors import AuthError
from rallypoint.security.ca import CertificateAuthority
from rallypoint.storage.sqlite.users import SqliteUserRecords
from rallypoint.web.enrollment import create_enrollment_app, decode_csr

SHA1_OID_DER = bytes.fromhex("06052b0e03021a")
SHA256_OID_DER = bytes.fromhex("0609608648016503040201")


class FakeAuthError(AuthError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FakeUser:
    name: str


@dataclass
class FakeAuthenticator:
    """Stands in for the user store: a fixed table of passwords."""

    passwords: dict[str, str]
    calls: list[tuple[str, int]] = field(default_factory=list)

    async def authenticate(self, name: str, password: str, *, now_ms: int) -> FakeUser:
        self.calls.append((name, now_ms))
        if name not in self.passwords:
            raise FakeAuthError("unknown_user")
        if self.passwords[name] != password:
            raise FakeAuthError("bad_password")
        return FakeUser(name)


@dataclass
class AuditLog:
    entries: list[tuple[str, str, str, dict[str, str]]] = field(default_factory=list)

    async def __call__(self, actor: str, action: str, target: str, detail: dict[str, str]) -> None:
        self.entries.append((actor, action, target, detail))


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(
        tmp_path_factory.mktemp("enroll") / "ca", clock=ManualClock(), org="Field Team", org_unit="Blue"
    )


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_csr(key: rsa.RSAPrivateKey, cn: str) -> x509.CertificateSigningRequest:
    subject = x509.Name(
        [
            # Unvalidated, so tests can send what a hostile client would (e.g. over-long names).
            x509.NameAttribute(NameOID.COMMON_NAME, cn, _validate=False),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Field Team"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Blue"),
        ]
    )
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


def bare_base64(csr: x509.CertificateSigningRequest) -> bytes:
    """The PEM body without armour lines, as ATAK sends it (64-column lines)."""
    pem = csr.public_bytes(serialization.Encoding.PEM)
    return b"\n".join(line for line in pem.splitlines() if not line.startswith(b"-----"))


def basic(name: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


ALICE = basic("alice", "correct horse")


@pytest.fixture
def audit() -> AuditLog:
    return AuditLog()


@pytest.fixture
def authenticator() -> FakeAuthenticator:
    return FakeAuthenticator({"alice": "correct horse", "bob": "hunter22"})


@pytest.fixture
def client(ca: CertificateAuthority, authenticator: FakeAuthenticator, audit: AuditLog) -> TestClient:
    app = create_enrollment_app(
        ca=ca,
        authenticator=authenticator,
        clock=ManualClock(1_700_000_123_000),
        audit=audit,
        server_host="tak.example.org",
        org="Field Team",
        org_unit="Blue",
        max_body_bytes=16 * 1024,
    )
    return TestClient(app)


def _cert_from_body(body: str) -> x509.Certificate:
    assert "-----" not in body
    return x509.load_der_x509_certificate(base64.b64decode(body))


# ---- /tls/config ---------------------------------------------------------------------------


def test_config_names_org_and_unit_as_text_plain(client: TestClient) -> None:
    response = client.get("/Marti/api/tls/config", headers=ALICE)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    root = etree.fromstring(response.content)
    assert root.tag == "{com.bbn.marti.config}certificateConfig"
    entries = root.findall("{http://bbn.com/marti/xml/config}nameEntries/{http://bbn.com/marti/xml/config}nameEntry")
    assert [(e.get("name"), e.get("value")) for e in entries] == [("O", "Field Team"), ("OU", "Blue")]


def test_config_escapes_org_names(ca: CertificateAuthority, authenticator: FakeAuthenticator) -> None:
    app = create_enrollment_app(
        ca=ca, authenticator=authenticator, clock=ManualClock(), org='A&B "Team"', org_unit="<Blue>"
    )
    response = TestClient(app).get("/Marti/api/tls/config", headers=ALICE)
    entries = etree.fromstring(response.content).iter("{http://bbn.com/marti/xml/config}nameEntry")
    assert [e.get("value") for e in entries] == ['A&B "Team"', "<Blue>"]


def test_config_requires_credentials(client: TestClient, audit: AuditLog) -> None:
    response = client.get("/Marti/api/tls/config")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="Rallypoint"'
    assert audit.entries[-1][1] == "enrollment.denied"
    assert audit.entries[-1][3]["reason"] == "no_credentials"


# ---- /tls/signClient (v1) ------------------------------------------------------------------


def test_v1_returns_legacy_pkcs12_with_signed_cert_and_ca(
    client: TestClient, ca: CertificateAuthority, key: rsa.RSAPrivateKey, audit: AuditLog
) -> None:
    response = client.post(
        "/Marti/api/tls/signClient?clientUid=ANDROID-1&version=5.2",
        headers=ALICE,
        content=bare_base64(make_csr(key, "alice")),
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    store = pkcs12.load_pkcs12(response.content, b"atakatak")
    assert store.key is None
    by_alias = {c.friendly_name: c.certificate for c in store.additional_certs}
    assert set(by_alias) == {b"signedCert", b"ca0"}
    signed = by_alias[b"signedCert"]
    assert signed.issuer == ca.ca_certificate.subject
    assert signed.public_key() == key.public_key()
    assert signed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    signed.verify_directly_issued_by(ca.ca_certificate)
    assert by_alias[b"ca0"] == ca.ca_certificate
    # ATAK refuses the SHA-256 MAC OpenSSL 3 writes by default.
    assert SHA1_OID_DER in response.content
    assert SHA256_OID_DER not in response.content
    actor, action, target, detail = audit.entries[-1]
    assert (actor, action, target) == ("alice", "enrollment.signed", "ANDROID-1")
    assert detail["serial"] == f"{signed.serial_number:032x}"
    assert detail["version"] == "5.2"


def test_v1_accepts_full_pem(client: TestClient, key: rsa.RSAPrivateKey) -> None:
    pem = make_csr(key, "alice").public_bytes(serialization.Encoding.PEM)
    response = client.post("/Marti/api/tls/signClient", headers=ALICE, content=pem)
    assert response.status_code == 200
    assert pkcs12.load_pkcs12(response.content, b"atakatak").additional_certs


def test_v1_uses_the_configured_password(
    ca: CertificateAuthority, authenticator: FakeAuthenticator, key: rsa.RSAPrivateKey
) -> None:
    app = create_enrollment_app(
        ca=ca, authenticator=authenticator, clock=ManualClock(), org="O", org_unit="U", p12_password="s3cret"
    )
    response = TestClient(app).post(
        "/Marti/api/tls/signClient", headers=ALICE, content=bare_base64(make_csr(key, "alice"))
    )
    assert response.status_code == 200
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(response.content, b"atakatak")
    assert len(pkcs12.load_pkcs12(response.content, b"s3cret").additional_certs) == 2


# ---- /tls/signClient/v2 --------------------------------------------------------------------


@pytest.mark.parametrize("accept", [None, "", "*/*", "application/json", "application/json, text/plain"])
def test_v2_json(client: TestClient, ca: CertificateAuthority, key: rsa.RSAPrivateKey, accept: str | None) -> None:
    headers = dict(ALICE)
    if accept is not None:
        headers["Accept"] = accept
    response = client.post(
        "/Marti/api/tls/signClient/v2?clientUid=u1", headers=headers, content=bare_base64(make_csr(key, "alice"))
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    doc = json.loads(response.content)
    assert set(doc) == {"signedCert", "ca0"}
    signed = _cert_from_body(doc["signedCert"])
    assert signed.public_key() == key.public_key()
    signed.verify_directly_issued_by(ca.ca_certificate)
    assert _cert_from_body(doc["ca0"]) == ca.ca_certificate


def test_v2_xml(client: TestClient, ca: CertificateAuthority, key: rsa.RSAPrivateKey) -> None:
    headers = ALICE | {"Accept": "application/xml"}
    response = client.post("/Marti/api/tls/signClient/v2", headers=headers, content=bare_base64(make_csr(key, "alice")))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    root = etree.fromstring(response.content)
    assert root.tag == "enrollment"
    assert [child.tag for child in root] == ["signedCert", "ca"]
    assert _cert_from_body(root.findtext("signedCert") or "").public_key() == key.public_key()
    assert _cert_from_body(root.findtext("ca") or "") == ca.ca_certificate


def test_v2_unsupported_accept_is_400_and_issues_nothing(
    client: TestClient, key: rsa.RSAPrivateKey, audit: AuditLog
) -> None:
    headers = ALICE | {"Accept": "text/html"}
    response = client.post("/Marti/api/tls/signClient/v2", headers=headers, content=bare_base64(make_csr(key, "alice")))
    assert response.status_code == 400
    assert [e[1] for e in audit.entries] == ["enrollment.denied"]
    assert audit.entries[0][3]["reason"] == "unsupported_accept"


# ---- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        basic("alice", "wrong"),
        basic("mallory", "correct horse"),
        {"Authorization": "Basic !!!notbase64"},
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {},
    ],
    ids=["bad-password", "unknown-user", "garbage", "bearer", "no-colon", "none"],
)
def test_bad_credentials_are_401_and_audited(
    client: TestClient,
    key: rsa.RSAPrivateKey,
    audit: AuditLog,
    headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = client.post("/Marti/api/tls/signClient/v2", headers=headers, content=bare_base64(make_csr(key, "alice")))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="Rallypoint"'
    assert len(audit.entries) == 1
    _, action, _, detail = audit.entries[0]
    assert action == "enrollment.denied"
    assert detail["status"] == "401"
    assert detail["reason"]
    assert "correct horse" not in repr(audit.entries)
    assert all(
        "correct horse" not in r.getMessage() and "correct horse" not in repr(r.__dict__) for r in caplog.records
    )


def test_unknown_user_and_wrong_password_answer_alike(client: TestClient, key: rsa.RSAPrivateKey) -> None:
    body = bare_base64(make_csr(key, "alice"))
    unknown = client.post("/Marti/api/tls/signClient", headers=basic("nobody", "x"), content=body)
    wrong = client.post("/Marti/api/tls/signClient", headers=basic("alice", "x"), content=body)
    assert (unknown.status_code, unknown.content, dict(unknown.headers)) == (
        wrong.status_code,
        wrong.content,
        dict(wrong.headers),
    )


def test_wrong_password_audit_names_the_reason(client: TestClient, key: rsa.RSAPrivateKey, audit: AuditLog) -> None:
    client.post(
        "/Marti/api/tls/signClient", headers=basic("alice", "nope"), content=bare_base64(make_csr(key, "alice"))
    )
    actor, action, _, detail = audit.entries[-1]
    assert (actor, action, detail["reason"]) == ("alice", "enrollment.denied", "bad_password")


def test_authenticator_gets_the_clock_time(client: TestClient, authenticator: FakeAuthenticator) -> None:
    client.get("/Marti/api/tls/config", headers=ALICE)
    assert authenticator.calls == [("alice", 1_700_000_123_000)]


def test_csr_for_another_user_is_403(client: TestClient, key: rsa.RSAPrivateKey, audit: AuditLog) -> None:
    response = client.post("/Marti/api/tls/signClient/v2", headers=ALICE, content=bare_base64(make_csr(key, "bob")))
    assert response.status_code == 403
    assert audit.entries[-1][3]["reason"] == "cn_mismatch"
    assert audit.entries[-1][0] == "alice"


@pytest.mark.parametrize(
    ("cn", "reason"),
    [
        ("alice; rm -rf /", "bad_name"),
        ("../../etc/passwd", "bad_name"),
        ("alice/../bob", "bad_name"),
        ("a" * 65, "bad_name"),
        ("a" * 5000, "bad_name"),
        ("$(reboot)", "bad_name"),
    ],
)
def test_hostile_common_names_are_400(
    client: TestClient, key: rsa.RSAPrivateKey, audit: AuditLog, cn: str, reason: str
) -> None:
    response = client.post("/Marti/api/tls/signClient/v2", headers=ALICE, content=bare_base64(make_csr(key, cn)))
    assert response.status_code == 400
    assert audit.entries[-1][3]["reason"] == reason
    assert not [e for e in audit.entries if e[1] == "enrollment.signed"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not base64 at all!!",
        base64.b64encode(b"valid base64, not a CSR"),
        b"-----BEGIN CERTIFICATE REQUEST-----\n-----END",
    ],
)
def test_malformed_csr_is_400(client: TestClient, audit: AuditLog, body: bytes) -> None:
    response = client.post("/Marti/api/tls/signClient", headers=ALICE, content=body)
    assert response.status_code == 400
    assert audit.entries[-1][3]["reason"] == "malformed"


def test_weak_key_is_400(client: TestClient) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    response = client.post("/Marti/api/tls/signClient", headers=ALICE, content=bare_base64(make_csr(weak, "alice")))
    assert response.status_code == 400
    assert response.text.strip() == "weak_key"


def test_declared_oversized_body_is_413_before_authentication(
    client: TestClient, authenticator: FakeAuthenticator, audit: AuditLog
) -> None:
    response = client.post("/Marti/api/tls/signClient", headers=ALICE, content=b"A" * (16 * 1024 + 1))
    assert response.status_code == 413
    assert authenticator.calls == []
    assert audit.entries[-1][3]["reason"] == "body_too_large"


def test_streamed_oversized_body_is_413(client: TestClient, audit: AuditLog) -> None:
    def chunks():  # no Content-Length: the size is only known while reading
        for _ in range(40):
            yield b"A" * 1024

    response = client.post("/Marti/api/tls/signClient/v2", headers=ALICE, content=chunks())
    assert response.status_code == 413
    assert audit.entries[-1][3]["reason"] == "body_too_large"


def test_get_on_sign_endpoint_is_405(client: TestClient) -> None:
    assert client.get("/Marti/api/tls/signClient", headers=ALICE).status_code == 405


# ---- /tls/profile/enrollment -----------------------------------------------------------------


def test_profile_is_a_data_package_restating_the_connection(client: TestClient, audit: AuditLog) -> None:
    response = client.get("/Marti/api/tls/profile/enrollment?clientUid=ANDROID-1", headers=ALICE)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = archive.namelist()
    assert "MANIFEST/manifest.xml" in names
    prefs = [n for n in names if n.endswith(".pref")]
    assert len(prefs) == 1
    pref = etree.fromstring(archive.read(prefs[0]))
    entries = {e.get("key"): e.text for e in pref.iter("entry")}
    assert entries["connectString0"] == "tak.example.org:8089:ssl"
    assert not [n for n in names if n.endswith(".p12")]
    assert audit.entries[-1][:3] == ("alice", "enrollment.profile", "ANDROID-1")


def test_profile_without_server_host_is_204(ca: CertificateAuthority, authenticator: FakeAuthenticator) -> None:
    app = create_enrollment_app(ca=ca, authenticator=authenticator, clock=ManualClock(), org="O", org_unit="U")
    response = TestClient(app).get("/Marti/api/tls/profile/enrollment?clientUid=x", headers=ALICE)
    assert response.status_code == 204
    assert response.content == b""


def test_profile_requires_credentials(client: TestClient) -> None:
    assert client.get("/Marti/api/tls/profile/enrollment", headers=basic("alice", "no")).status_code == 401


# ---- CSR decoding ----------------------------------------------------------------------------


def test_decode_csr_accepts_bare_wrapped_and_armoured_forms(key: rsa.RSAPrivateKey) -> None:
    csr = make_csr(key, "alice")
    der = csr.public_bytes(serialization.Encoding.DER)
    one_line = base64.b64encode(der)
    assert decode_csr(one_line) == der
    assert decode_csr(bare_base64(csr)) == der
    assert decode_csr(b"\r\n" + bare_base64(csr).replace(b"\n", b"\r\n") + b"\r\n") == der
    armoured = (
        b"-----BEGIN NEW CERTIFICATE REQUEST-----\n" + bare_base64(csr) + b"\n-----END NEW CERTIFICATE REQUEST-----\n"
    )
    assert decode_csr(armoured) == der


# ---- names and hostile subjects --------------------------------------------------------------


def _store_app(
    ca: CertificateAuthority, store: object, audit: AuditLog, *, max_body_bytes: int = 16 * 1024
) -> TestClient:
    app = create_enrollment_app(
        ca=ca, authenticator=store, clock=ManualClock(1_700_000_123_000), audit=audit,  # type: ignore[arg-type]
        server_host="tak.example.org", org="Field Team", org_unit="Blue", max_body_bytes=max_body_bytes,
    )
    return TestClient(app)


@pytest.mark.parametrize(("login", "csr_cn"), [("alice", "alice"), ("ALICE", "alice"), ("Alice", "aLiCe")])
async def test_names_compare_without_case_and_the_certificate_carries_the_stored_name(
    ca: CertificateAuthority, key: rsa.RSAPrivateKey, audit: AuditLog, tmp_path: Path, login: str, csr_cn: str
) -> None:
    from argon2 import PasswordHasher

    from rallypoint.security.users import UserAccounts

    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    store = UserAccounts(SqliteUserRecords(tmp_path / "users.db"), hasher=fast)
    try:
        await store.add("Alice", password="correct horse")
        await store.add("bob", password="hunter22 trail mix")
        client = _store_app(ca, store, audit)
        response = await asyncio.to_thread(
            client.post, "/Marti/api/tls/signClient/v2", headers=basic(login, "correct horse"),
            content=bare_base64(make_csr(key, csr_cn)),
        )
        assert response.status_code == 200, response.text
        cert = _cert_from_body(response.json()["signedCert"])
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Alice"
        assert audit.entries[-1][:2] == ("Alice", "enrollment.signed")
        # Case folding does not reach another account.
        other = await asyncio.to_thread(
            client.post, "/Marti/api/tls/signClient/v2", headers=basic(login, "correct horse"),
            content=bare_base64(make_csr(key, "BOB")),
        )
        assert other.status_code == 403
        assert audit.entries[-1][3]["reason"] == "cn_mismatch"
    finally:
        await store.close()


def _files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


def test_hostile_subject_fields_and_extensions_do_not_reach_the_certificate(
    tmp_path: Path, key: rsa.RSAPrivateKey, audit: AuditLog, authenticator: FakeAuthenticator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = tmp_path / "data"
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    own_ca = CertificateAuthority.load_or_create(data / "ca", clock=ManualClock(), org="Field Team", org_unit="Blue")
    before = _files(tmp_path)
    hostile = [
        "; rm -rf / #", "$(reboot)", "`id`", "../../etc/passwd", "..\\..\\windows", "a|b&c>d", "x" * 20_000,
    ]
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "alice"),
            *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, v, _validate=False) for v in hostile),
            *(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, v, _validate=False) for v in hostile),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "root@localhost; cat /etc/shadow"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "../../" * 50),
        ]
    )
    san = x509.SubjectAlternativeName(
        [
            x509.DNSName("$(reboot).example.org"),
            x509.DNSName("../../etc/passwd"),
            x509.DNSName("evil.example.org"),
            x509.UniformResourceIdentifier("file:///etc/passwd"),
            x509.RFC822Name("a@b; rm -rf /"),
        ]
    )
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    client = _store_app(own_ca, authenticator, audit, max_body_bytes=256 * 1024)
    response = client.post("/Marti/api/tls/signClient/v2", headers=ALICE, content=bare_base64(csr))
    assert response.status_code == 200, response.text[:200]
    cert = _cert_from_body(response.json()["signedCert"])
    assert cert.subject == x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "alice"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Field Team"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Blue"),
        ]
    )
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    der = cert.public_bytes(serialization.Encoding.DER)
    for value in (b"reboot", b"passwd", b"evil.example.org", b"shadow", b"rm -rf", b"xxxxxxxx"):
        assert value not in der
    # The only file written is the issued certificate's public copy, named by its serial.
    assert _files(tmp_path) - before == {Path("data/ca/issued") / f"{cert.serial_number:032x}.pem"}
    assert not any(workdir.iterdir())
    assert audit.entries[-1][:2] == ("alice", "enrollment.signed")
