"""The certificate enrollment API (TAK port 8446), as ATAK, WinTAK, iTAK and PyTAK call it.

Every endpoint needs HTTP Basic credentials, or a live OAuth token (``Authorization: Bearer`` or the
``access_token`` cookie, as node-tak and CloudTAK send after ``POST /oauth/token``, which this port
also serves); no client certificate is asked for on this port.

* ``GET /Marti/api/tls/config``: the O/OU the CSR subject should carry, as TAK Server's
  ``certificateConfig`` XML, served as ``text/plain`` (iTAK and TAKAware refuse ``application/xml``).
* ``POST /Marti/api/tls/signClient?clientUid=&version=``: body is the CSR as bare base64 (PEM body,
  newlines allowed) or full PEM. Answers a PKCS#12 (``application/octet-stream``, password
  ``p12_password``) holding ``signedCert`` and ``ca0``.
* ``POST /Marti/api/tls/signClient/v2``: same request; answers JSON ``{"signedCert": …, "ca0": …}``
  (PEM bodies without armour lines) when ``Accept`` is absent, empty, ``*/*`` or JSON, served as
  ``application/json`` like TAK Server; ``<enrollment><signedCert>…</signedCert><ca>…</ca></enrollment>``
  when ``Accept`` asks for XML; 400 for anything else.
* ``GET /Marti/api/tls/profile/enrollment?clientUid=``: 204 when no ``server_host`` is configured;
  otherwise a data package restating the TLS connection (see
  :func:`rallypoint.security.onboarding.enrollment_profile_package`).

The CSR's CN must name the authenticated user, compared without case as the user store compares
names (403 otherwise); the certificate carries the name as stored, and only the CN is taken from the
request (other subject attributes, SANs and requested extensions are dropped). Refusals: 401 with
``WWW-Authenticate`` for missing or wrong credentials (the same answer whether the user exists or
not), 400 for malformed or hostile CSRs, 413 for bodies over
``max_body_bytes``. Every refusal is logged and audited with a reason; passwords never are.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from rallypoint.clock import Clock
from rallypoint.errors import AuthError, LimitExceeded
from rallypoint.security.ca import DEFAULT_P12_PASSWORD, CertificateAuthority, CertificateRequestError
from rallypoint.security.onboarding import enrollment_p12, enrollment_profile_package
from rallypoint.web.credentials import presented_token
from rallypoint.web.enrollment_auth import (
    REALM,
    AuthenticatedUser,
    Authenticator,
    basic_credentials,
    read_limited_body,
)
from rallypoint.web.oauth import OAuthTokens

log = logging.getLogger(__name__)

AuditHook = Callable[[str, str, str, dict[str, str]], Awaitable[None]]

ACTION_SIGNED = "enrollment.signed"
ACTION_DENIED = "enrollment.denied"
ACTION_PROFILE = "enrollment.profile"

_CONFIG_NS = "http://bbn.com/marti/xml/config"
_CONFIG_ROOT_NS = "com.bbn.marti.config"


def certificate_config_xml(org: str, org_unit: str) -> str:
    """TAK Server's ``certificateConfig`` document naming the O and OU a CSR should carry."""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<ns2:certificateConfig xmlns="{_CONFIG_NS}" xmlns:ns2="{_CONFIG_ROOT_NS}"><nameEntries>'
        f'<nameEntry name="O" value={quoteattr(org)}/><nameEntry name="OU" value={quoteattr(org_unit)}/>'
        "</nameEntries></ns2:certificateConfig>"
    )


def decode_csr(body: bytes) -> bytes:
    """DER bytes of a CSR sent as bare base64 (newlines allowed) or as PEM with any armour label."""
    text = body.strip()
    if text.startswith(b"-----BEGIN"):
        lines = text.splitlines()
        # Keep only the base64 between the armour lines (ATAK, PyTAK and openssl differ in labels).
        text = b"".join(line for line in lines if not line.startswith(b"-----"))
    compact = b"".join(text.split())
    if not compact:
        raise CertificateRequestError("malformed", "empty CSR")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CertificateRequestError("malformed", "CSR is not base64") from exc


def pem_body(cert: x509.Certificate) -> str:
    """The base64 lines of a certificate's PEM, without the BEGIN/END lines, as TAK Server sends them."""
    pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return "\n".join(line for line in pem.splitlines() if line and not line.startswith("-----"))


def _v2_format(accept: str | None) -> str | None:
    """``json``, ``xml`` or None (unacceptable) for a signClient/v2 ``Accept`` header."""
    value = (accept or "").lower().strip()
    if not value or "*/*" in value or "application/json" in value:
        return "json"
    if "application/xml" in value or "text/xml" in value:
        return "xml"
    return None


def create_enrollment_app(
    *,
    ca: CertificateAuthority,
    authenticator: Authenticator,
    clock: Clock,
    audit: AuditHook | None = None,
    server_host: str | None = None,
    tls_port: int = 8089,
    org: str,
    org_unit: str,
    max_body_bytes: int = 64 * 1024,
    p12_password: str = DEFAULT_P12_PASSWORD,
    description: str = "Rallypoint",
    oauth: OAuthTokens | None = None,
) -> Starlette:
    """Build the enrollment app (mount it on the TLS port that asks for no client certificate).

    ``server_host`` is the public name clients use for the TLS CoT port ``tls_port``; without it the
    enrollment profile endpoint answers 204. With ``oauth`` the port also serves ``POST /oauth/token``
    and takes its tokens in place of Basic credentials.
    """
    config_body = certificate_config_xml(org, org_unit)
    profile_body = (
        enrollment_profile_package(server_host=server_host, tls_port=tls_port, description=description)
        if server_host is not None
        else None
    )

    async def record(actor: str, action: str, target: str, detail: dict[str, str]) -> None:
        if audit is not None:
            await audit(actor, action, target, detail)

    async def refuse(request: Request, endpoint: str, actor: str, reason: str, status: int) -> Response:
        client_uid = request.query_params.get("clientUid", "")[:128]
        remote = request.client.host if request.client else ""
        log.warning(
            "enrollment refused",
            extra={"endpoint": endpoint, "user": actor, "reason": reason, "status": status, "remote": remote},
        )
        detail = {"endpoint": endpoint, "reason": reason, "status": str(status), "remote": remote}
        await record(actor, ACTION_DENIED, client_uid or "-", detail)
        if status == 401:
            return PlainTextResponse(
                "unauthorized\n", status_code=401, headers={"WWW-Authenticate": f'Basic realm="{REALM}"'}
            )
        return PlainTextResponse(f"{reason}\n", status_code=status)

    async def authenticate(request: Request) -> tuple[str, AuthenticatedUser | None, str]:
        """(attempted name, user or None, failure reason)."""
        has_basic = request.headers.get("authorization", "").lower().startswith("basic")
        if oauth is not None and not has_basic and presented_token(request) is not None:
            token_user = await oauth.user_of(request)
            if token_user is None:
                return "-", None, "invalid_token"
            return token_user.name[:64], token_user, ""
        try:
            name, password = basic_credentials(request)
        except AuthError as exc:
            return "-", None, getattr(exc, "reason", "no_credentials")
        shown = name[:64]
        try:
            user = await authenticator.authenticate(name, password, now_ms=clock.now_ms())
        except AuthError as exc:
            return shown, None, getattr(exc, "reason", "rejected")
        return shown, user, ""

    async def tls_config(request: Request) -> Response:
        actor, user, reason = await authenticate(request)
        if user is None:
            return await refuse(request, "tls/config", actor, reason, 401)
        return PlainTextResponse(config_body)

    async def sign(request: Request, endpoint: str) -> tuple[AuthenticatedUser, x509.Certificate] | Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            # Refused before authenticating: nothing about the user is learnt, no body is read.
            return await refuse(request, endpoint, "-", "body_too_large", 413)
        actor, user, reason = await authenticate(request)
        if user is None:
            return await refuse(request, endpoint, actor, reason, 401)
        try:
            body = await read_limited_body(request, max_body_bytes)
        except LimitExceeded:
            return await refuse(request, endpoint, user.name, "body_too_large", 413)
        try:
            der = decode_csr(body)
            signed = await run_in_threadpool(ca.sign_csr, der, expected_cn=user.name)
        except CertificateRequestError as exc:
            status = 403 if exc.reason == "cn_mismatch" else 400
            return await refuse(request, endpoint, user.name, exc.reason, status)
        client_uid = request.query_params.get("clientUid", "")[:128]
        detail = {
            "endpoint": endpoint,
            "serial": f"{signed.serial_number:032x}",
            "client_uid": client_uid,
            "version": request.query_params.get("version", "")[:64],
        }
        log.info("enrollment certificate issued", extra={"user": user.name, **detail})
        await record(user.name, ACTION_SIGNED, client_uid or user.name, detail)
        return user, signed

    async def sign_client_v1(request: Request) -> Response:
        outcome = await sign(request, "signClient")
        if isinstance(outcome, Response):
            return outcome
        _, signed = outcome
        p12 = await run_in_threadpool(enrollment_p12, ca, signed, password=p12_password)
        return Response(p12, media_type="application/octet-stream")

    async def sign_client_v2(request: Request) -> Response:
        # Decide the answer's format first: an unacceptable Accept must not cost a certificate.
        fmt = _v2_format(request.headers.get("accept"))
        if fmt is None:
            actor, user, reason = await authenticate(request)
            if user is None:
                return await refuse(request, "signClient/v2", actor, reason, 401)
            return await refuse(request, "signClient/v2", user.name, "unsupported_accept", 400)
        outcome = await sign(request, "signClient/v2")
        if isinstance(outcome, Response):
            return outcome
        _, signed = outcome
        chain = [ca.ca_certificate]
        if fmt == "json":
            doc = {"signedCert": pem_body(signed)} | {f"ca{i}": pem_body(c) for i, c in enumerate(chain)}
            return Response(json.dumps(doc, indent=2), media_type="application/json")
        cas = "".join(f"<ca>{escape(pem_body(c))}</ca>" for c in chain)
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?><enrollment>'
            f"<signedCert>{escape(pem_body(signed))}</signedCert>{cas}</enrollment>"
        )
        return Response(xml, media_type="application/xml")

    async def profile_enrollment(request: Request) -> Response:
        actor, user, reason = await authenticate(request)
        if user is None:
            return await refuse(request, "tls/profile/enrollment", actor, reason, 401)
        if profile_body is None:
            return Response(status_code=204)
        client_uid = request.query_params.get("clientUid", "")[:128]
        await record(user.name, ACTION_PROFILE, client_uid or user.name, {"endpoint": "tls/profile/enrollment"})
        return Response(
            profile_body,
            media_type="application/zip",
            headers={"Content-Disposition": 'attachment; filename="enrollment-profile.zip"'},
        )

    return Starlette(
        routes=[
            Route("/Marti/api/tls/config", tls_config, methods=["GET"]),
            Route("/Marti/api/tls/signClient", sign_client_v1, methods=["POST"]),
            Route("/Marti/api/tls/signClient/v2", sign_client_v2, methods=["POST"]),
            Route("/Marti/api/tls/profile/enrollment", profile_enrollment, methods=["GET"]),
            *(oauth.routes if oauth is not None else ()),
        ]
    )
