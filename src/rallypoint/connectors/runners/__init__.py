"""One async runner per transport (TCP client and server, UDP, HTTP poll, file watch), shared by every
source format; ``connectors.feeds.open_runner`` picks one for a feed."""
