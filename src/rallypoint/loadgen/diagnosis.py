"""Why connections failed: short reasons per connection, and which server limit stopped them.

A server that refuses a connection past one of its limits usually just closes or resets it: the
client sees no message. Two sources can still name the limit:

* Rallypoint's ``/metrics`` (``--metrics-url``): ``rallypoint_sessions_closed_total{reason=...}``
  counts sessions the server closed, by reason; its rise over the run names the limit exactly.
* The shape of the failure: every connection presenting the same client certificate, the first
  few kept and the rest reset right after the TLS handshake, is what a per-identity connection
  limit looks like (Rallypoint's ``max_connections_per_identity``, 10 by default).
"""

from __future__ import annotations

import logging
import ssl
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping

from cryptography import x509
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families

logger = logging.getLogger(__name__)

CLOSED_SAMPLE = "rallypoint_sessions_closed_total"
RIGHT_AFTER_CONNECT = " right after connecting"
METRICS_TIMEOUT_S = 5.0
# Rallypoint's close reasons (the metric's label) and the setting behind each.
SERVER_LIMITS = {
    "identity_connections": "max_connections_per_identity (connections sharing one client certificate)",
    "address_connections": "max_connections_per_ip (connections from one address)",
    "rate_limit": "max_events_per_s / ip_events_per_s (message rate)",
    "slow_receiver": "slow_receiver_timeout_s (a client not reading its deliveries)",
    "protocol_error": "the server's protocol checks (malformed or oversized input)",
}


class NegotiationFailed(Exception):
    """The server refused, or never offered, TAK protocol v1 streaming."""


def describe_failure(exc: BaseException | None) -> str:
    """A short reason for a failed or lost connection; equal causes give equal text, so they group."""
    match exc:
        case None:
            return "closed by the server"
        case ConnectionResetError() | BrokenPipeError():
            return "reset by the server"
        case ConnectionRefusedError():
            return "connection refused"
        case TimeoutError():
            return "timed out"
        case ssl.SSLError():
            return f"TLS error ({exc.reason or exc})"
        case NegotiationFailed():
            return str(exc)
        case OSError() if exc.strerror:
            return exc.strerror
        case _:
            return type(exc).__name__


def merge_counts(parts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Sum reason -> count mappings (one per worker)."""
    total: Counter[str] = Counter()
    for part in parts:
        total.update(part)
    return dict(total)


def read_closed_sessions(url: str) -> dict[str, float] | None:
    """``rallypoint_sessions_closed_total`` by reason from a Prometheus text endpoint; None if unreadable."""
    try:
        with urllib.request.urlopen(url, timeout=METRICS_TIMEOUT_S) as answer:
            text = answer.read().decode("utf-8", errors="replace")
    except (OSError, ValueError) as exc:
        logger.warning("cannot read server metrics from %s: %s", url, exc)
        return None
    closed: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == CLOSED_SAMPLE:
                reason = sample.labels.get("reason", "")
                closed[reason] = closed.get(reason, 0.0) + float(sample.value)
    return closed


def explain_closures(
    *,
    failures: Mapping[str, int],
    kept: int,
    shared_identity: str | None,
    metrics_before: Mapping[str, float] | None,
    metrics_after: Mapping[str, float] | None,
) -> str | None:
    """Which server limit stopped the failed connections, when the metrics or their shape tell."""
    if not failures:
        return None
    if metrics_before is not None and metrics_after is not None:
        rises = {
            reason: int(metrics_after.get(reason, 0.0) - metrics_before.get(reason, 0.0))
            for reason in metrics_after
            if metrics_after.get(reason, 0.0) > metrics_before.get(reason, 0.0) and reason != "shutdown"
        }
        if rises:
            parts = [
                f"{SERVER_LIMITS.get(reason, reason)}: {count} closed (server metric {CLOSED_SAMPLE}"
                f'{{reason="{reason}"}})'
                for reason, count in sorted(rises.items(), key=lambda item: -item[1])
            ]
            return "; ".join(parts)
    early = sum(count for reason, count in failures.items() if reason.endswith(RIGHT_AFTER_CONNECT))
    if early and early == sum(failures.values()) and kept > 0:
        if shared_identity is not None:
            return (
                f"probably a per-identity connection limit: every client presents the certificate of "
                f"{shared_identity!r} and the server kept {kept}, ending the rest right after the TLS "
                f"handshake (Rallypoint: max_connections_per_identity, default 10; give each client its "
                f"own certificate, or pass --metrics-url to confirm)"
            )
        return (
            f"probably a per-address connection limit: the server kept {kept} and ended the rest right "
            f"after connecting (Rallypoint: max_connections_per_ip; pass --metrics-url to confirm)"
        )
    return None


def certificate_name(cert_path: str | None) -> str | None:
    """The common name of the client certificate every bench connection presents, if any."""
    if not cert_path:
        return None
    try:
        with open(cert_path, "rb") as fh:
            cert = x509.load_pem_x509_certificate(fh.read())
    except (OSError, ValueError):
        return cert_path
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert_path
