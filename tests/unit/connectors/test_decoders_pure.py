"""The source decoders are sans-IO: no sockets, no asyncio, no threads, no clock reads."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CONNECTORS = Path(__file__).resolve().parents[3] / "src" / "rallypoint" / "connectors"
DECODERS = (
    "decoding",
    "adsb_quality",
    "sbs",
    "adsb_json",
    "modes",
    "ais",
    "nmea",
    "aprs",
    "geo_files",
    "cot_feed",
)
FORBIDDEN_MODULES = {"asyncio", "socket", "ssl", "time", "selectors", "threading", "urllib", "http"}
FORBIDDEN_CALLS = {"datetime.now", "datetime.utcnow", "date.today", "datetime.today"}


@pytest.mark.parametrize("name", DECODERS)
def test_decoder_module_does_no_io(name: str) -> None:
    path = CONNECTORS / f"{name}.py"
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] not in FORBIDDEN_MODULES, f"{name}: imports {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.module.split(".")[0] not in FORBIDDEN_MODULES, f"{name}: imports from {node.module}"
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            assert f"{node.value.id}.{node.attr}" not in FORBIDDEN_CALLS, f"{name}: reads the clock"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "open", f"{name}: opens a file"
