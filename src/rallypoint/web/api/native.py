"""Feature module: built by ``build(ctx)`` and mounted by the node."""

from __future__ import annotations

from rallypoint.web.context import WebContext
from rallypoint.web.features import Feature, RoutesOnly


def build(ctx: WebContext) -> Feature:
    """Construct this feature's services and routes from the shared context."""
    return RoutesOnly()
