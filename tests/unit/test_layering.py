"""The pure layers stay pure: no sockets, no asyncio, no clock reads in model/protocol/routing/fusion."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "rallypoint"
FORBIDDEN_MODULES = {"asyncio", "socket", "ssl", "time", "selectors", "threading"}
FORBIDDEN_CALLS = {"datetime.now", "datetime.utcnow", "date.today"}


def _files() -> list[Path]:
    out: list[Path] = []
    for pkg in ("model", "protocol", "routing", "fusion"):
        out.extend(p for p in (SRC / pkg).rglob("*.py") if "/pb/" not in str(p))
    return out


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(SRC)))
def test_pure_layer_has_no_io(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] not in FORBIDDEN_MODULES, f"{path}: imports {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.module.split(".")[0] not in FORBIDDEN_MODULES, f"{path}: imports from {node.module}"
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            assert f"{node.value.id}.{node.attr}" not in FORBIDDEN_CALLS, f"{path}: reads the clock"
