"""The web context is built whole and never changed; bearer tokens identify callers through a service."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from starlette.requests import Request

from rallypoint.web.context import TokenIdentities
from tests.unit.web.test_api_harness import Harness, harness_fixture  # noqa: F401


def _request(token: str | None) -> Request:
    headers = [] if token is None else [(b"authorization", f"Bearer {token}".encode())]
    return Request({"type": "http", "headers": headers, "client": ("127.0.0.1", 1)})


def test_context_refuses_attribute_assignment(harness: Harness) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        harness.ctx.packages = None  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        harness.ctx.token_identity = None  # type: ignore[misc]


def test_token_identities_follow_the_account_store(harness: Harness) -> None:
    harness.add_user("alice", {"A"})
    token = harness.token("alice")
    identities = harness.ctx.token_identity
    assert isinstance(identities, TokenIdentities)

    found = asyncio.run(identities(_request(token)))
    assert found is not None and found.principal == "alice" and found.read_groups == frozenset({"A"})
    assert asyncio.run(identities(_request(None))) is None
    assert asyncio.run(identities(_request("not-a-token"))) is None

    # A change made a moment ago applies to the next request, without reloading the node's cache.
    asyncio.run(harness.users.set_disabled("alice", True))
    assert asyncio.run(identities(_request(token))) is None
    assert asyncio.run(harness.ctx.identify(_request(token))) is None
