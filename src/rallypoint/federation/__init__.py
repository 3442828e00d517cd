"""Federation with other Rallypoint and TAK servers (TAK federation v2 over gRPC + mutual TLS)."""
