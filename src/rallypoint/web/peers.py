"""Client certificates behind HTTPS requests.

uvicorn does not put the TLS peer certificate into the ASGI scope, so our HTTP protocol subclass
records it per connection address (the server socket's and the client's) when the connection is
made and forgets it when it closes; request handlers look it up by ``scope["server"]`` and
``scope["client"]``. The server side of the key keeps the ports apart: a plain HTTP connection may
leave the client host from the same port as an HTTPS one and must never inherit its certificate.
A connection upgraded to a WebSocket is handed to another protocol object, so that one forgets the
certificate when the socket closes: otherwise a later connection from the same address and port
would inherit it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

Key = tuple[str, int, str, int]


def _key(server: Any, client: Any) -> Key | None:
    """(server host, server port, client host, client port), or None when either is unknown."""
    if not server or not client:
        return None
    return str(server[0]), int(server[1] or 0), str(client[0]), int(client[1])


class PeerCertificates:
    """Maps live HTTPS connections (server and client address) to their verified peer certificate (DER)."""

    def __init__(self) -> None:
        self._by_client: dict[Key, bytes] = {}

    def protocol_class(self) -> type[asyncio.Protocol]:
        """An h11 protocol class that records peer certificates in this registry."""
        registry = self._by_client
        upgraded: dict[type[Any], type[Any]] = {}

        def forgetting(base: type[Any]) -> type[Any]:
            """``base`` (uvicorn's WebSocket protocol) that drops the recorded certificate on close."""
            cls = upgraded.get(base)
            if cls is None:

                class CertificateForgettingWebSocket(base):  # type: ignore[misc]
                    def connection_lost(self, exc: Exception | None) -> None:
                        key = _key(self.server, self.client)
                        if key is not None:
                            registry.pop(key, None)
                        super().connection_lost(exc)

                    # A peer that stopped reading must not keep the socket (and a connection slot, and
                    # a graceful shutdown) waiting for a write buffer it will never drain.
                    def on_task_complete(self, task: asyncio.Task[None]) -> None:
                        super().on_task_complete(task)
                        if not self.writable.is_set():
                            self.transport.abort()

                    def shutdown(self) -> None:
                        super().shutdown()
                        if not self.writable.is_set():
                            self.transport.abort()

                cls = upgraded[base] = CertificateForgettingWebSocket
            return cls

        class CertificateRecordingProtocol(H11Protocol):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                if self.ws_protocol_class is not None:
                    self.ws_protocol_class = forgetting(self.ws_protocol_class)

            def connection_made(self, transport: Any) -> None:
                super().connection_made(transport)
                ssl_object = transport.get_extra_info("ssl_object")
                key = _key(self.server, self.client)
                if ssl_object is not None and key is not None:
                    der = ssl_object.getpeercert(binary_form=True)
                    if der:
                        registry[key] = der

            def connection_lost(self, exc: Exception | None) -> None:
                key = _key(self.server, self.client)
                if key is not None:
                    registry.pop(key, None)
                super().connection_lost(exc)

        return CertificateRecordingProtocol

    def certificate_for(self, scope: Any) -> bytes | None:
        """The peer certificate of the connection a request arrived on, if any."""
        key = _key(scope.get("server"), scope.get("client"))
        return None if key is None else self._by_client.get(key)
