"""Python client for a Rallypoint server: the native REST API and CoT streams.

Imports only ``rallypoint.protocol`` and ``rallypoint.model`` of the server's packages, so it can be
used from scripts without running a server.
"""

from rallypoint.client.http import ApiError, AsyncRallypointClient, RallypointClient
from rallypoint.client.stream import CotStream, client_ssl_context

__all__ = ["ApiError", "AsyncRallypointClient", "CotStream", "RallypointClient", "client_ssl_context"]
