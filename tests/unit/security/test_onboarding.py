"""Connection data packages, enrollment URIs and QR codes."""

from __future__ import annotations

import io
import zipfile
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from lxml import etree

from rallypoint.clock import ManualClock
from rallypoint.security.ca import CertificateAuthority, CertificateRequestError, IssuedCertificate
from rallypoint.security.onboarding import (
    build_connection_package,
    connection_pref,
    data_package,
    enrollment_p12,
    enrollment_uri,
    host_in_certificate,
    onboarding_qr,
)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(tmp_path_factory.mktemp("onboard") / "ca", clock=ManualClock())


@pytest.fixture(scope="module")
def issued(ca: CertificateAuthority) -> IssuedCertificate:
    return ca.issue_client("alice")


def _open(package: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(package))


def _manifest(archive: zipfile.ZipFile) -> etree._Element:
    return etree.fromstring(archive.read("MANIFEST/manifest.xml"))


def _pref_entries(archive: zipfile.ZipFile) -> dict[str, dict[str, tuple[str | None, str | None]]]:
    [name] = [n for n in archive.namelist() if n.endswith(".pref")]
    root = etree.fromstring(archive.read(name))
    assert root.tag == "preferences"
    return {
        group.get("name"): {e.get("key"): (e.get("class"), e.text) for e in group.iter("entry")}
        for group in root.iter("preference")
    }


def test_certificate_package_layout(ca: CertificateAuthority, issued: IssuedCertificate) -> None:
    package = build_connection_package(
        ca=ca, user="alice", server_host="tak.example.org", mode="certificate", issued=issued
    )
    archive = _open(package)
    assert archive.testzip() is None
    names = archive.namelist()
    assert sorted(names) == sorted(
        ["MANIFEST/manifest.xml", "certs/tak.example.org.pref", "certs/truststore.p12", "certs/alice.p12"]
    )
    manifest = _manifest(archive)
    assert manifest.tag == "MissionPackageManifest"
    assert manifest.get("version") == "2"
    params = {p.get("name"): p.get("value") for p in manifest.find("Configuration").iter("Parameter")}
    assert params["onReceiveDelete"] == "true"
    assert len(params["uid"]) == 36
    assert params["name"]
    listed = [c.get("zipEntry") for c in manifest.find("Contents").iter("Content")]
    assert sorted(listed) == sorted(n for n in names if n != "MANIFEST/manifest.xml")
    assert all(c.get("ignore") == "false" for c in manifest.iter("Content"))


def test_certificate_package_pref_and_keystores(ca: CertificateAuthority, issued: IssuedCertificate) -> None:
    archive = _open(
        build_connection_package(
            ca=ca, user="alice", server_host="10.1.2.3", tls_port=9089, mode="certificate", issued=issued
        )
    )
    prefs = _pref_entries(archive)
    streams = prefs["cot_streams"]
    assert streams["count"] == ("class java.lang.Integer", "1")
    assert streams["enabled0"] == ("class java.lang.Boolean", "true")
    assert streams["connectString0"] == ("class java.lang.String", "10.1.2.3:9089:ssl")
    assert streams["caLocation0"][1] == "cert/truststore.p12"
    assert streams["certificateLocation0"][1] == "cert/alice.p12"
    assert streams["caPassword0"][1] == streams["clientPassword0"][1] == "atakatak"
    assert "enrollForCertificateWithTrust0" not in streams
    assert prefs["com.atakmap.app_preferences"]["displayServerConnectionWidget"][1] == "true"

    trust = pkcs12.load_pkcs12(archive.read("certs/truststore.p12"), b"atakatak")
    assert [c.certificate for c in trust.additional_certs] == [ca.ca_certificate]
    client = pkcs12.load_pkcs12(archive.read("certs/alice.p12"), b"atakatak")
    assert client.key is not None and client.cert is not None
    assert client.cert.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert client.cert.certificate.public_key() == client.key.public_key()


def test_enrollment_package_has_no_client_certificate(ca: CertificateAuthority) -> None:
    archive = _open(
        build_connection_package(
            ca=ca, user="bob", server_host="tak.example.org", mode="enrollment", issued=None, p12_password="pw123456"
        )
    )
    assert sorted(archive.namelist()) == [
        "MANIFEST/manifest.xml",
        "certs/tak.example.org.pref",
        "certs/truststore.p12",
    ]
    streams = _pref_entries(archive)["cot_streams"]
    assert streams["connectString0"][1] == "tak.example.org:8089:ssl"
    assert streams["enrollForCertificateWithTrust0"] == ("class java.lang.Boolean", "true")
    assert streams["useAuth0"][1] == "true"
    assert streams["username0"][1] == "bob"
    assert streams["caPassword0"][1] == "pw123456"
    assert "certificateLocation0" not in streams
    pkcs12.load_pkcs12(archive.read("certs/truststore.p12"), b"pw123456")


def test_pref_has_the_ascii_standalone_declaration() -> None:
    pref = connection_pref(server_host="tak.example.org", description="A & <B>")
    assert pref.startswith(b"<?xml version='1.0' encoding='ASCII' standalone='yes'?>")
    entries = {e.get("key"): e.text for e in etree.fromstring(pref).iter("entry")}
    assert entries["description0"] == "A & <B>"


@pytest.mark.parametrize("host", ["../evil", "a/b", "host:8089", "::1", "", "bad host", "x" * 300, "a..b"])
def test_hostile_hosts_are_refused(ca: CertificateAuthority, host: str) -> None:
    with pytest.raises(ValueError):
        build_connection_package(ca=ca, user="bob", server_host=host, mode="enrollment", issued=None)


@pytest.mark.parametrize("user", ["../bob", "bob/x", "a b", "$(id)"])
def test_hostile_users_are_refused(ca: CertificateAuthority, user: str) -> None:
    with pytest.raises(CertificateRequestError):
        build_connection_package(ca=ca, user=user, server_host="tak.example.org", mode="enrollment", issued=None)


def test_mode_and_certificate_must_agree(ca: CertificateAuthority, issued: IssuedCertificate) -> None:
    with pytest.raises(ValueError):
        build_connection_package(ca=ca, user="alice", server_host="h.example", mode="certificate", issued=None)
    with pytest.raises(ValueError):
        build_connection_package(ca=ca, user="bob", server_host="h.example", mode="certificate", issued=issued)
    with pytest.raises(ValueError):
        build_connection_package(ca=ca, user="alice", server_host="h.example", mode="enrollment", issued=issued)


@pytest.mark.parametrize("path", ["../x", "/abs", "a/../b", "a\\b", "MANIFEST/manifest.xml", "a//b", "./a"])
def test_data_package_refuses_unsafe_entries(path: str) -> None:
    with pytest.raises(ValueError):
        data_package("x", [(path, b"")])


def test_no_entry_escapes_the_package(ca: CertificateAuthority, issued: IssuedCertificate) -> None:
    archive = _open(
        build_connection_package(ca=ca, user="alice", server_host="tak.example.org", mode="certificate", issued=issued)
    )
    for name in archive.namelist():
        assert not name.startswith("/") and ".." not in name.split("/") and "\\" not in name


def test_enrollment_p12_aliases(ca: CertificateAuthority, issued: IssuedCertificate) -> None:
    from cryptography import x509

    signed = x509.load_pem_x509_certificate(issued.certificate_pem)
    store = pkcs12.load_pkcs12(enrollment_p12(ca, signed), b"atakatak")
    assert {c.friendly_name: c.certificate for c in store.additional_certs} == {
        b"signedCert": signed,
        b"ca0": ca.ca_certificate,
    }


def test_enrollment_uri() -> None:
    uri = enrollment_uri("tak.example.org", "alice", "p&ss=w rd")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc, parts.path) == ("tak", "com.atakmap.app", "/enroll")
    assert parse_qs(parts.query) == {"host": ["tak.example.org"], "username": ["alice"], "token": ["p&ss=w rd"]}
    assert "token" not in enrollment_uri("tak.example.org", "alice")


def test_qr_is_svg_encoding_the_payload() -> None:
    import segno

    svg = onboarding_qr("tak://com.atakmap.app/enroll?host=h&username=u")
    root = etree.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    # The same payload always yields the same matrix; a different one does not.
    assert svg == onboarding_qr("tak://com.atakmap.app/enroll?host=h&username=u")
    assert svg != onboarding_qr("tak://com.atakmap.app/enroll?host=h&username=v")
    reference = io.BytesIO()
    segno.make_qr("tak://com.atakmap.app/enroll?host=h&username=u", error="m").save(
        reference, kind="svg", scale=4, xmldecl=True
    )
    assert svg == reference.getvalue()


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("tak.example.org", True),
        ("TAK.Example.org", True),
        ("a.tak.example.org", True),  # *.tak.example.org
        ("a.b.tak.example.org", False),  # a wildcard covers one label only
        ("example.org", False),
        ("10.0.0.5", True),
        ("10.0.0.50", False),
    ],
)
def test_host_in_certificate(host: str, expected: bool) -> None:
    assert host_in_certificate(host, ["tak.example.org", "*.tak.example.org", "10.0.0.5"]) is expected
