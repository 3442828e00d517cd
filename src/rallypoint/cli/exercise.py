"""``rallypoint exercise``: scripted exercises against a real server, their live control and reports.

The command group is assembled from one module per concern: ``exercise_run`` (``run``),
``exercise_control`` (``list``, ``status``, ``start``, ``pause``, ``resume``, ``inject``, ``stop``) and
``exercise_report`` (``report``). Each registers its commands on :data:`exercise_app`. The contract is
in docs/exercises.md and docs/cli.md.
"""

from __future__ import annotations

import typer

from rallypoint.cli.wording import RallypointGroup

exercise_app = typer.Typer(
    cls=RallypointGroup,
    no_args_is_help=True,
    help="Scripted exercises: run a scenario against a server, control it live, report on it afterwards.",
)
