"""Byte budgets by client class: own certificate name, else the tightest group, else the default."""

from __future__ import annotations

from rallypoint.config import load_settings
from rallypoint.node.build import budget_for


def test_budget_by_name_then_group_then_default() -> None:
    s = load_settings(
        environ={"RALLYPOINT_SESSION_BUDGET_BYTES_PER_S": "5000",
                 "RALLYPOINT_CLIENT_BUDGETS": '{"satphone-1": 300, "Satcom": 800, "Narrowband": 1200}'}
    )
    assert budget_for(s, "satphone-1", frozenset({"Satcom"})) == 300
    assert budget_for(s, "field-7", frozenset({"Satcom", "Narrowband"})) == 800
    assert budget_for(s, "field-8", frozenset({"Red"})) == 5000
    assert budget_for(s, None, frozenset({"__ANON__"})) == 5000
    unlimited = load_settings(environ={})
    assert budget_for(unlimited, "x", frozenset({"Red"})) == 0.0
