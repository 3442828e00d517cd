"""Failure reasons and the server limit behind connections the server closed."""

from __future__ import annotations

import ssl

import pytest

from rallypoint.loadgen.diagnosis import (
    NegotiationFailed,
    describe_failure,
    explain_closures,
    merge_counts,
)


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (None, "closed by the server"),
        (ConnectionResetError(104, "Connection reset by peer"), "reset by the server"),
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (TimeoutError(), "timed out"),
        (NegotiationFailed("server answered TakResponse status=false"), "server answered TakResponse status=false"),
        (OSError(113, "No route to host"), "No route to host"),
    ],
)
def test_describe_failure(exc: BaseException | None, text: str) -> None:
    assert describe_failure(exc) == text


def test_describe_tls_failure_names_the_reason() -> None:
    exc = ssl.SSLError(1, "alert")
    exc.reason = "TLSV1_ALERT_UNKNOWN_CA"
    assert describe_failure(exc) == "TLS error (TLSV1_ALERT_UNKNOWN_CA)"


def test_merge_counts() -> None:
    assert merge_counts([{"a": 1}, {"a": 2, "b": 1}, {}]) == {"a": 3, "b": 1}


def test_metrics_name_the_limit_exactly() -> None:
    limit = explain_closures(
        failures={"reset by the server": 40},
        kept=10,
        shared_identity="loadgen",
        metrics_before={"identity_connections": 5.0, "shutdown": 1.0},
        metrics_after={"identity_connections": 45.0, "shutdown": 3.0, "slow_receiver": 0.0},
    )
    assert limit is not None
    assert limit.startswith("max_connections_per_identity")
    assert "40 closed" in limit and 'reason="identity_connections"' in limit
    assert "shutdown" not in limit


def test_shape_points_at_the_shared_certificate() -> None:
    limit = explain_closures(
        failures={"closed by the server right after connecting": 40},
        kept=10,
        shared_identity="loadgen",
        metrics_before=None,
        metrics_after=None,
    )
    assert limit is not None and "'loadgen'" in limit and "max_connections_per_identity" in limit


def test_shape_without_a_certificate_points_at_the_address_limit() -> None:
    limit = explain_closures(
        failures={"reset by the server right after connecting": 3},
        kept=1000,
        shared_identity=None,
        metrics_before=None,
        metrics_after=None,
    )
    assert limit is not None and "max_connections_per_ip" in limit


def test_no_guess_when_failures_do_not_look_like_a_limit() -> None:
    def explain(failures: dict[str, int]) -> str | None:
        return explain_closures(failures=failures, kept=9, shared_identity="x",
                                metrics_before=None, metrics_after=None)

    assert explain({}) is None
    assert explain({"reset by the server": 2, "closed by the server right after connecting": 1}) is None
