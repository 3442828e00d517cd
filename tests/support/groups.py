"""Servers whose configuration maps client certificate names to groups."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.support.server import ServerProcess

GroupMap = Mapping[str, Sequence[str]]


def client_groups_lines(mapping: GroupMap) -> list[str]:
    """The ``[rallypoint.client_groups]`` TOML table for ``mapping`` (certificate name -> groups)."""
    return ["[rallypoint.client_groups]", *(f"{name} = {json.dumps(list(groups))}" for name, groups in mapping.items())]


def write_group_config(data_dir: Path, mapping: GroupMap) -> Path:
    """Write ``data_dir/rallypoint.toml`` holding only the client-to-groups table; returns its path."""
    path = data_dir / "rallypoint.toml"
    path.write_text("\n".join(client_groups_lines(mapping)) + "\n")
    return path


@contextmanager
def serve_with_groups(
    data_dir: Path, mapping: GroupMap, *, env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    """Run a server configured with ``mapping`` for the duration of the block, then stop it."""
    with ServerProcess(data_dir, "--config", str(write_group_config(data_dir, mapping)), env=env) as proc:
        yield proc
