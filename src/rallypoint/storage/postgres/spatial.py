"""The history's area index: PostGIS when the database has it, a plain GiST box index otherwise.

Either way an area query is the contract's planar longitude/latitude box (``base.in_bbox``): the
index narrows the rows and the exact ``BETWEEN`` comparisons beside it decide the edges, so both
forms return the same rows. With PostGIS the rows carry ``geom``, a ``geometry(Point, 4326)``
computed from ``lon``/``lat`` (NULL for the no-fix position 0,0) with a GiST index, searched with
``&&`` against ``ST_MakeEnvelope``. Geometry, not geography: the contract's boxes have straight
longitude/latitude edges, which is what a planar envelope is.

Which form a database uses is decided under the migration lock (``prepare``) and then fixed: it is
the PostGIS form when events migration 2 (``requires="postgis"``) has been applied and the
``geometry`` type is visible on the connection's ``search_path``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

import asyncpg

from rallypoint.errors import StorageError
from rallypoint.storage.base import BBox
from rallypoint.storage.postgres.options import PostgisMode

log = logging.getLogger(__name__)

POSTGIS = "postgis"
AreaIndex = Literal["postgis", "bbox"]
Param = Callable[[list[Any], Any], str]


async def prepare(conn: asyncpg.Connection, mode: PostgisMode) -> tuple[frozenset[str], AreaIndex]:
    """Features for the migrations, and the area index the history will use.

    ``require`` creates the extension when the server has it and the account may; ``auto`` uses it
    only when it is already installed; ``off`` never converts a database (one already converted keeps
    its PostGIS index).
    """
    installed = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
    if installed is None and mode == "require":
        await _create_extension(conn)
        installed = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
    visible = installed is not None and await conn.fetchval("SELECT to_regtype('geometry') IS NOT NULL")
    if installed is not None and not visible:
        why = "the postgis extension is installed in a schema that is not on the search_path"
        if mode == "require":
            raise StorageError(f"postgis=require: {why}")
        log.warning("event history uses the bbox index", extra={"reason": why})
    converted = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = 'events' AND column_name = 'geom')"
    )
    features = frozenset({POSTGIS}) if visible and mode != "off" else frozenset()
    index: AreaIndex = "postgis" if visible and (converted or features) else "bbox"
    log.info("event history area index", extra={"index": index, "postgis": installed or "absent", "mode": mode})
    return features, index


async def _create_extension(conn: asyncpg.Connection) -> None:
    available = await conn.fetchval("SELECT default_version FROM pg_available_extensions WHERE name = 'postgis'")
    if available is None:
        raise StorageError(
            "postgis=require: the database server has no PostGIS extension to install"
            " (install the PostGIS package for this PostgreSQL version, e.g. postgresql-15-postgis-3)"
        )
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    except asyncpg.InsufficientPrivilegeError as exc:
        raise StorageError(
            "postgis=require: this account may not create the postgis extension;"
            " have a superuser run CREATE EXTENSION postgis in the database"
        ) from exc
    log.info("postgis extension created", extra={"version": available})


def bbox_clause(bbox: BBox, params: list[Any], param: Param, index: AreaIndex) -> str:
    """``base.in_bbox`` in SQL for the area index ``index``: the index narrows, the comparisons decide."""
    min_lon, min_lat, max_lon, max_lat = bbox
    lat_lo, lat_hi = param(params, min_lat), param(params, max_lat)
    west, east = param(params, min_lon), param(params, max_lon)
    located = "NOT (e.lat = 0 AND e.lon = 0)"
    lat_ok = f"e.lat BETWEEN {lat_lo} AND {lat_hi}"

    def box(lo: str, hi: str) -> str:
        if index == "postgis":
            return f"e.geom && ST_MakeEnvelope({lo}, {lat_lo}, {hi}, {lat_hi}, 4326)"
        return f"point(e.lon, e.lat) <@ box(point({lo}, {lat_lo}), point({hi}, {lat_hi}))"

    if min_lon <= max_lon:
        return f"({box(west, east)} AND {lat_ok} AND e.lon BETWEEN {west} AND {east} AND {located})"
    # Crosses the antimeridian: two boxes, one each side.
    return (
        f"(({box(west, '180')} OR {box('-180', east)}) AND {lat_ok}"
        f" AND (e.lon >= {west} OR e.lon <= {east}) AND {located})"
    )
