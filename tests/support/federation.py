"""Federation test helpers shared by unit and integration tests."""

from __future__ import annotations

import shutil
from pathlib import Path


def copy_queue(src: Path, dst: Path) -> None:
    """Copy a stopped node's ``federation.db`` (and any journal files) from directory ``src`` over ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for path in dst.glob("federation.db*"):
        path.unlink()
    for path in src.glob("federation.db*"):
        shutil.copy2(path, dst / path.name)
