"""Source connectors: one sans-IO decoder per source (bytes or lines in, observations out) and shared
async runners per transport (TCP client and server, UDP, HTTP poll, file watch) that feed them."""
