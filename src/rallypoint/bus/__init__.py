"""Message bus between ingest and delivery: in-process by default, NATS JetStream for several nodes."""
