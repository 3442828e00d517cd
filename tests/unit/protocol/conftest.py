"""Fixtures for the protocol tests: limits and the real CoT samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from rallypoint.errors import RemoteProtocolError
from rallypoint.model.cot import CotEvent
from rallypoint.protocol import Limits

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "data" / "samples"


def sample(name: str) -> bytes:
    """The bytes of one sample file."""
    return (SAMPLES_DIR / name).read_bytes()


PLI = "01_sa_pli_atak_civ_taky_fixture.xml"


def outcome(decode: object, data: bytes) -> CotEvent | str:
    """The decoded event, or the rejection's type and reason."""
    assert callable(decode)
    try:
        event = decode(data)
    except RemoteProtocolError as exc:
        return f"{type(exc).__name__}:{exc.reason}"
    assert isinstance(event, CotEvent)
    return event


@pytest.fixture
def limits() -> Limits:
    return Limits()


@pytest.fixture
def pli_bytes() -> bytes:
    return sample(PLI).strip()
