"""Generated TAK Protocol v1 messages (do not edit; run scripts/gen_proto.sh)."""
