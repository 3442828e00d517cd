"""HTTP features (Marti API, data packages, missions, native API) plug into the node the same way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from starlette.routing import BaseRoute

from rallypoint.routing.envelope import Envelope
from rallypoint.routing.router import Audience


class Feature(Protocol):
    """A feature: its routes, an optional hook on every accepted event, background work, cleanup."""

    @property
    def routes(self) -> Sequence[BaseRoute]: ...

    def observe(self, envelope: Envelope, audience: Audience) -> object:
        """Called on the ingest path after routing (must be cheap and must not block).

        Return True when the feature keeps the event for recipients that are offline. A feature
        whose ``observe`` does nothing says so with a class attribute ``observes = False``: the
        ingest path then never calls it (every event would pay for the call). One that does nothing
        with a broadcast says ``observes_addressed_only = True``: only addressed events call it.
        """
        ...

    async def run(self) -> None:
        """Background work until :meth:`close`; return at once if there is none."""
        ...

    async def close(self) -> None: ...


FeatureBuilder = Callable[..., Feature]


class RoutesOnly:
    """A feature that only serves routes."""

    def __init__(self, routes: Sequence[BaseRoute] = ()) -> None:
        self._routes = list(routes)

    @property
    def routes(self) -> Sequence[BaseRoute]:
        return self._routes

    observes = False

    def observe(self, envelope: Envelope, audience: Audience) -> None:
        return None

    async def run(self) -> None:
        return None

    async def close(self) -> None:
        return None
