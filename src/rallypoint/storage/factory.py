"""Pick every store's backend from one ``--storage`` URL: the only place that names concrete stores.

* ``sqlite:///abs/path.db``: the event history in a SQLite file at an absolute path.
* ``sqlite://relative/path.db``: relative to the data directory; bare ``sqlite://`` means
  ``<data-dir>/events.db``.
* ``memory://``: the event history in-process, lost on exit.
* ``postgresql://user@host:port/database`` (or ``postgres://``): a PostgreSQL database shared by
  several nodes (asyncpg; each store's schema is created and migrated at start). The stores listed
  in ``POSTGRES_STORES`` live there; the others stay SQLite files in the data directory.

With ``sqlite://`` and ``memory://`` every other store is a SQLite file in the data directory
(``users.db``, ``tokens.db``, ``audit.db``, ``missions.db``, ``packages.db``, ``mailbox.db``,
``designations.db``, ``tasks.db``, ``feeds.db``, ``video.db``, ``exercises.db``,
``federation/federation.db``). Package content is always a content-addressed directory,
``<data-dir>/blobs`` (shared by nodes through a shared file system).
"""

from __future__ import annotations

from pathlib import Path

from rallypoint.errors import ConfigError
from rallypoint.storage.base.audit import AuditRecords
from rallypoint.storage.base.designations import DesignationRecords
from rallypoint.storage.base.events import EventStore
from rallypoint.storage.base.exercises import ExerciseRecords
from rallypoint.storage.base.federation import FederationRecords
from rallypoint.storage.base.feeds import FeedRecords
from rallypoint.storage.base.mailbox import MailboxRecords
from rallypoint.storage.base.missions import MissionRecords
from rallypoint.storage.base.packages import BlobStore, PackageRecords
from rallypoint.storage.base.plans import PlanRecords
from rallypoint.storage.base.tasks import TaskRecords
from rallypoint.storage.base.tokens import TokenRecords
from rallypoint.storage.base.users import UserRecords
from rallypoint.storage.base.video import VideoRecords

DEFAULT_EVENTS_FILE = "events.db"
USERS_FILE = "users.db"
TOKENS_FILE = "tokens.db"
AUDIT_FILE = "audit.db"
MISSIONS_FILE = "missions.db"
PACKAGES_FILE = "packages.db"
MAILBOX_FILE = "mailbox.db"
DESIGNATIONS_FILE = "designations.db"
FEDERATION_FILE = Path("federation") / "federation.db"
TASKS_FILE = "tasks.db"
FEEDS_FILE = "feeds.db"
VIDEO_FILE = "video.db"
EXERCISES_FILE = "exercises.db"
BLOBS_DIR = "blobs"
DEFAULT_NODE_ID = "rallypoint"
# Stores the PostgreSQL backend keeps in the database; the rest stay SQLite files in the data dir.
POSTGRES_STORES = frozenset({"events", "users", "tokens", "audit", "missions", "packages", "mailbox", "federation",
                             "tasks", "designations", "feeds", "video", "exercises"})


def sqlite_path_from_url(url: str, data_dir: Path) -> Path | None:
    """The database path a ``sqlite://`` URL names, or None if ``url`` is not a SQLite URL."""
    if not url.startswith("sqlite://"):
        return None
    rest = url.removeprefix("sqlite://")
    if "?" in rest or "#" in rest:
        raise ConfigError(f"storage URL {url!r}: query strings and fragments are not supported")
    if not rest:
        return data_dir / DEFAULT_EVENTS_FILE
    path = Path(rest)
    return path if path.is_absolute() else data_dir / path


def _scheme(url: str) -> str:
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("postgres", "postgresql"):
        # Rallypoint's own URL parameters (pool_max, retry_s, postgis) are checked before any store opens.
        # Imported here so SQLite deployments never load asyncpg (the package imports it).
        from rallypoint.storage.postgres.options import split_url

        split_url(url)
        return "postgresql"
    if scheme not in ("sqlite", "memory", "postgresql"):
        # Only the scheme is echoed: URLs may carry credentials.
        raise ConfigError(
            f"storage URL scheme {scheme or url!r} is not supported;"
            " use sqlite:///path/events.db, postgresql://user@host/database or memory://"
        )
    if scheme == "sqlite" and sqlite_path_from_url(url, Path()) is None:
        raise ConfigError(f"storage URL {url!r}: expected sqlite:///absolute/path or sqlite://relative/path")
    return scheme


class Stores:
    """Builds the stores one ``--storage`` URL names; each call returns a new, not yet opened store.

    Nothing touches the disk or the network until a store is first used.
    """

    def __init__(self, url: str, data_dir: Path, *, node_id: str = DEFAULT_NODE_ID) -> None:
        self.url = url
        self.data_dir = data_dir
        self.node_id = node_id
        self.scheme = _scheme(url)

    def on_postgres(self, store: str) -> bool:
        """True if ``store`` (a name of ``POSTGRES_STORES``) lives in the PostgreSQL database."""
        return self.scheme == "postgresql" and store in POSTGRES_STORES

    def events(self) -> EventStore:
        """The event history."""
        match self.scheme:
            case "sqlite":
                # Imported here so memory-only deployments never load sqlite3.
                from rallypoint.storage.sqlite.events import SqliteEventStore

                path = sqlite_path_from_url(self.url, self.data_dir)
                assert path is not None  # checked by _scheme
                return SqliteEventStore(path)
            case "memory":
                from rallypoint.storage.memory import MemoryEventStore

                return MemoryEventStore()
            case _:
                # Imported here so SQLite deployments never load asyncpg.
                from rallypoint.storage.postgres.events import PostgresEventStore

                return PostgresEventStore(self.url)

    def users(self) -> UserRecords:
        """Accounts and their groups."""
        if self.on_postgres("users"):
            from rallypoint.storage.postgres.users import PostgresUserRecords

            return PostgresUserRecords(self.url)
        from rallypoint.storage.sqlite.users import SqliteUserRecords

        return SqliteUserRecords(self.data_dir / USERS_FILE)

    def tokens(self) -> TokenRecords:
        """Native API tokens."""
        if self.on_postgres("tokens"):
            from rallypoint.storage.postgres.tokens import PostgresTokenRecords

            return PostgresTokenRecords(self.url)
        from rallypoint.storage.sqlite.tokens import SqliteTokenRecords

        return SqliteTokenRecords(self.data_dir / TOKENS_FILE)

    def audit(self) -> AuditRecords:
        """The audit chain."""
        if self.on_postgres("audit"):
            from rallypoint.storage.postgres.audit import PostgresAuditRecords

            return PostgresAuditRecords(self.url)
        from rallypoint.storage.sqlite.audit import SqliteAuditRecords

        return SqliteAuditRecords(self.data_dir / AUDIT_FILE)

    def missions(self) -> MissionRecords:
        """Data Sync missions."""
        if self.on_postgres("missions"):
            from rallypoint.storage.postgres.missions import PostgresMissionRecords

            return PostgresMissionRecords(self.url)
        from rallypoint.storage.sqlite.missions import SqliteMissionStore

        return SqliteMissionStore(self.data_dir / MISSIONS_FILE)

    def plans(self) -> PlanRecords:
        """Operation plan versions, beside the missions (same database and schema family)."""
        if self.on_postgres("missions"):
            from rallypoint.storage.postgres.plans import PostgresPlanRecords

            return PostgresPlanRecords(self.url)
        from rallypoint.storage.sqlite.plans import SqlitePlanStore

        return SqlitePlanStore(self.data_dir / MISSIONS_FILE)

    def designations(self) -> DesignationRecords:
        """Designations (points and areas of interest, two-person approval)."""
        if self.on_postgres("designations"):
            from rallypoint.storage.postgres.designations import PostgresDesignationRecords

            return PostgresDesignationRecords(self.url)
        from rallypoint.storage.sqlite.designations import SqliteDesignationStore

        return SqliteDesignationStore(self.data_dir / DESIGNATIONS_FILE)

    def packages(self) -> PackageRecords:
        """Data package descriptions."""
        if self.on_postgres("packages"):
            from rallypoint.storage.postgres.packages import PostgresPackageRecords

            return PostgresPackageRecords(self.url)
        from rallypoint.storage.sqlite.packages import SqlitePackageStore

        return SqlitePackageStore(self.data_dir / PACKAGES_FILE)

    def blobs(self) -> BlobStore:
        """Data package content (a content-addressed directory, whatever the URL)."""
        from rallypoint.storage.files import FileBlobStore

        return FileBlobStore(self.data_dir / BLOBS_DIR)

    def mailbox(self) -> MailboxRecords:
        """Store-and-forward mail (always per node: a shared database keeps it under the node's id)."""
        if self.on_postgres("mailbox"):
            from rallypoint.storage.postgres.mailbox import PostgresMailboxRecords

            return PostgresMailboxRecords(self.url, node=self.node_id)
        from rallypoint.storage.sqlite.mailbox import SqliteMailboxStore

        return SqliteMailboxStore(self.data_dir / MAILBOX_FILE)

    def federation(self) -> FederationRecords:
        """Federation queues and de-duplication marks (always per node, like the mailbox)."""
        if self.on_postgres("federation"):
            from rallypoint.storage.postgres.federation import PostgresFederationRecords

            return PostgresFederationRecords(self.url, node=self.node_id)
        from rallypoint.storage.sqlite.federation import SqliteFederationStore

        return SqliteFederationStore(self.data_dir / FEDERATION_FILE)

    def tasks(self) -> TaskRecords:
        """Tasks handed to units and teams (shared by every node in a PostgreSQL database)."""
        if self.on_postgres("tasks"):
            from rallypoint.storage.postgres.tasks import PostgresTaskRecords

            return PostgresTaskRecords(self.url)
        from rallypoint.storage.sqlite.tasks import SqliteTaskRecords

        return SqliteTaskRecords(self.data_dir / TASKS_FILE)

    def feeds(self) -> FeedRecords:
        """Track merges operators accepted (shared by every node in a PostgreSQL database)."""
        if self.on_postgres("feeds"):
            from rallypoint.storage.postgres.feeds import PostgresFeedRecords

            return PostgresFeedRecords(self.url)
        from rallypoint.storage.sqlite.feeds import SqliteFeedRecords

        return SqliteFeedRecords(self.data_dir / FEEDS_FILE)

    def video(self) -> VideoRecords:
        """Registered video connections (shared by every node in a PostgreSQL database)."""
        if self.on_postgres("video"):
            from rallypoint.storage.postgres.video import PostgresVideoRecords

            return PostgresVideoRecords(self.url)
        from rallypoint.storage.sqlite.video import SqliteVideoRecords

        return SqliteVideoRecords(self.data_dir / VIDEO_FILE)

    def exercises(self) -> ExerciseRecords:
        """Registered exercises and their control commands (shared by every node in a PostgreSQL database)."""
        if self.on_postgres("exercises"):
            from rallypoint.storage.postgres.exercises import PostgresExerciseRecords

            return PostgresExerciseRecords(self.url)
        from rallypoint.storage.sqlite.exercises import SqliteExerciseRecords

        return SqliteExerciseRecords(self.data_dir / EXERCISES_FILE)


def open_stores(url: str, data_dir: Path, *, node_id: str = DEFAULT_NODE_ID) -> Stores:
    """The stores ``url`` names for node ``node_id`` whose data directory is ``data_dir`` (``ConfigError`` if bad).

    ``node_id`` keys the stores that stay per node (mailbox, federation) in a shared database.
    """
    return Stores(url, data_dir, node_id=node_id)


def open_event_store(url: str, data_dir: Path) -> EventStore:
    """Build (without touching the disk yet) the event store ``url`` names."""
    return open_stores(url, data_dir).events()
