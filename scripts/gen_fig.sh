#!/usr/bin/env bash
# Regenerate the TAK federation v2 (fig.proto) protobuf + gRPC modules in src/rallypoint/protocol/fig/.
# Needs grpcio-tools (test extras). Imports are rewritten to be package-relative.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pkg="$root/src/rallypoint/protocol/fig"
py="${PYTHON:-$root/.venv/bin/python}"
"$py" -m grpc_tools.protoc -I "$pkg/proto" \
  --python_out="$pkg" --pyi_out="$pkg" --grpc_python_out="$pkg" \
  "$pkg/proto/fig.proto" "$pkg/proto/binarypayload.proto"
rm -f "$pkg/binarypayload_pb2_grpc.py"  # the payload file declares no service
for f in "$pkg"/*_pb2*.py "$pkg"/*_pb2.pyi; do
  sed -i -E 's/^import (binarypayload_pb2|fig_pb2) as /from . import \1 as /' "$f"
done
