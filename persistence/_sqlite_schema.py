"""The SQLite store's file: URL options, connection settings, schema, migrations, write SQL.

Migrations are numbered and applied in order in one ``BEGIN IMMEDIATE`` transaction; the
version reached is the file's ``PRAGMA user_version``, and a file already at the current
version is only read when it is opened. The SQL the write path runs is here too, including
the one query that loads everything a batch's planning needs (:func:`load_rows`).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final, TypeVar
from urllib.parse import quote

from .errors import InvalidStoreURLError, StoreConfigurationError, StoreError
from .urls import sqlite_path

T = TypeVar("T")

SYNCHRONOUS_MODES: Final = ("full", "normal", "off")
DEFAULT_BUSY_TIMEOUT_MS: Final = 5000
WRITERS: Final = ("thread", "loop")
"""Where the store's write transactions run: its writer thread, or the event loop's thread."""

# -- options ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SqliteOptions:
    """Where the database file is and how connections to it are set up."""

    path: Path
    synchronous: str = "full"
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
    writer: str = "thread"


def parse_url(url: str) -> SqliteOptions:
    """The options of a ``sqlite:///`` URL; anything unknown or malformed is refused."""
    path, options = sqlite_path(url)
    if str(path) == ":memory:" or str(path).startswith("file:"):
        raise InvalidStoreURLError(
            f"SQLite URL {url!r} must name a file; use memory:// for a store in memory"
        )
    synchronous = "full"
    busy_timeout = DEFAULT_BUSY_TIMEOUT_MS
    writer = "thread"
    for name, value in options.items():
        if name == "synchronous":
            synchronous = value.lower()
            if synchronous not in SYNCHRONOUS_MODES:
                raise InvalidStoreURLError(
                    f"bad synchronous={value!r} in SQLite URL {url!r}: use one of "
                    + ", ".join(SYNCHRONOUS_MODES)
                )
        elif name == "busy_timeout":
            if not value.isdigit():
                raise InvalidStoreURLError(
                    f"bad busy_timeout={value!r} in SQLite URL {url!r}: use a whole number "
                    "of milliseconds, e.g. busy_timeout=5000"
                )
            busy_timeout = int(value)
        elif name == "writer":
            writer = value.lower()
            if writer not in WRITERS:
                raise InvalidStoreURLError(
                    f"bad writer={value!r} in SQLite URL {url!r}: use one of " + ", ".join(WRITERS)
                )
        else:
            raise InvalidStoreURLError(
                f"unknown option {name!r} in SQLite URL {url!r}; the options are "
                "synchronous (full, normal, off), busy_timeout (milliseconds) and "
                "writer (thread, loop)"
            )
    return SqliteOptions(path, synchronous, busy_timeout, writer)


# -- connections ----------------------------------------------------------------------------------


def connect(options: SqliteOptions, *, writer: bool, create: bool = True) -> sqlite3.Connection:
    """A connection with the store's settings, in autocommit mode (explicit transactions).

    The writer also creates the parent directory and switches the file to WAL. With
    ``create=False`` nothing is created: a missing file, or a writer's file without
    actorflow's schema, is a ``StoreConfigurationError``.
    """
    if create:
        if writer:
            options.path.parent.mkdir(parents=True, exist_ok=True)
        target: str | Path = options.path
    else:
        if not options.path.exists():
            raise StoreConfigurationError(
                f"no actorflow store at {_shown(options.path)}: the file does not exist, and "
                "opening it read-only creates nothing; check the store URL (or "
                "$ACTORFLOW_STORE), or let a worker create the store first"
            )
        target = f"file:{quote(str(options.path))}?mode=rw"  # never creates the file
    conn = sqlite3.connect(
        target,
        isolation_level=None,
        cached_statements=512,
        check_same_thread=True,
        uri=not create,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {options.busy_timeout_ms}")
        if writer and not create and _user_version(conn) == 0:
            raise StoreConfigurationError(
                f"no actorflow store at {_shown(options.path)}: the file has no actorflow "
                "schema, and opening it read-only creates none; check the store URL (or "
                "$ACTORFLOW_STORE)"
            )
        if writer:
            mode = _switch_to_wal(conn, options.busy_timeout_ms / 1000)
            if str(mode).lower() != "wal":
                raise StoreError(f"SQLite database {options.path} cannot use WAL (got {mode})")
        conn.execute(f"PRAGMA synchronous = {options.synchronous.upper()}")
        if not writer:
            conn.execute("PRAGMA query_only = 1")
    except BaseException:
        conn.close()
        raise
    return conn


def _shown(path: Path) -> str:
    """``path`` for a message: a relative path also says where it is relative to."""
    if path.is_absolute():
        return str(path)
    try:
        return f"{path} (in {Path.cwd()})"
    except OSError:
        return str(path)


def _switch_to_wal(conn: sqlite3.Connection, patience: float) -> object:
    """``PRAGMA journal_mode = WAL``, retried while another connection holds the file.

    Changing the journal mode can report "database is locked" at once, without SQLite's busy
    handler, while another connection opens or migrates the same new file.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


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
    version = _user_version(conn)
    if version == SCHEMA_VERSION:
        return version
    _refuse_newer(version, path)
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _user_version(conn)
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


def _user_version(conn: sqlite3.Connection) -> int:
    value = conn.execute("PRAGMA user_version").fetchone()[0]
    assert isinstance(value, int)
    return value


def _refuse_newer(version: int, path: Path) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"SQLite database {path} has schema version {version}, newer than the "
            f"{SCHEMA_VERSION} this actorflow knows; upgrade actorflow to open it"
        )


# -- SQL of the write path ------------------------------------------------------------------------

INSERT_EVENT: Final = (
    "INSERT INTO events (event_id, run_id, event_type, correlation_id, data, created_at, "
    "spec_version) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
INSERT_ANNOTATION: Final = (
    "INSERT INTO annotations (id, run_id, key, scope, scope_id, actor_id, actor_kind, attempt, "
    "idempotency_key, created_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

# The entity tables by kind (the first column of :func:`load_sql`'s rows): the table, its
# id column, and its insert. An entity whose status did not change is updated by ``body``
# alone, so the indexes on ``status`` are left alone.
RUN_ROW: Final = 0
STEP_ROW: Final = 1
WAIT_ROW: Final = 2
HOOK_ROW: Final = 3
TABLES: Final = ("runs", "steps", "waits", "hooks")
ID_COLUMNS: Final = ("run_id", "step_id", "wait_id", "hook_id")
INSERTS: Final = (
    "INSERT INTO runs (run_id, workflow_name, status, created_at, body) VALUES (?, ?, ?, ?, ?)",
    "INSERT INTO steps (run_id, step_id, generation, position, status, body) "
    "VALUES (?, ?, ?, ?, ?, ?)",
    "INSERT INTO waits (run_id, wait_id, status, resume_at, generation, position, body) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)",
    "INSERT INTO hooks (run_id, hook_id, token, status, generation, position, body) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)",
)
_WHERE: Final = tuple(
    "run_id = ?" if kind == RUN_ROW else f"run_id = ? AND {ID_COLUMNS[kind]} = ?"
    for kind in range(4)
)
MOVES: Final = tuple(
    f"UPDATE {TABLES[kind]} SET status = ?, body = ? WHERE {_WHERE[kind]}" for kind in range(4)
)
"""Per kind: ``(status, body, run_id[, id])``."""
EDITS: Final = tuple(
    f"UPDATE {TABLES[kind]} SET body = ? WHERE {_WHERE[kind]}" for kind in range(4)
)
"""Per kind: ``(body, run_id[, id])``."""


def marks(count: int) -> str:
    """``count`` SQL placeholders, comma-separated."""
    return ", ".join(["?"] * count)


@lru_cache(maxsize=512)
def load_sql(runs: int, steps: int, waits: int, hooks: int, released: int) -> str:
    """One query loading what a batch needs: its runs, its entities, released runs' holds.

    Parameters, in order: ``runs`` run ids; ``steps``, ``waits``, ``hooks`` (run id, id)
    pairs, flattened; ``released`` run ids, twice (their waits, their hooks). Rows are
    ``(kind, run_id, body)``, ``kind`` one of the ``*_ROW`` constants.
    """
    parts = []
    if runs:
        where = "run_id = ?" if runs == 1 else f"run_id IN ({marks(runs)})"
        parts.append(f"SELECT {RUN_ROW}, run_id, body FROM runs WHERE {where}")
    for kind, count in ((STEP_ROW, steps), (WAIT_ROW, waits), (HOOK_ROW, hooks)):
        table, key = TABLES[kind], ID_COLUMNS[kind]
        if count == 1:
            parts.append(f"SELECT {kind}, run_id, body FROM {table} WHERE {_WHERE[kind]}")
        elif count:  # a join, so each pair is one primary-key lookup
            values = ", ".join(["(?, ?)"] * count)
            parts.append(
                f"SELECT {kind}, t.run_id, t.body FROM (VALUES {values}) AS v "
                f"CROSS JOIN {table} AS t ON t.run_id = v.column1 AND t.{key} = v.column2"
            )
    if released:
        for kind in (WAIT_ROW, HOOK_ROW):
            where = f"run_id IN ({marks(released)})"
            parts.append(f"SELECT {kind}, run_id, body FROM {TABLES[kind]} WHERE {where}")
    return " UNION ALL ".join(parts)


@lru_cache(maxsize=64)
def owners_sql(tokens: int) -> str:
    """The live owners of ``tokens`` hook tokens: rows ``(token, run_id, hook_id, position)``."""
    return (
        "SELECT token, run_id, hook_id, position FROM hooks "
        f"WHERE status = 'active' AND token IN ({marks(tokens)})"
    )


@lru_cache(maxsize=64)
def keys_sql(keys: int) -> str:
    """Which of ``keys`` (run_id, key, idempotency_key) triples are already stored."""
    values = ", ".join(["(?, ?, ?)"] * keys)
    return (
        f"SELECT a.run_id, a.key, a.idempotency_key FROM (VALUES {values}) AS v "
        "CROSS JOIN annotations AS a "
        "ON a.run_id = v.column1 AND a.key = v.column2 AND a.idempotency_key = v.column3"
    )


_MAX_PARAMS: Final = 30_000
_CHUNK: Final = 5_000


def _chunks(items: list[T], size: int = _CHUNK) -> list[list[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def load_rows(
    conn: sqlite3.Connection,
    runs: list[str],
    pairs: tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]],
    released: list[str],
) -> list[tuple[int, str, bytes]]:
    """The rows of :func:`load_sql` for a batch; several queries if it is huge.

    ``pairs`` are the (run id, id) pairs of the steps, waits and hooks the batch names.
    """
    steps, waits, hooks = pairs
    if not runs:
        return []
    if len(runs) + 2 * (len(steps) + len(waits) + len(hooks) + len(released)) <= _MAX_PARAMS:
        params: list[str] = list(runs)
        for group in pairs:
            for pair in group:
                params += pair
        params += released
        params += released
        query = load_sql(len(runs), len(steps), len(waits), len(hooks), len(released))
        return conn.execute(query, params).fetchall()
    rows: list[tuple[int, str, bytes]] = []
    for part in _chunks(runs):
        rows += conn.execute(load_sql(len(part), 0, 0, 0, 0), part).fetchall()
    for kind, group in enumerate(pairs, start=1):
        for chunk in _chunks(group):
            counts = [len(chunk) if k == kind else 0 for k in (1, 2, 3)]
            flat = [x for pair in chunk for x in pair]
            rows += conn.execute(load_sql(0, *counts, 0), flat).fetchall()
    for part in _chunks(released):
        rows += conn.execute(load_sql(0, 0, 0, 0, len(part)), part + part).fetchall()
    return rows


@lru_cache(maxsize=64)
def whole_sql(runs: int) -> str:
    """Every step, wait and hook of ``runs`` runs: rows ``(kind, run_id, body)``."""
    where = "run_id = ?" if runs == 1 else f"run_id IN ({marks(runs)})"
    return " UNION ALL ".join(
        f"SELECT {kind}, run_id, body FROM {TABLES[kind]} WHERE {where}"
        for kind in (STEP_ROW, WAIT_ROW, HOOK_ROW)
    )


def whole_rows(conn: sqlite3.Connection, runs: list[str]) -> list[tuple[int, str, bytes]]:
    """The rows of :func:`whole_sql` for these runs (the parameters are the ids thrice)."""
    rows: list[tuple[int, str, bytes]] = []
    for part in _chunks(runs):
        rows += conn.execute(whole_sql(len(part)), part * 3).fetchall()
    return rows


def run_rows(conn: sqlite3.Connection, runs: list[str]) -> list[tuple[int, str, bytes]]:
    """The rows of these runs alone: ``(RUN_ROW, run_id, body)``."""
    rows: list[tuple[int, str, bytes]] = []
    for part in _chunks(runs):
        rows += conn.execute(load_sql(len(part), 0, 0, 0, 0), part).fetchall()
    return rows


DATA_VERSION: Final = "PRAGMA data_version"
"""Changes when another connection commits to the file (not for this one's commits)."""


def token_owners(conn: sqlite3.Connection, tokens: list[str]) -> list[tuple[str, str, str, int]]:
    """``(token, run_id, hook_id, position)`` of the live hooks holding any of ``tokens``."""
    rows: list[tuple[str, str, str, int]] = []
    for part in _chunks(tokens):
        rows += conn.execute(owners_sql(len(part)), part).fetchall()
    return rows


def stored_keys(
    conn: sqlite3.Connection, keys: list[tuple[str, str, str]]
) -> set[tuple[str, str, str]]:
    """Which of the ``(run_id, key, idempotency_key)`` triples are already stored."""
    found: set[tuple[str, str, str]] = set()
    for part in _chunks(keys):
        flat = [x for triple in part for x in triple]
        found.update(conn.execute(keys_sql(len(part)), flat).fetchall())
    return found


RUN_EXISTS: Final = "SELECT 1 FROM runs WHERE run_id = ?"
LAST_CHUNK: Final = (
    "SELECT idx, eof FROM stream_chunks WHERE run_id = ? AND stream = ? ORDER BY idx DESC LIMIT 1"
)
INSERT_CHUNK: Final = (
    "INSERT INTO stream_chunks (run_id, stream, idx, data, eof) VALUES (?, ?, ?, ?, ?)"
)
UPSERT_CURSOR: Final = (
    "INSERT INTO cursors (name, position) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET position = excluded.position"
)
