"""The only place with sockets: stream (TCP/TLS) and datagram listeners, sessions, TLS contexts."""
