"""Generated TAK federation v2 messages and gRPC stubs (do not edit; run scripts/gen_fig.sh)."""
