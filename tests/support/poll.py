"""Polling with a deadline (never a fixed sleep as synchronisation)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_until(check: Callable[[], T], what: str, timeout: float = 10.0, interval: float = 0.05) -> T:
    """Run ``check()`` off the event loop until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        got = await asyncio.to_thread(check)
        if got:
            return got
        assert time.monotonic() < deadline, f"{what} within {timeout}s"
        await asyncio.sleep(interval)


async def wait_until_async(
    check: Callable[[], Awaitable[T]], what: str, timeout: float = 10.0, interval: float = 0.05
) -> T:
    """``wait_until`` for a coroutine check (an HTTP call, a NATS read): await it until truthy."""
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what} within {timeout}s"
        await asyncio.sleep(interval)


def wait_until_sync(check: Callable[[], T], what: str, timeout: float = 10.0, interval: float = 0.05) -> T:
    """``wait_until`` for synchronous test code: poll ``check()`` until truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what} within {timeout}s"
        time.sleep(interval)
