"""Fixtures for the storage unit tests."""

from __future__ import annotations

import pytest

from tests.support.stored import MakeEvent, make_event


@pytest.fixture
def ev() -> MakeEvent:
    return make_event
