"""Who receives an event: envelopes, the subscriber directory and the router (no sockets here)."""
