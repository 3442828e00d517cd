"""Rallypoint's own settings in a ``postgresql://`` storage URL, split from what the driver receives.

``postgresql://user@host/db?pool_max=8&retry_s=30&postgis=require&sslmode=require``:

* ``pool_max``: the most connections each store's pool opens (1..100; default 4 for the event
  history and the designations, 2 for every other store).
* ``retry_s``: how long an idempotent operation keeps retrying after a lost connection before it
  fails (0..3600 seconds; default 5). Pauses start at 50 ms and double up to 2 s.
* ``postgis``: ``auto`` (default) uses PostGIS for the history's area index when the extension is
  installed in the database; ``require`` also creates it when missing and refuses to start without
  it; ``off`` never converts to it (see ``storage.postgres.schema``).

Every other query parameter (``sslmode``, ``connect_timeout``...) is left for the driver. The
options are parsed here, once, so a bad value is a ``ConfigError`` naming the parameter, and the
driver never sees them (it would pass unknown names to the server as settings, which it refuses).
"""

from __future__ import annotations

import math
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from rallypoint.errors import ConfigError

PostgisMode = Literal["auto", "require", "off"]
_POSTGIS_MODES: tuple[PostgisMode, ...] = ("auto", "require", "off")
POOL_MAX_LIMIT = 100
RETRY_S_LIMIT = 3600.0
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 2.0


class PostgresOptions(msgspec.Struct, frozen=True):
    """The storage URL's Rallypoint settings; ``None`` means "the store's own default"."""

    pool_max: int | None = None
    retry_s: float | None = None
    postgis: PostgisMode = "auto"


def split_url(url: str) -> tuple[str, PostgresOptions]:
    """``url`` without Rallypoint's parameters (for the driver), and those parameters, checked.

    Raises ``ConfigError`` for a bad or repeated value; only the parameter is named, never the URL
    (it may carry a password).
    """
    parts = urlsplit(url)
    kept: list[tuple[str, str]] = []
    ours: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in ("pool_max", "retry_s", "postgis"):
            if name in ours:
                raise ConfigError(f"storage URL: {name} is given twice")
            ours[name] = value
        else:
            kept.append((name, value))
    options = PostgresOptions(
        pool_max=_pool_max(ours["pool_max"]) if "pool_max" in ours else None,
        retry_s=_retry_s(ours["retry_s"]) if "retry_s" in ours else None,
        postgis=_postgis(ours.get("postgis", "auto")),
    )
    return urlunsplit(parts._replace(query=urlencode(kept))), options


def retry_attempts(retry_s: float, *, first_s: float = RETRY_FIRST_S, max_s: float = RETRY_MAX_S) -> int:
    """Tries whose pauses (``first_s`` doubling up to ``max_s``) add up to at least ``retry_s``."""
    attempts, waited, delay = 1, 0.0, first_s
    while waited < retry_s:
        waited += delay
        delay = min(delay * 2, max_s)
        attempts += 1
    return attempts


def _pool_max(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"storage URL: pool_max must be a whole number, got {value!r}") from None
    if not 1 <= number <= POOL_MAX_LIMIT:
        raise ConfigError(f"storage URL: pool_max must be between 1 and {POOL_MAX_LIMIT}, got {number}")
    return number


def _retry_s(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"storage URL: retry_s must be a number of seconds, got {value!r}") from None
    if not math.isfinite(number) or not 0 <= number <= RETRY_S_LIMIT:
        raise ConfigError(f"storage URL: retry_s must be between 0 and {RETRY_S_LIMIT:g} seconds, got {value}")
    return number


def _postgis(value: str) -> PostgisMode:
    for mode in _POSTGIS_MODES:
        if value == mode:
            return mode
    raise ConfigError(f"storage URL: postgis must be one of auto, require, off; got {value!r}")
