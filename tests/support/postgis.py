"""A throwaway PostgreSQL database with PostGIS, for the history's PostGIS area index.

The extension lives in a schema of its own (``postgis``, on the database's ``search_path``), as
many sites install it: :meth:`PostgresDatabase.fresh` empties ``public`` between tests and leaves
the extension in place, so it is created once per run, not once per test. Skips, saying why, when
the server has no PostGIS to install.
"""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest

from tests.support.postgres import PostgresDatabase, _run


async def _create(admin_dsn: str, database: PostgresDatabase) -> str | None:
    """Create ``database`` with PostGIS; returns why not when it cannot."""
    admin = await asyncpg.connect(admin_dsn)
    try:
        available = await admin.fetchval("SELECT default_version FROM pg_available_extensions WHERE name = 'postgis'")
        if available is None:
            return "the PostgreSQL server has no PostGIS extension (package postgresql-<version>-postgis-3)"
        await admin.execute(f'CREATE DATABASE "{database.name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(database.dsn)
    try:
        await conn.execute("CREATE SCHEMA postgis; CREATE EXTENSION postgis SCHEMA postgis")
        await conn.execute(f'ALTER DATABASE "{database.name}" SET search_path = "$user", public, postgis')
    except asyncpg.PostgresError as exc:
        return f"CREATE EXTENSION postgis failed: {exc}"
    finally:
        await conn.close()
    return None


async def _drop(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgis_database(postgres_database: PostgresDatabase) -> Iterator[PostgresDatabase]:
    """A database of this run with PostGIS installed (schema ``postgis``), dropped at the end."""
    database = PostgresDatabase(postgres_database.admin_dsn, f"{postgres_database.name}_gis")
    try:
        reason = _run(_create(postgres_database.admin_dsn, database))
        if reason is not None:
            pytest.skip(f"PostGIS tests need the extension: {reason}")
        yield database
    finally:
        _run(_drop(postgres_database.admin_dsn, database.name))


def with_options(dsn: str, **options: str) -> str:
    """``dsn`` with Rallypoint's storage URL options added (``postgis="off"``, ``pool_max="3"``...)."""
    query = "&".join(f"{name}={value}" for name, value in options.items())
    return f"{dsn}{'&' if '?' in dsn else '?'}{query}"
