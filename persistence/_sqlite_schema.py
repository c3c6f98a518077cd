"""The SQLite store's file: URL options, connection settings and the SQL of the write path.

The SQL the write path runs includes the one query that loads everything a batch's planning
needs (:func:`load_rows`). The tables themselves are made by the migrations, in
:mod:`persistence._sqlite_migrations`.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final, TypeVar
from urllib.parse import quote

from ._sqlite_migrations import user_version
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
        if writer and not create and user_version(conn) == 0:
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
STEP_CREATED: Final = (
    "(SELECT e.data FROM events e WHERE e.run_id = s.run_id AND e.correlation_id = s.step_id "
    "AND e.event_type = 'step_created')"
)
"""The data of the ``step_created`` event of the step ``s`` of a query: its input."""
STEPS_CREATED: Final = (
    "SELECT correlation_id, data FROM events WHERE run_id = ? AND event_type = 'step_created'"
)
"""The step ids and ``step_created`` data of a run (the inputs of its steps)."""
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
