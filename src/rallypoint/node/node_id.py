"""The node id: configured, or generated on first start and kept in the data directory."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from rallypoint.errors import ConfigError

NODE_ID_FILE = "node-id"
NODE_ID_MAX_CHARS = 128


def resolve_node_id(configured: str, data_dir: Path) -> str:
    """``configured`` if set, else the id in ``<data_dir>/node-id``, created once if missing.

    A generated id is ``rallypoint-`` plus 12 random hex digits, so two servers started with
    default settings never share one (ids drive loop prevention and session ids).
    """
    if configured:
        return _checked(configured, "node_id")
    path = data_dir / NODE_ID_FILE
    try:
        stored = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        stored = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the node id in {path}: {exc}") from exc
    if stored:
        return _checked(stored, str(path))
    node_id = "rallypoint-" + secrets.token_hex(6)
    tmp = path.with_name(NODE_ID_FILE + ".tmp")
    tmp.write_text(node_id + "\n", encoding="utf-8")
    # Replaced atomically: a crash while writing never leaves an empty or partial id behind.
    os.replace(tmp, path)
    return node_id


def _checked(node_id: str, source: str) -> str:
    if len(node_id) > NODE_ID_MAX_CHARS or not node_id.isprintable() or any(c.isspace() for c in node_id):
        raise ConfigError(f"{source}: a node id is up to {NODE_ID_MAX_CHARS} printable characters without spaces")
    return node_id
