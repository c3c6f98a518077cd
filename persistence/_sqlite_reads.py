"""The read jobs of the SQLite store: queries on the reader's connection (and the
settings on the writer's), one or two statements each.

Rows are decoded with :mod:`persistence.rows`, so bad rows raise ``CorruptedDataError``
naming the run and event.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from . import _sqlite_schema as sql
from .errors import (
    CorruptedDataError,
    HookNotFoundError,
    RunNotFoundError,
    StepNotFoundError,
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
from .rows import (
    RUN_CREATED_DATA,
    E,
    annotation_from_body,
    entity_from_body,
    event_from_row,
    from_micros,
    micros,
    run_from_row,
    step_from_row,
)
from .state import Hook, Run, RunStatus, Step, Wait
from .views import payload_target, recorded_by, statuses

# -- the write path (runs on the writer thread) -------------------------------------------------


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
        name: conn.execute(f"PRAGMA {name}").fetchall()[0][0]
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
    query = f"SELECT r.body, {RUN_CREATED_DATA} FROM runs r WHERE r.run_id = ?"
    found = conn.execute(query, (run_id,)).fetchall()
    if not found:
        raise RunNotFoundError(run_id)
    return run_from_row(found[0][0], found[0][1], run_id)


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
        where.append(f"r.status IN ({sql.marks(len(wanted))})")
        params += sorted(s.value for s in wanted)
    if workflow_name is not None:
        where.append("r.workflow_name = ?")
        params.append(workflow_name)
    if cursor is not None:
        where.append("r.run_id < ?")
        params.append(cursor)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    query = (
        f"SELECT r.run_id, r.body, {RUN_CREATED_DATA} FROM runs r{clause} "
        "ORDER BY r.run_id DESC LIMIT ?"
    )
    rows = conn.execute(query, [*params, limit + 1]).fetchall()
    runs = [run_from_row(body, created, run_id) for run_id, body, created in rows[:limit]]
    return Page(runs, runs[-1].run_id if len(rows) > limit else None)


def get_step(conn: sqlite3.Connection, run_id: str, step_id: str) -> Step:
    """The step, or ``StepNotFoundError``."""
    query = f"SELECT s.body, {sql.STEP_CREATED} FROM steps s WHERE s.run_id = ? AND s.step_id = ?"
    rows = conn.execute(query, (run_id, step_id)).fetchall()
    if not rows:
        raise StepNotFoundError(run_id, step_id)
    return step_from_row(rows[0][0], rows[0][1], run_id)


def _listed(conn: sqlite3.Connection, kind: type[E], table: str, key: str, run_id: str) -> list[E]:
    query = f"SELECT body FROM {table} WHERE run_id = ? ORDER BY generation, position, {key}"
    rows = conn.execute(query, (run_id,)).fetchall()
    return [entity_from_body(kind, body, run_id) for (body,) in rows]


def list_steps(conn: sqlite3.Connection, run_id: str) -> list[Step]:
    """A run's steps by generation and position (their inputs from the run's ``step_created``
    events, read in one pass over its log)."""
    query = (
        "SELECT step_id, body FROM steps WHERE run_id = ? ORDER BY generation, position, step_id"
    )
    rows = conn.execute(query, (run_id,)).fetchall()
    if not rows:
        return []
    created = dict(conn.execute(sql.STEPS_CREATED, (run_id,)).fetchall())
    return [step_from_row(body, created.get(step_id), run_id) for step_id, body in rows]


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


def resolve_hook(conn: sqlite3.Connection, token: str, key: str | None) -> Hook | str | None:
    """Where a payload for ``token`` goes (``Store.resolve_hook``), in one query."""
    return payload_target(_hooks_of_token(conn, token), key)


def find_payload(conn: sqlite3.Connection, token: str, key: str) -> str | None:
    """The run whose hook holding ``token`` recorded a payload with idempotency ``key``."""
    return recorded_by(_hooks_of_token(conn, token), key)


def _hooks_of_token(conn: sqlite3.Connection, token: str) -> list[Hook]:
    """Every hook that held ``token``, live or not."""
    rows = conn.execute("SELECT run_id, body FROM hooks WHERE token = ?", (token,))
    return [entity_from_body(Hook, body, run_id) for run_id, body in rows]


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
        last = conn.execute(sql.LAST_CHUNK, (run_id, stream)).fetchall()
        if last and last[0][1] and start_index > last[0][0]:
            rows = [(last[0][0], b"", 1)]
    return [StreamChunk(run_id, stream, idx, bytes(data), bool(eof)) for idx, data, eof in rows]


def stream_info(conn: sqlite3.Connection, run_id: str, stream: str) -> StreamInfo:
    """The last data index (-1 if none) and whether the close marker is written."""
    last = conn.execute(sql.LAST_CHUNK, (run_id, stream)).fetchall()
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
        query += f" AND event_type IN ({sql.marks(len(types))})"
        params += types
    rows = conn.execute(query + " ORDER BY seq LIMIT ?", [*params, limit]).fetchall()
    return [CommittedEvent(row[0], _event(row[1:])) for row in rows]


def get_cursor(conn: sqlite3.Connection, name: str) -> int:
    """A subscriber's stored position, 0 if none."""
    rows = conn.execute("SELECT position FROM cursors WHERE name = ?", (name,)).fetchall()
    return int(rows[0][0]) if rows else 0


def last_position(conn: sqlite3.Connection) -> int:
    """The commit position of the last event, 0 if there is none."""
    return int(conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchall()[0][0])
