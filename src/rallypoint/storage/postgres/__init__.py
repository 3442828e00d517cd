"""PostgreSQL backends (asyncpg), for several nodes sharing one database."""

from rallypoint.storage.postgres.events import PostgresEventStore

__all__ = ["PostgresEventStore"]
