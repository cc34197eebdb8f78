"""The state database itself: its DDL, the migrations between versions, connections and transactions.

``PRAGMA user_version`` is the schema version; ``MIGRATIONS[n]`` takes a database from version n to
n + 1, so a new database goes through exactly the steps an old one did. ``connect`` and
``transaction`` live here because ``init_db`` needs them too; ``store`` does all other SQL.

``AUXILIARY`` tables are outside the versions: caches no server version depends on (today the stored
answers of idempotent writes). They are created when missing, on old and new databases alike, and an
older server simply ignores them, so adding one needs no migration and keeps downgrades possible.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from deployer.errors import ConfigError

BUSY_TIMEOUT_MS = 5000

# Schema version 1, as the first release created it; kept verbatim so that a new database goes
# through exactly the migrations an old one does.
_SCHEMA_V1 = (
    """CREATE TABLE IF NOT EXISTS environments (
        name        TEXT PRIMARY KEY,
        live_colour TEXT NOT NULL CHECK (live_colour IN ('blue', 'green')),
        revision    INTEGER NOT NULL,
        updated_at  TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS clusters (
        environment     TEXT NOT NULL REFERENCES environments(name),
        colour          TEXT NOT NULL CHECK (colour IN ('blue', 'green')),
        manager_address TEXT NOT NULL,
        docker_port     INTEGER NOT NULL,
        PRIMARY KEY (environment, colour)
    )""",
    """CREATE TABLE IF NOT EXISTS stacks (
        environment TEXT NOT NULL REFERENCES environments(name),
        colour      TEXT NOT NULL CHECK (colour IN ('blue', 'green')),
        name        TEXT NOT NULL,
        deployed_at TEXT NOT NULL,
        deployed_by TEXT NOT NULL,
        services    TEXT NOT NULL,  -- JSON list of {name, image, replicas}, sorted by name
        PRIMARY KEY (environment, colour, name)
    )""",
    """CREATE TABLE IF NOT EXISTS deployments (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        environment TEXT NOT NULL REFERENCES environments(name),
        at          TEXT NOT NULL,
        colour      TEXT NOT NULL,
        stack       TEXT NOT NULL,
        services    TEXT NOT NULL,  -- JSON
        compose     TEXT NOT NULL,  -- JSON, kept whole so that a deployment can be replayed
        result      TEXT NOT NULL,
        actor       TEXT NOT NULL,
        job_url     TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS deployments_by_environment ON deployments (environment, id)",
    """CREATE TABLE IF NOT EXISTS events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        environment TEXT NOT NULL REFERENCES environments(name),
        at          TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('created', 'updated', 'switched', 'deployed')),
        actor       TEXT,
        detail      TEXT NOT NULL  -- JSON object
    )""",
    "CREATE INDEX IF NOT EXISTS events_by_environment ON events (environment, id)",
)

# The event kinds version 2 allows, frozen like the rest of a migration (equal to contract.EVENT_KINDS
# today): a new kind in the contract needs a new migration that rebuilds the CHECK, not a different v2.
_V2_EVENT_KINDS = (
    "created",
    "updated",
    "switched",
    "deployed",
    "locked",
    "unlocked",
    "lock_forced",
    "deploy",
    "rollback",
    "switch",
)
_KIND_LIST = ", ".join(f"'{kind}'" for kind in _V2_EVENT_KINDS)

# Version 2: the lock table, deployment options, and the new event kinds. SQLite cannot change a
# CHECK constraint in place, so the events table is rebuilt (ids and the AUTOINCREMENT counter kept).
_MIGRATION_V2 = (
    f"""CREATE TABLE events_v2 (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        environment TEXT NOT NULL REFERENCES environments(name),
        at          TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ({_KIND_LIST})),
        actor       TEXT,
        detail      TEXT NOT NULL  -- JSON object
    )""",
    "INSERT INTO events_v2 (id, environment, at, kind, actor, detail)"
    " SELECT id, environment, at, kind, actor, detail FROM events ORDER BY id",
    "DELETE FROM sqlite_sequence WHERE name = 'events_v2'",
    "INSERT INTO sqlite_sequence (name, seq) SELECT 'events_v2', seq FROM sqlite_sequence WHERE name = 'events'",
    "DROP TABLE events",
    "ALTER TABLE events_v2 RENAME TO events",
    "CREATE INDEX events_by_environment ON events (environment, id)",
    "ALTER TABLE deployments ADD COLUMN options TEXT",  # JSON object or NULL
    """CREATE TABLE locks (
        environment TEXT PRIMARY KEY REFERENCES environments(name),
        owner       TEXT NOT NULL,
        purpose     TEXT NOT NULL,
        actor       TEXT,
        job_url     TEXT,
        acquired_at REAL NOT NULL,  -- seconds since the epoch, by the server's clock
        expires_at  REAL NOT NULL
    )""",
)

# Version 3: a cluster's other Swarm managers (ClusterSpec.other_managers), a JSON list of addresses in the
# order the deployer tries them; existing clusters have none.
_MIGRATION_V3 = ("ALTER TABLE clusters ADD COLUMN other_managers TEXT NOT NULL DEFAULT '[]'",)

# MIGRATIONS[n] takes a database from user_version n to n + 1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (_SCHEMA_V1, _MIGRATION_V2, _MIGRATION_V3)
SCHEMA_VERSION = len(MIGRATIONS)

# The answers of writes sent with an Idempotency-Key, kept for contract.IDEMPOTENCY_TTL seconds. A row
# is written in the transaction of its write, so a write and its stored answer exist together or not.
AUXILIARY = (
    """CREATE TABLE IF NOT EXISTS idempotency_keys (
        key         TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,  -- sha256 of the method, path, query and body of the first request
        status      INTEGER NOT NULL,
        body        TEXT NOT NULL,  -- the JSON answer as it was sent
        created_at  REAL NOT NULL   -- seconds since the epoch, by the server's clock
    )""",
    "CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys (created_at)",
)


def connect(db_path: str) -> sqlite3.Connection:
    """A connection of its own (one per request), with foreign keys on and a busy timeout."""
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so that writes are BEGIN IMMEDIATE.
    conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection, *, write: bool) -> Iterator[None]:
    """A transaction; IMMEDIATE for writes so that read-check-write sequences are atomic.

    Inside a transaction already (an idempotent write wraps the store's own), it joins that one: the
    outer transaction commits or rolls back everything, the write and its stored answer together.
    """
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def init_db(db_path: str) -> None:
    """Create or migrate the schema (``PRAGMA user_version``) and switch the database to WAL mode.

    Migrations run in one ``BEGIN IMMEDIATE`` transaction, so a crash leaves the old schema intact
    and two servers starting at once migrate only once.
    """
    try:
        conn = connect(db_path)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open the state database {db_path}: {exc}") from exc
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        with transaction(conn, write=True):
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ConfigError(
                    f"the state database {db_path} has schema version {version}, newer than this server's "
                    f"{SCHEMA_VERSION}: run a newer auto-deploy"
                )
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            for statement in AUXILIARY:
                conn.execute(statement)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot initialise the state database {db_path}: {exc}") from exc
    finally:
        conn.close()
