#!/bin/sh
# Prepare the data directory that every Rallypoint node of deploy/compose.yaml shares: the CA with
# a server certificate covering every name clients use, and the token signing key. Run once before
# the nodes start (the compose file's `init` service does); running it again changes nothing that
# exists, so it is safe on every `docker compose up`.
set -eu

DATA_DIR="${RALLYPOINT_DATA_DIR:-/var/lib/rallypoint}"
NAMES="${RALLYPOINT_SERVER_NAMES:-localhost,127.0.0.1}"

# Every node checks its server_names against the shared certificate at start and re-issues it when a
# name is missing; issuing it here with all of them means no node ever writes it.
set --
for name in $(printf '%s' "$NAMES" | tr ',' ' '); do
    set -- "$@" --server-name "$name"
done
rallypoint ca init --data-dir "$DATA_DIR" "$@"

# The key that signs API tokens: created once (0600, never overwritten), so every node validates
# the tokens of every other node.
python - "$DATA_DIR" <<'PY'
import sys
from pathlib import Path

from rallypoint.security.tokens import KEY_FILE, load_or_create_key

load_or_create_key(Path(sys.argv[1]) / KEY_FILE)
PY
echo "shared data directory ready: $DATA_DIR"
