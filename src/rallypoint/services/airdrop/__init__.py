"""Cargo airdrop planning: pure math (no I/O, no clock) behind the CLI and the native API.

``plan(request)`` is the entry point; ``validation`` checks inputs once, ``ballistics`` integrates
the fall, ``geometry`` places it on WGS-84, ``dispersion`` runs the Monte Carlo, ``sizing`` holds
the DZ rules, ``svg`` draws a plan and ``cot`` turns one into CoT events.
"""

from rallypoint.services.airdrop.planner import plan
from rallypoint.services.airdrop.validation import PlanError, decode_json, from_mapping

__all__ = ["PlanError", "decode_json", "from_mapping", "plan"]
