"""The stores a command-line tool works on: those of the server sharing its data directory.

Commands that change accounts, tokens or the audit log next to a server (``user``, ``cert``,
``audit``, ``onboard``) open them through ``storage.factory.open_stores``, the one place that picks
backends. The storage URL is the server's: ``RALLYPOINT_STORAGE`` from the environment when set
(as ``serve`` reads it), else the SQLite files of the data directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from rallypoint.config import ENV_PREFIX
from rallypoint.storage.factory import Stores, open_stores

STORAGE_ENV = f"{ENV_PREFIX}STORAGE"


def cli_stores(data_dir: Path, environ: Mapping[str, str] | None = None) -> Stores:
    """The stores of ``data_dir`` (and of ``RALLYPOINT_STORAGE`` when set)."""
    env = os.environ if environ is None else environ
    return open_stores(env.get(STORAGE_ENV) or "sqlite://", data_dir)
