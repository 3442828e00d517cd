"""Run validation and the split of clients over worker processes."""

from __future__ import annotations

import pytest

from rallypoint.loadgen.spec import BenchSpec, BenchSpecError, assign


def test_fanout_clients_dealt_round_robin() -> None:
    spec = BenchSpec(host="h", port=1, clients=5, processes=2)
    assert assign(spec) == [[0, 2, 4], [1, 3]]


def test_blast_sender_gets_its_own_process() -> None:
    spec = BenchSpec(host="h", port=1, mode="blast", receivers=4, processes=3)
    assert assign(spec) == [[0], [1, 3], [2, 4]]


def test_single_process_holds_everyone() -> None:
    spec = BenchSpec(host="h", port=1, mode="blast", receivers=3)
    assert assign(spec) == [[0, 1, 2, 3]]


def test_never_more_processes_than_connections() -> None:
    assert len(assign(BenchSpec(host="h", port=1, clients=2, processes=8))) == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "storm"},
        {"proto": "json"},
        {"clients": 1},
        {"rate": 0},
        {"duration": 0},
        {"tls": True},
        {"cert": "c.pem"},
        {"mode": "blast", "receivers": 0},
        {"processes": 0},
    ],
)
def test_validate_rejects(kwargs: dict[str, object]) -> None:
    with pytest.raises(BenchSpecError):
        BenchSpec(host="h", port=8087, **kwargs).validate()  # type: ignore[arg-type]


def test_validate_accepts_tls_with_ca() -> None:
    spec = BenchSpec(host="h", port=8089, tls=True, ca="ca.pem")
    assert spec.validate() is spec
