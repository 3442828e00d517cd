"""``--target``: clients dealt round-robin over several servers; malformed targets refused."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from rallypoint.cli.bench import bench_command
from rallypoint.loadgen.spec import BenchSpec, BenchSpecError, parse_target


@pytest.mark.parametrize(("text", "pair"), [
    ("127.0.0.1:8087", ("127.0.0.1", 8087)),
    ("node-2.example:1", ("node-2.example", 1)),
    ("[::1]:65535", ("::1", 65535)),
])  # fmt: skip
def test_a_target_is_host_and_port(text: str, pair: tuple[str, int]) -> None:
    assert parse_target(text) == pair


@pytest.mark.parametrize("text", ["127.0.0.1", ":8087", "host:", "host:0", "host:65536", "host:x", "[::1]"])
def test_a_malformed_target_is_refused(text: str) -> None:
    with pytest.raises(BenchSpecError, match="--target"):
        parse_target(text)


def test_clients_are_dealt_round_robin_over_the_targets() -> None:
    spec = BenchSpec(host="a", port=1, targets=(("a", 1), ("b", 2), ("c", 3))).validate()
    assert [spec.address(i) for i in range(5)] == [("a", 1), ("b", 2), ("c", 3), ("a", 1), ("b", 2)]
    assert spec.target_text == "a:1,b:2,c:3"


def test_without_targets_every_client_goes_to_host_and_port() -> None:
    spec = BenchSpec(host="h", port=9).validate()
    assert {spec.address(i) for i in range(3)} == {("h", 9)} and spec.target_text == "h:9"


def test_a_target_with_a_bad_port_fails_validation() -> None:
    with pytest.raises(BenchSpecError, match="--target"):
        BenchSpec(host="a", port=1, targets=(("b", 0),)).validate()


def test_the_command_refuses_a_malformed_target_with_status_2() -> None:
    app = typer.Typer()
    app.command()(bench_command)
    result = CliRunner().invoke(app, ["--target", "127.0.0.1:1", "--target", "nohostport"])
    assert result.exit_code == 2 and "--target must be host:port" in result.output
