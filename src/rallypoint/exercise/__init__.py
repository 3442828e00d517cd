"""Scripted exercises: scenario files, a seeded sans-IO engine with its exercise clock, and the runner.

``scenario`` (with ``lines``, ``scenario_checker``, ``scenario_motion``, ``scenario_injects``,
``tracks``) checks a TOML scenario into the frozen values of ``model``; ``motion``, ``clock`` and
``engine`` decide, without I/O, what falls due when; ``events`` builds the marked CoT; ``transport``,
``api`` and ``runner`` play it against a real server. The contract is in docs/exercises.md.
"""
