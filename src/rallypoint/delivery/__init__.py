"""How events reach receivers: per-receiver outboxes and the dispatcher."""
