"""The node id: configured, or generated once and kept in the data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from rallypoint.errors import ConfigError
from rallypoint.node.node_id import NODE_ID_FILE, resolve_node_id


def test_generated_once_then_read_back(tmp_path: Path) -> None:
    first = resolve_node_id("", tmp_path)
    assert first.startswith("rallypoint-") and len(first) == len("rallypoint-") + 12
    assert (tmp_path / NODE_ID_FILE).read_text().strip() == first
    assert resolve_node_id("", tmp_path) == first, "a restart keeps the node id"
    other = tmp_path / "other"
    other.mkdir()
    assert resolve_node_id("", other) != first, "another data directory is another node"


def test_a_configured_id_wins_and_writes_nothing(tmp_path: Path) -> None:
    assert resolve_node_id("alpha", tmp_path) == "alpha"
    assert not (tmp_path / NODE_ID_FILE).exists()


def test_an_empty_file_is_replaced_by_a_new_id(tmp_path: Path) -> None:
    (tmp_path / NODE_ID_FILE).write_text("\n")
    node_id = resolve_node_id("", tmp_path)
    assert node_id and (tmp_path / NODE_ID_FILE).read_text().strip() == node_id


@pytest.mark.parametrize("bad", ["two words", "x" * 129, "tab\there"])
def test_unusable_ids_are_refused_with_their_source(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="node_id"):
        resolve_node_id(bad, tmp_path)
    (tmp_path / NODE_ID_FILE).write_text(bad)
    with pytest.raises(ConfigError, match=NODE_ID_FILE):
        resolve_node_id("", tmp_path)
