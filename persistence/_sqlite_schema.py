"""The SQLite store's SQL: URL options, connections, schema and migrations, and queries.

Kept apart from :mod:`persistence.sqlite` (the store, its threads and its write path) so the
SQL can be read in one place. Migrations are numbered and applied in order in one
transaction; the version reached is the file's ``PRAGMA user_version``, and a file already at
the current version is only read when it is opened. The read queries here run on the store's
reader thread and decode rows with :mod:`persistence.rows`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, TypeVar

from .errors import (
    CorruptedDataError,
    HookNotFoundError,
    InvalidStoreURLError,
    RunNotFoundError,
    StepNotFoundError,
    StoreError,
)
from .events import Event
from .records import (
    AnnotationFilter,
    AnnotationRecord,
    CommittedEvent,
    Page,
    StreamChunk,
    StreamInfo,
)
from .rows import E, annotation_from_body, entity_from_body, event_from_row, from_micros, micros
from .state import Hook, Run, RunStatus, Step, Wait
from .urls import sqlite_path
from .views import statuses

T = TypeVar("T")

SYNCHRONOUS_MODES: Final = ("full", "normal", "off")
DEFAULT_BUSY_TIMEOUT_MS: Final = 5000

# -- options ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SqliteOptions:
    """Where the database file is and how connections to it are set up."""

    path: Path
    synchronous: str = "full"
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS


def parse_url(url: str) -> SqliteOptions:
    """The options of a ``sqlite:///`` URL; anything unknown or malformed is refused."""
    path, options = sqlite_path(url)
    if str(path) == ":memory:" or str(path).startswith("file:"):
        raise InvalidStoreURLError(
            f"SQLite URL {url!r} must name a file; use memory:// for a store in memory"
        )
    synchronous = "full"
    busy_timeout = DEFAULT_BUSY_TIMEOUT_MS
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
        else:
            raise InvalidStoreURLError(
                f"unknown option {name!r} in SQLite URL {url!r}; the options are "
                "synchronous (full, normal, off) and busy_timeout (milliseconds)"
            )
    return SqliteOptions(path, synchronous, busy_timeout)


# -- connections ----------------------------------------------------------------------------------


def connect(options: SqliteOptions, *, writer: bool) -> sqlite3.Connection:
    """A connection with the store's settings, in autocommit mode (explicit transactions).

    The writer also creates the parent directory and switches the file to WAL.
    """
    if writer:
        options.path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        options.path, isolation_level=None, cached_statements=512, check_same_thread=True
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {options.busy_timeout_ms}")
        if writer:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"SQLite database {options.path} cannot use WAL (got {mode})")
        conn.execute(f"PRAGMA synchronous = {options.synchronous.upper()}")
        if not writer:
            conn.execute("PRAGMA query_only = 1")
    except BaseException:
        conn.close()
        raise
    return conn


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

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = ((1, _V1),)
"""Numbered migrations, each a list of statements, applied in order."""

SCHEMA_VERSION: Final = 1
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
UPSERT_RUN: Final = (
    "INSERT INTO runs (run_id, workflow_name, status, created_at, body) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, body = excluded.body"
)
UPSERT_STEP: Final = (
    "INSERT INTO steps (run_id, step_id, generation, position, status, body) "
    "VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, step_id) DO UPDATE SET status = excluded.status, body = excluded.body"
)
UPSERT_WAIT: Final = (
    "INSERT INTO waits (run_id, wait_id, status, resume_at, generation, position, body) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, wait_id) DO UPDATE SET status = excluded.status, "
    "resume_at = excluded.resume_at, body = excluded.body"
)
UPSERT_HOOK: Final = (
    "INSERT INTO hooks (run_id, hook_id, token, status, generation, position, body) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, hook_id) DO UPDATE SET status = excluded.status, "
    "token = excluded.token, body = excluded.body"
)
INSERT_ANNOTATION: Final = (
    "INSERT INTO annotations (id, run_id, key, scope, scope_id, actor_id, actor_kind, attempt, "
    "idempotency_key, created_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

# Kinds of the rows :func:`load_sql` returns, in its first column.
RUN_ROW: Final = 0
STEP_ROW: Final = 1
WAIT_ROW: Final = 2
HOOK_ROW: Final = 3


def _pairs(count: int) -> str:
    return ", ".join(["(?, ?)"] * count)


def _marks(count: int) -> str:
    return ", ".join(["?"] * count)


@lru_cache(maxsize=256)
def load_sql(runs: int, pairs: int, released: int) -> str:
    """One query loading what a batch needs: its runs, its entities, released runs' holds.

    Parameters, in order: ``pairs`` (run id, correlation id) pairs (flattened); ``runs``
    run ids; ``released`` run ids, given twice (waits, hooks). Rows are
    ``(kind, run_id, body)`` with ``kind`` one of the ``*_ROW`` constants.
    """
    head = ""
    parts = []
    if runs == 1:
        parts.append(f"SELECT {RUN_ROW}, run_id, body FROM runs WHERE run_id = ?")
    elif runs:
        parts.append(f"SELECT {RUN_ROW}, run_id, body FROM runs WHERE run_id IN ({_marks(runs)})")
    if pairs:
        head = f"WITH wanted (run_id, id) AS (VALUES {_pairs(pairs)}) "
        for kind, table, key in (
            (STEP_ROW, "steps", "step_id"),
            (WAIT_ROW, "waits", "wait_id"),
            (HOOK_ROW, "hooks", "hook_id"),
        ):
            parts.append(
                f"SELECT {kind}, t.run_id, t.body FROM wanted CROSS JOIN {table} AS t "
                f"ON t.run_id = wanted.run_id AND t.{key} = wanted.id"
            )
    if released:
        marks = _marks(released)
        parts.append(f"SELECT {WAIT_ROW}, run_id, body FROM waits WHERE run_id IN ({marks})")
        parts.append(f"SELECT {HOOK_ROW}, run_id, body FROM hooks WHERE run_id IN ({marks})")
    return head + " UNION ALL ".join(parts)


@lru_cache(maxsize=64)
def owners_sql(tokens: int) -> str:
    """The live owners of ``tokens`` hook tokens: rows ``(token, run_id, hook_id, position)``."""
    return (
        "SELECT token, run_id, hook_id, position FROM hooks "
        f"WHERE status = 'active' AND token IN ({_marks(tokens)})"
    )


@lru_cache(maxsize=64)
def keys_sql(keys: int) -> str:
    """Which of ``keys`` (run_id, key, idempotency_key) triples are already stored."""
    values = ", ".join(["(?, ?, ?)"] * keys)
    return (
        f"WITH wanted (run_id, key, ikey) AS (VALUES {values}) "
        "SELECT a.run_id, a.key, a.idempotency_key FROM wanted CROSS JOIN annotations AS a "
        "ON a.run_id = wanted.run_id AND a.key = wanted.key AND a.idempotency_key = wanted.ikey"
    )


_MAX_PARAMS: Final = 30_000
_CHUNK: Final = 5_000


def _chunks(items: list[T], size: int = _CHUNK) -> list[list[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def load_rows(
    conn: sqlite3.Connection,
    runs: list[str],
    pairs: list[tuple[str, str]],
    released: list[str],
) -> list[tuple[int, str, bytes]]:
    """The rows of :func:`load_sql` for a batch; split into several queries if it is huge."""
    if len(runs) + 2 * len(pairs) + 2 * len(released) <= _MAX_PARAMS:
        params = [x for pair in pairs for x in pair]
        params += runs
        params += released
        params += released
        return conn.execute(load_sql(len(runs), len(pairs), len(released)), params).fetchall()
    rows: list[tuple[int, str, bytes]] = []
    for part in _chunks(runs):
        if part:
            rows += conn.execute(load_sql(len(part), 0, 0), part).fetchall()
    for chunk in _chunks(pairs):
        if chunk:
            flat = [x for pair in chunk for x in pair]
            rows += conn.execute(load_sql(0, len(chunk), 0), flat).fetchall()
    for part in _chunks(released):
        if part:
            rows += conn.execute(load_sql(0, 0, len(part)), part + part).fetchall()
    return rows


def token_owners(conn: sqlite3.Connection, tokens: list[str]) -> list[tuple[str, str, str, int]]:
    """``(token, run_id, hook_id, position)`` of the live hooks holding any of ``tokens``."""
    rows: list[tuple[str, str, str, int]] = []
    for part in _chunks(tokens):
        if part:
            rows += conn.execute(owners_sql(len(part)), part).fetchall()
    return rows


def stored_keys(
    conn: sqlite3.Connection, keys: list[tuple[str, str, str]]
) -> set[tuple[str, str, str]]:
    """Which of the ``(run_id, key, idempotency_key)`` triples are already stored."""
    found: set[tuple[str, str, str]] = set()
    for part in _chunks(keys):
        if part:
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


# -- the read queries (run on the reader thread) --------------------------------------------------

_EVENT_COLUMNS: Final = (
    "event_id, run_id, event_type, correlation_id, data, created_at, spec_version"
)


def _event(row: tuple[Any, ...]) -> Event:
    event_id, run_id = row[0], row[1]
    try:
        at = from_micros(row[5])
    except (TypeError, ValueError, OverflowError) as exc:
        raise CorruptedDataError(run_id, event_id, f"bad created_at {row[5]!r}: {exc}") from None
    return event_from_row(event_id, run_id, row[2], row[3], row[4], at, row[6])


def settings(conn: sqlite3.Connection) -> dict[str, object]:
    """The connection's journal mode, synchronous level (0 off, 1 normal, 2 full), timeout."""
    return {
        name: conn.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("journal_mode", "synchronous", "busy_timeout")
    }


def list_events(
    conn: sqlite3.Connection, run_id: str, after: str | None, limit: int | None
) -> Page[Event]:
    """A run's events by event id, after ``after``; the cursor is set if more remain."""
    query = f"SELECT {_EVENT_COLUMNS} FROM events WHERE run_id = ?"
    params: list[object] = [run_id]
    if after is not None:
        query += " AND event_id > ?"
        params.append(after)
    query += " ORDER BY event_id"
    if limit is not None:
        query += " LIMIT ?"
        params.append(limit + 1)
    rows = conn.execute(query, params).fetchall()
    if limit is None or len(rows) <= limit:
        return Page([_event(row) for row in rows], None)
    items = [_event(row) for row in rows[:limit]]
    return Page(items, items[-1].event_id)


def get_run(conn: sqlite3.Connection, run_id: str) -> Run:
    """The run, or ``RunNotFoundError``."""
    rows = conn.execute("SELECT body FROM runs WHERE run_id = ?", (run_id,)).fetchall()
    if not rows:
        raise RunNotFoundError(run_id)
    return entity_from_body(Run, rows[0][0], run_id)


def list_runs(
    conn: sqlite3.Connection,
    status: RunStatus | Sequence[RunStatus] | None,
    workflow_name: str | None,
    limit: int,
    cursor: str | None,
) -> Page[Run]:
    """Runs by run id descending, filtered, ``limit`` of them after ``cursor``."""
    where: list[str] = []
    params: list[object] = []
    wanted = statuses(status)
    if wanted is not None:
        where.append(f"status IN ({_marks(len(wanted))})")
        params += sorted(s.value for s in wanted)
    if workflow_name is not None:
        where.append("workflow_name = ?")
        params.append(workflow_name)
    if cursor is not None:
        where.append("run_id < ?")
        params.append(cursor)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    query = f"SELECT run_id, body FROM runs{clause} ORDER BY run_id DESC LIMIT ?"
    rows = conn.execute(query, [*params, limit + 1]).fetchall()
    runs = [entity_from_body(Run, body, run_id) for run_id, body in rows[:limit]]
    return Page(runs, runs[-1].run_id if len(rows) > limit else None)


def get_step(conn: sqlite3.Connection, run_id: str, step_id: str) -> Step:
    """The step, or ``StepNotFoundError``."""
    query = "SELECT body FROM steps WHERE run_id = ? AND step_id = ?"
    rows = conn.execute(query, (run_id, step_id)).fetchall()
    if not rows:
        raise StepNotFoundError(run_id, step_id)
    return entity_from_body(Step, rows[0][0], run_id)


def _listed(conn: sqlite3.Connection, kind: type[E], table: str, key: str, run_id: str) -> list[E]:
    query = f"SELECT body FROM {table} WHERE run_id = ? ORDER BY generation, position, {key}"
    return [entity_from_body(kind, body, run_id) for (body,) in conn.execute(query, (run_id,))]


def list_steps(conn: sqlite3.Connection, run_id: str) -> list[Step]:
    """A run's steps by generation and position."""
    return _listed(conn, Step, "steps", "step_id", run_id)


def list_waits(conn: sqlite3.Connection, run_id: str) -> list[Wait]:
    """A run's waits by generation and position."""
    return _listed(conn, Wait, "waits", "wait_id", run_id)


def list_hooks(conn: sqlite3.Connection, run_id: str) -> list[Hook]:
    """A run's hooks by generation and position."""
    return _listed(conn, Hook, "hooks", "hook_id", run_id)


def due_waits(conn: sqlite3.Connection, before: datetime, limit: int) -> list[Wait]:
    """Waiting waits with ``resume_at <= before``, by resume time, run id, wait id."""
    query = (
        "SELECT run_id, body FROM waits WHERE status = 'waiting' AND resume_at <= ? "
        "ORDER BY resume_at, run_id, wait_id LIMIT ?"
    )
    rows = conn.execute(query, (micros(before), limit)).fetchall()
    return [entity_from_body(Wait, body, run_id) for run_id, body in rows]


def get_hook(conn: sqlite3.Connection, token: str) -> Hook:
    """The live hook holding ``token``, or ``HookNotFoundError``."""
    query = "SELECT run_id, body FROM hooks WHERE token = ? AND status = 'active'"
    rows = conn.execute(query, (token,)).fetchall()
    if not rows:
        raise HookNotFoundError(token)
    return entity_from_body(Hook, rows[0][1], rows[0][0])


def read_chunks(
    conn: sqlite3.Connection, run_id: str, stream: str, start_index: int, limit: int
) -> list[StreamChunk]:
    """Chunks from ``start_index``, the close marker included, at most ``limit``."""
    query = (
        "SELECT idx, data, eof FROM stream_chunks WHERE run_id = ? AND stream = ? AND idx >= ? "
        "ORDER BY idx LIMIT ?"
    )
    rows = conn.execute(query, (run_id, stream, start_index, limit)).fetchall()
    if not rows and limit > 0:  # past the end of a closed stream: its close marker, as in memory
        last = conn.execute(LAST_CHUNK, (run_id, stream)).fetchall()
        if last and last[0][1] and start_index > last[0][0]:
            rows = [(last[0][0], b"", 1)]
    return [StreamChunk(run_id, stream, idx, bytes(data), bool(eof)) for idx, data, eof in rows]


def stream_info(conn: sqlite3.Connection, run_id: str, stream: str) -> StreamInfo:
    """The last data index (-1 if none) and whether the close marker is written."""
    last = conn.execute(LAST_CHUNK, (run_id, stream)).fetchall()
    if not last:
        return StreamInfo(-1, False)
    idx, eof = last[0]
    return StreamInfo(idx - 1, True) if eof else StreamInfo(idx, False)


def list_annotations(
    conn: sqlite3.Connection, run_id: str, f: AnnotationFilter
) -> list[AnnotationRecord]:
    """A run's annotations passing every filter, by creation time then id."""
    where = ["run_id = ?"]
    params: list[object] = [run_id]
    if f.key is not None:
        where.append("key = ?")
        params.append(f.key)
    elif f.key_prefix is not None:  # case-sensitive, unlike LIKE; the range uses the index
        where.append("key >= ? AND substr(key, 1, ?) = ?")
        params += [f.key_prefix, len(f.key_prefix), f.key_prefix]
    for column, value, wanted in (
        ("scope", f.scope, f.scope is not None),
        ("scope_id", f.scope_id, f.match_scope_id),
        ("actor_id", f.actor_id, f.actor_id is not None),
        ("actor_kind", f.actor_kind, f.actor_kind is not None),
        ("attempt", f.attempt, f.attempt is not None),
    ):
        if wanted:
            where.append(f"{column} IS ?")
            params.append(value)
    if f.since is not None:
        where.append("created_at >= ?")
        params.append(micros(f.since))
    if f.until is not None:
        where.append("created_at <= ?")
        params.append(micros(f.until))
    query = (
        f"SELECT body FROM annotations WHERE {' AND '.join(where)} ORDER BY created_at, id LIMIT ?"
    )
    rows = conn.execute(query, [*params, f.limit]).fetchall()
    return [annotation_from_body(body, run_id) for (body,) in rows]


def read_committed(
    conn: sqlite3.Connection, after: int, limit: int, types: list[str] | None
) -> list[CommittedEvent]:
    """Events of all runs by commit position (``seq``) after ``after``."""
    query = f"SELECT seq, {_EVENT_COLUMNS} FROM events WHERE seq > ?"
    params: list[object] = [after]
    if types is not None:
        query += f" AND event_type IN ({_marks(len(types))})"
        params += types
    rows = conn.execute(query + " ORDER BY seq LIMIT ?", [*params, limit]).fetchall()
    return [CommittedEvent(row[0], _event(row[1:])) for row in rows]


def get_cursor(conn: sqlite3.Connection, name: str) -> int:
    """A subscriber's stored position, 0 if none."""
    rows = conn.execute("SELECT position FROM cursors WHERE name = ?", (name,)).fetchall()
    return int(rows[0][0]) if rows else 0
