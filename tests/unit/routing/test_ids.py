"""Session ids: unique across nodes and restarts, and origins stamped with their node."""

from __future__ import annotations

import pytest

from rallypoint.routing.ids import NodeIds


def test_ids_name_node_run_kind_and_count_per_kind() -> None:
    ids = NodeIds("alpha", "r1")
    assert [ids.session_id("tls"), ids.session_id("tls"), ids.session_id("live")] == [
        "alpha:r1:tls-1", "alpha:r1:tls-2", "alpha:r1:live-1",
    ]


def test_two_nodes_and_two_runs_of_one_node_never_share_an_id() -> None:
    first = NodeIds.start("alpha")
    restarted = NodeIds.start("alpha")
    other = NodeIds("bravo", first.run)
    made = [ids.session_id("tls") for ids in (first, restarted, other)]
    assert len(set(made)) == 3, made


def test_counters_belong_to_the_instance_not_the_class() -> None:
    a, b = NodeIds("a", "r"), NodeIds("b", "r")
    a.session_id("tcp")
    assert b.session_id("tcp") == "b:r:tcp-1"


def test_origins_carry_the_node() -> None:
    ids = NodeIds("alpha", "r1")
    origin = ids.origin("alpha:r1:tls-1", frozenset({"Red"}), "alice")
    assert (origin.node, origin.session_id, origin.groups, origin.principal) == (
        "alpha", "alpha:r1:tls-1", frozenset({"Red"}), "alice",
    )


def test_empty_node_or_run_is_refused() -> None:
    with pytest.raises(ValueError):
        NodeIds("", "r")
