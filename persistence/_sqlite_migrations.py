"""The SQLite store's migrations: the tables of each schema version, and how a file gets there.

Migrations are numbered and applied in order in one ``BEGIN IMMEDIATE`` transaction; the
version reached is the file's ``PRAGMA user_version``, and a file already at the current
version is only read when it is opened.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

from .errors import StoreError

# -- schema ---------------------------------------------------------------------------------------

_V1: Final = (
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        workflow_name TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        body BLOB NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX runs_status ON runs (status)",
    "CREATE INDEX runs_workflow_name ON runs (workflow_name)",
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        correlation_id TEXT,
        data BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        spec_version INTEGER NOT NULL
    )""",
    "CREATE UNIQUE INDEX events_run_event ON events (run_id, event_id)",
    """CREATE TABLE steps (
        run_id TEXT NOT NULL,
        step_id TEXT NOT NULL,
        generation INTEGER NOT NULL,
        position INTEGER NOT NULL,
        status TEXT NOT NULL,
        body BLOB NOT NULL,
        PRIMARY KEY (run_id, step_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE waits (
        run_id TEXT NOT NULL,
        wait_id TEXT NOT NULL,
        status TEXT NOT NULL,
        resume_at INTEGER NOT NULL,
        generation INTEGER NOT NULL,
        position INTEGER NOT NULL,
        body BLOB NOT NULL,
        PRIMARY KEY (run_id, wait_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX waits_due ON waits (status, resume_at)",
    """CREATE TABLE hooks (
        run_id TEXT NOT NULL,
        hook_id TEXT NOT NULL,
        token TEXT NOT NULL,
        status TEXT NOT NULL,
        generation INTEGER NOT NULL,
        position INTEGER NOT NULL,
        body BLOB NOT NULL,
        PRIMARY KEY (run_id, hook_id)
    ) WITHOUT ROWID""",
    "CREATE UNIQUE INDEX hooks_live_token ON hooks (token) WHERE status = 'active'",
    """CREATE TABLE stream_chunks (
        run_id TEXT NOT NULL,
        stream TEXT NOT NULL,
        idx INTEGER NOT NULL,
        data BLOB NOT NULL,
        eof INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, stream, idx)
    ) WITHOUT ROWID""",
    """CREATE TABLE annotations (
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        scope TEXT NOT NULL,
        scope_id TEXT,
        actor_id TEXT,
        actor_kind TEXT,
        attempt INTEGER NOT NULL,
        idempotency_key TEXT,
        created_at INTEGER NOT NULL,
        body BLOB NOT NULL,
        UNIQUE (run_id, key, idempotency_key)
    )""",
    "CREATE INDEX annotations_run_created ON annotations (run_id, created_at)",
    "CREATE TABLE cursors (name TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID",
)

_V2: Final = (
    """CREATE TABLE leases (
        run_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX leases_owner ON leases (owner)",
)

_V3: Final = (
    # A lease's epoch moves each time it passes to another owner: writes fenced with an
    # older epoch come from a stale owner and are refused.
    "ALTER TABLE leases ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0",
    "CREATE INDEX hooks_token ON hooks (token)",
    """CREATE TABLE workers (
        worker_id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        workflows TEXT NOT NULL,
        seen_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID""",
)

_NOW_MICROS: Final = "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)"

_V4: Final = (
    # The claim sweep reads leases by expiry (see _sqlite_leases): the leases of ended runs
    # take the ENDED mark (0), runs never claimed get an UNCLAIMED row (owner '', 1), and
    # lapsed leases of active runs the LAPSED mark (2), so each is read in run id order.
    "CREATE INDEX leases_expiry ON leases (expires_at)",
    f"""UPDATE leases SET expires_at = CASE WHEN run_id IN (SELECT run_id FROM runs
        WHERE status IN ('pending', 'running')) THEN 2 ELSE 0 END
        WHERE expires_at < {_NOW_MICROS}""",
    """INSERT INTO leases (run_id, owner, expires_at, epoch)
        SELECT run_id, '', 1, 0 FROM runs WHERE status IN ('pending', 'running')
        AND run_id NOT IN (SELECT run_id FROM leases)""",
)

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, _V1),
    (2, _V2),
    (3, _V3),
    (4, _V4),
)
"""Numbered migrations, each a list of statements, applied in order."""

SCHEMA_VERSION: Final = 4
"""The version :data:`MIGRATIONS` leads to."""


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the file's schema to :data:`SCHEMA_VERSION`; return the version reached.

    A file already there is only read. Migrations run in one ``BEGIN IMMEDIATE``
    transaction, so two processes opening a new file at once migrate it once.
    """
    version = user_version(conn)
    if version == SCHEMA_VERSION:
        return version
    _refuse_newer(version, path)
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = user_version(conn)
        _refuse_newer(version, path)
        for target, statements in MIGRATIONS:
            if target <= version:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {int(target)}")
            version = target
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return version


def user_version(conn: sqlite3.Connection) -> int:
    """The file's ``PRAGMA user_version``: the last migration applied (0 for a new file)."""
    value = conn.execute("PRAGMA user_version").fetchone()[0]
    assert isinstance(value, int)
    return value


def _refuse_newer(version: int, path: Path) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"SQLite database {path} has schema version {version}, newer than the "
            f"{SCHEMA_VERSION} this actorflow knows; upgrade actorflow to open it"
        )
