"""Rallypoint: a command-and-coordination server for field teams (TAK-compatible CoT server)."""

__version__ = "0.1.0"
