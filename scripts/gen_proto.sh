#!/usr/bin/env bash
# Regenerate the TAK Protocol v1 Python modules in src/rallypoint/protocol/pb/ from protocol/proto/.
# Run from anywhere; needs grpcio-tools in the project virtualenv.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
proto_dir="$root/src/rallypoint/protocol/proto"
out_dir="$root/src/rallypoint/protocol/pb"
protos=(takmessage takcontrol cotevent detail contact group precisionlocation status takv track)

mkdir -p "$out_dir"
rm -f "$out_dir"/*_pb2.py "$out_dir"/*_pb2.pyi
files=()
for p in "${protos[@]}"; do files+=("$p.proto"); done
(cd "$proto_dir" && "$python" -m grpc_tools.protoc -I. --python_out="$out_dir" --pyi_out="$out_dir" "${files[@]}")

# protoc writes top-level imports ("import detail_pb2"); make them package-relative.
for f in "$out_dir"/*_pb2.py "$out_dir"/*_pb2.pyi; do
  sed -i -E 's/^import ([a-z]+_pb2) as /from . import \1 as /' "$f"
done

cat > "$out_dir/__init__.py" <<'PY'
"""Generated TAK Protocol v1 messages (do not edit; run scripts/gen_proto.sh)."""
PY
echo "generated into $out_dir"
