"""Recorded CoT samples (``tests/data/samples``) made current, so the server does not drop them as stale."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.cot_client import iso

SAMPLES = Path(__file__).parents[1] / "data" / "samples"


def fresh(sample: bytes, stale_s: float = 3600.0) -> bytes:
    """``sample`` with current times (ATAK exports quote attributes with ``'``, TAK Server with ``"``)."""
    now = datetime.now(UTC)
    out = sample
    for name, value in (("time", now), ("start", now), ("stale", now + timedelta(seconds=stale_s))):
        out = re.sub(rb"\b" + name.encode() + rb"=(['\"])[^'\"]+\1", f'{name}="{iso(value)}"'.encode(), out, count=1)
    return out


def current_sample(name: str, stale_s: float = 3600.0) -> bytes:
    """The sample file ``name`` with current times."""
    return fresh((SAMPLES / name).read_bytes(), stale_s)
