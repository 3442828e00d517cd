"""Connection data packages, enrollment URIs and QR codes that bring a TAK client onto Rallypoint.

A connection package is a TAK data package (zip) that ATAK, WinTAK and iTAK import as a server
connection:

* ``MANIFEST/manifest.xml``: ``<MissionPackageManifest version="2">`` with a fresh ``uid``, a ``name``
  and ``onReceiveDelete=true`` (the zip holds secrets, so the client deletes it after import), and one
  ``<Content>`` per file.
* ``certs/<host>.pref``: ATAK's preference file. The ``cot_streams`` group defines connection 0
  (``connectString0`` is ``HOST:PORT:ssl``); ``com.atakmap.app_preferences`` repeats the CA (and client
  certificate) settings without the index suffix, which iTAK and older clients read.
* ``certs/truststore.p12``: the CA certificate. In ``certificate`` mode also ``certs/<user>.p12``, the
  client key and certificate. Both use the given password (default ``atakatak``).

File locations inside the ``.pref`` say ``cert/<file>``: clients move imported certificates into their
own ``cert/`` directory and resolve the preference against that, not against the zip layout.

In ``enrollment`` mode no client certificate travels: the package carries the truststore plus
``enrollForCertificateWithTrust0``/``useAuth0``, so the client asks for the user's password and obtains
its certificate from the enrollment port itself (ATAK always uses port 8446 for that).

QR codes (:func:`onboarding_qr`) are SVG, produced with ``segno``. :func:`enrollment_uri` builds the
``tak://com.atakmap.app/enroll?host=…&username=…&token=…`` URI that ATAK's QR scanner understands:
ATAK then enrolls with the username and token (the user's password) against ``host`` on 8446.
"""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from collections.abc import Sequence
from typing import Literal
from urllib.parse import urlencode

import segno
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from lxml import etree

from rallypoint.security.ca import DEFAULT_P12_PASSWORD, CertificateAuthority, IssuedCertificate, validate_name
from rallypoint.security.pkcs12 import p12_encryption

Mode = Literal["certificate", "enrollment"]

MANIFEST_PATH = "MANIFEST/manifest.xml"
TRUSTSTORE_ENTRY = "certs/truststore.p12"
# Where clients keep imported certificates; the .pref refers to files there.
CLIENT_CERT_DIR = "cert"
ATAK_ENROLL_PORT = 8446

# A DNS name or IPv4 address. IPv6 literals are refused: the connect string separates with ':'.
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


def validate_host(host: str) -> str:
    """Return ``host`` if it is a DNS name or IPv4 address usable in a TAK connect string."""
    if not _HOST.fullmatch(host) or ".." in host:
        raise ValueError(f"server host {host[:40]!r} must be a DNS name or IPv4 address")
    return host


def host_in_certificate(host: str, names: Sequence[str]) -> bool:
    """True if a TLS client connecting to ``host`` would accept a certificate naming ``names``.

    DNS names compare case-insensitively and a leading ``*.`` matches exactly one label (RFC 6125);
    IP addresses must match an IP entry exactly.
    """
    wanted = host.lower().rstrip(".")
    for name in (n.lower().rstrip(".") for n in names):
        if name == wanted:
            return True
        if name.startswith("*.") and "." in wanted and wanted.split(".", 1)[1] == name[2:]:
            return not _IPV4.fullmatch(wanted)
    return False


def _entry(parent: etree._Element, key: str, value: str | int | bool) -> None:
    match value:
        case bool():
            java_class, text = "class java.lang.Boolean", "true" if value else "false"
        case int():
            java_class, text = "class java.lang.Integer", str(value)
        case _:
            java_class, text = "class java.lang.String", value
    element = etree.SubElement(parent, "entry", key=key)
    element.set("class", java_class)
    element.text = text


def connection_pref(
    *,
    server_host: str,
    tls_port: int = 8089,
    description: str = "Rallypoint",
    truststore: str | None = None,
    client_certificate: str | None = None,
    password: str = DEFAULT_P12_PASSWORD,
    enroll_user: str | None = None,
) -> bytes:
    """ATAK ``.pref`` XML defining one TLS server connection.

    ``truststore`` and ``client_certificate`` are file names inside the client's ``cert/`` directory.
    ``enroll_user`` turns on certificate enrollment with that username (the client asks for the
    password). With neither a client certificate nor enrollment, only the connection is defined: the
    client keeps whatever certificate it already holds for that connect string.
    """
    validate_host(server_host)
    root = etree.Element("preferences")
    streams = etree.SubElement(root, "preference", version="1", name="cot_streams")
    app = etree.SubElement(root, "preference", version="1", name="com.atakmap.app_preferences")
    _entry(streams, "count", 1)
    _entry(streams, "description0", description)
    _entry(streams, "enabled0", True)
    _entry(streams, "connectString0", f"{server_host}:{tls_port}:ssl")
    _entry(app, "displayServerConnectionWidget", True)
    for store, location_key, password_key in (
        (truststore, "caLocation", "caPassword"),
        (client_certificate, "certificateLocation", "clientPassword"),
    ):
        if store is not None:
            # Set for the connection (suffix 0) and as the app-wide default.
            location = f"{CLIENT_CERT_DIR}/{store}"
            _entry(streams, f"{location_key}0", location)
            _entry(streams, f"{password_key}0", password)
            _entry(app, location_key, location)
            _entry(app, password_key, password)
    if enroll_user is not None:
        _entry(streams, "enrollForCertificateWithTrust0", True)
        _entry(streams, "useAuth0", True)
        _entry(streams, "cacheCreds0", "Cache credentials")
        _entry(streams, "username0", enroll_user)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="ASCII", standalone=True, pretty_print=True))


def _manifest(name: str, entries: Sequence[str], remarks: str) -> bytes:
    root = etree.Element("MissionPackageManifest", version="2")
    config = etree.SubElement(root, "Configuration")
    for key, value in (
        ("uid", str(uuid.uuid4())),
        ("name", name),
        ("remarks", remarks),
        ("onReceiveDelete", "true"),
    ):
        etree.SubElement(config, "Parameter", name=key, value=value)
    contents = etree.SubElement(root, "Contents")
    for entry in entries:
        etree.SubElement(contents, "Content", ignore="false", zipEntry=entry)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def data_package(name: str, files: Sequence[tuple[str, bytes]], *, remarks: str = "") -> bytes:
    """Zip ``files`` (relative path, content) with a version-2 manifest listing each of them."""
    for path, _ in files:
        parts = path.split("/")
        if path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts) or path == MANIFEST_PATH:
            raise ValueError(f"unsafe data package entry {path!r}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST_PATH, _manifest(name, [path for path, _ in files], remarks))
        for path, content in files:
            archive.writestr(path, content)
    return buffer.getvalue()


def build_connection_package(
    *,
    ca: CertificateAuthority,
    user: str,
    server_host: str,
    tls_port: int = 8089,
    enroll_port: int = ATAK_ENROLL_PORT,
    mode: Mode,
    issued: IssuedCertificate | None,
    p12_password: str = DEFAULT_P12_PASSWORD,
    description: str = "Rallypoint",
) -> bytes:
    """A TAK connection data package for ``user`` (see the module docstring for its layout).

    ``certificate`` mode needs ``issued`` (a certificate whose CN is ``user``) and ships it as
    ``certs/<user>.p12``; ``enrollment`` mode ships only the truststore and lets the client enroll.
    ``enroll_port`` is recorded in the manifest remarks: clients do not read a port for enrollment
    from preferences and always use 8446.
    """
    validate_name(user)
    validate_host(server_host)
    files: list[tuple[str, bytes]] = [(TRUSTSTORE_ENTRY, ca.truststore_p12(p12_password))]
    match mode:
        case "certificate":
            if issued is None or issued.name != user:
                raise ValueError("certificate mode needs the certificate issued to this user")
            client_file = f"{user}.p12"
            files.append((f"certs/{client_file}", ca.pkcs12_bytes(issued, password=p12_password)))
            pref = connection_pref(
                server_host=server_host,
                tls_port=tls_port,
                description=description,
                truststore="truststore.p12",
                client_certificate=client_file,
                password=p12_password,
            )
        case "enrollment":
            if issued is not None:
                raise ValueError("enrollment mode carries no client certificate")
            pref = connection_pref(
                server_host=server_host,
                tls_port=tls_port,
                description=description,
                truststore="truststore.p12",
                password=p12_password,
                enroll_user=user,
            )
        case _:
            raise ValueError(f"unknown mode {mode!r}")
    files.insert(0, (f"certs/{server_host}.pref", pref))
    remarks = f"{description}: {server_host}:{tls_port} (TLS), enrollment port {enroll_port}"
    return data_package(f"{description} {user}", files, remarks=remarks)


def enrollment_profile_package(*, server_host: str, tls_port: int = 8089, description: str = "Rallypoint") -> bytes:
    """The package answered on ``/Marti/api/tls/profile/enrollment`` after a client enrolled.

    It restates connection 0 with the same connect string the client just enrolled for, so the client
    updates that entry in place; no certificates travel (the client already holds them).
    """
    pref = connection_pref(server_host=server_host, tls_port=tls_port, description=description)
    return data_package(f"{description} profile", [(f"certs/{server_host}.pref", pref)])


def enrollment_p12(
    ca: CertificateAuthority, signed: x509.Certificate, *, password: str = DEFAULT_P12_PASSWORD
) -> bytes:
    """PKCS#12 of a freshly signed client certificate and the CA, as the v1 enrollment endpoint answers.

    ATAK looks the entries up by alias: the client certificate is ``signedCert``, the chain ``ca0``…
    No private key is included; the client generated it and keeps it.
    """
    entries = [
        pkcs12.PKCS12Certificate(signed, b"signedCert"),
        pkcs12.PKCS12Certificate(ca.ca_certificate, b"ca0"),
    ]
    # The CA's own encryption settings (SHA-1 MAC, PBE-SHA1-3DES) are the ones ATAK accepts.
    return pkcs12.serialize_java_truststore(entries, p12_encryption(password))


def enrollment_uri(host: str, username: str, token: str | None = None) -> str:
    """``tak://com.atakmap.app/enroll?host=…&username=…&token=…`` for ATAK's QR-code enrollment.

    ``token`` is the user's password (or a one-time token the authenticator accepts). Without it the
    URI only pre-fills host and username.
    """
    validate_host(host)
    params = {"host": host, "username": username}
    if token is not None:
        params["token"] = token
    return "tak://com.atakmap.app/enroll?" + urlencode(params)


def onboarding_qr(payload: str, *, scale: int = 4) -> bytes:
    """SVG image of a QR code holding ``payload`` (error correction M, quiet zone included)."""
    qr = segno.make_qr(payload, error="m")
    buffer = io.BytesIO()
    qr.save(buffer, kind="svg", scale=scale, xmldecl=True)
    return buffer.getvalue()
