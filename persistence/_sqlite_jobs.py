"""The write jobs the SQLite store's writer thread runs (reads: ``_sqlite_reads``).

Each takes the thread's connection first and is one ``BEGIN IMMEDIATE`` ... ``COMMIT``
transaction (rolled back on any error, so a refused or failed write changes nothing); it
returns its result with the notifier topics it changed.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import NamedTuple

from . import _sqlite_leases as lease_rows
from . import _sqlite_schema as sql
from . import events as ev
from ._sqlite_cache import FULL_LOAD_EVENTS, RunCache
from .batch import (
    BatchPlan,
    Request,
    TokenOwner,
    claiming,
    fenced,
    idempotency_keys,
    plan_batch,
)
from .errors import (
    EntityConflictError,
    RunNotFoundError,
    StoreError,
    StreamClosedError,
)
from .events import Event, NewEvent, encode_data
from .notify import stream_topic
from .records import (
    AnnotationRecord,
    BatchResult,
    StreamInfo,
)
from .rows import (
    annotation_body,
    entity_body,
    entity_from_body,
    micros,
)
from .state import Hook, Run, RunState, Step, Wait

# -- the write path (runs on the writer thread) -------------------------------------------------

_RELEASING = (ev.RunCompleted, ev.RunFailed, ev.RunCancelled, ev.RunRerun)
_WAITING = (ev.WaitCreated, ev.HookCreated)
_PREFIXES = {"step_": sql.STEP_ROW, "wait_": sql.WAIT_ROW, "hook_": sql.HOOK_ROW}
_KINDS = {cls: _PREFIXES[name[:5]] for name, cls in ev.DATA_TYPES.items() if name[:5] in _PREFIXES}

Known = dict[tuple[int, tuple[str, ...]], str]
"""The stored status of each loaded entity, by kind and key: ``(run_id,)`` or ``(run_id, id)``."""


class Needs(NamedTuple):
    """What a batch's plan reads: its runs, the entities its events name, the hook tokens it
    claims, and the runs it ends or reruns (all their waits and hooks)."""

    runs: list[str]
    pairs: tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]
    tokens: list[str]
    released: list[str]


def needs(requests: list[Request]) -> Needs:
    """What :func:`write_batch` must know to plan ``requests``.

    A correlation id is looked up in the table its event's type reads (steps for step
    events, ...): no state machine looks at another.
    """
    runs: dict[str, None] = {}
    pairs: tuple[dict[tuple[str, str], None], ...] = ({}, {}, {})
    tokens: dict[str, None] = {}
    released: dict[str, None] = {}
    for request in requests:
        run_id = request.run_id
        runs[run_id] = None
        if isinstance(request, NewEvent):
            data = request.data
            kind = _KINDS.get(type(data))
            if kind is not None:  # an entity event: the common case
                if request.correlation_id is not None:
                    pairs[kind - 1][(run_id, request.correlation_id)] = None
                if isinstance(data, ev.HookCreated):
                    tokens[data.token] = None
            elif isinstance(data, _RELEASING):
                released[run_id] = None
    groups = (list(pairs[0]), list(pairs[1]), list(pairs[2]))
    return Needs(list(runs), groups, list(tokens), list(released))


def write_batch(
    conn: sqlite3.Connection, cache: RunCache, requests: list[Request]
) -> tuple[BatchResult, list[str]]:
    """Load (or take from ``cache``), plan and write one batch in one transaction; the result
    and the topics to notify. The cache learns the batch's states once it committed."""
    need = needs(requests)
    conn.execute("BEGIN IMMEDIATE")
    try:
        cache.begin(conn.execute(sql.DATA_VERSION).fetchone()[0])
        states, known, whole = _states(conn, cache, need)
        owners: dict[str, TokenOwner | None] = dict.fromkeys(need.tokens)
        for token, run_id, hook_id, position in sql.token_owners(conn, need.tokens):
            owners[token] = TokenOwner(run_id, hook_id, position)
        wanted = idempotency_keys(requests)
        keys = sql.stored_keys(conn, list(wanted)) if wanted else set()
        epochs, unknown = cache.epochs(sorted(fenced(requests)))
        epochs.update(lease_rows.epochs(conn, unknown))
        held = lease_rows.held(conn, sorted(claiming(requests)))
        now = datetime.now(UTC)
        plan = plan_batch(states, requests, now, owners, keys, epochs, held)
        wrote = _write_plan(conn, plan, known)
        lease_rows.take_claimed(conn, plan.claims, now)
        lease_rows.mark_written(conn, plan.unclaimed, plan.revived)
        lease_rows.lapse_ended(conn, plan.ended)  # after: a run created and ended is no one's
        conn.execute("COMMIT")
    except BaseException:
        cache.forget(need.runs)  # planned on in place: maybe ahead of the file
        _rollback(conn)
        raise
    epochs.update((run_id, claim.epoch) for run_id, claim in plan.claims.items())
    cache.remember(states, whole - _waiting(plan.events), epochs)
    return plan.result(), plan.topics() if wrote else []


def _waiting(events: list[Event]) -> set[str]:
    """The runs whose last event here made them wait (a sleep, a hook): written again only
    once woken, maybe hours later, they are not worth the memory of a cached state."""
    last = {event.run_id: event.data for event in events}
    return {run_id for run_id, data in last.items() if isinstance(data, _WAITING)}


def _states(
    conn: sqlite3.Connection, cache: RunCache, need: Needs
) -> tuple[dict[str, RunState], Known, set[str]]:
    """The states of the batch's runs, the stored status of what the plan may write, and
    which states are whole (every entity of the run: those may be cached after the commit).

    Cached states come from the cache (checked against their run rows if another connection
    wrote the file since); the others are read, whole if the run is short.
    """
    cached, unchecked, missing = cache.lookup(need.runs)
    if unchecked:
        stored = {run_id: body for _, run_id, body in sql.run_rows(conn, unchecked)}
        for run_id in unchecked:
            body = stored.get(run_id)
            run = entity_from_body(Run, body, run_id) if body is not None else None
            state = cache.confirm(run_id, run)
            if state is None:
                missing.append(run_id)
            else:
                cached[run_id] = state
    if not missing:  # the common case: every run cached and exact
        known: Known = {}
        _known_cached(cached, need, known)
        return cached, known, set(cached)
    states, known = _load(conn, need, missing)
    whole = _complete(conn, states, known)
    for run_id, state in cached.items():
        states[run_id] = state
        whole.add(run_id)
    if cached:
        _known_cached(cached, need, known)
    return states, known, whole


def _load(
    conn: sqlite3.Connection, need: Needs, runs: list[str]
) -> tuple[dict[str, RunState], Known]:
    """Read these runs and the entities the batch names of them (all the waits and hooks of
    runs it ends or reruns)."""
    states = {run_id: RunState() for run_id in runs}
    known: Known = {}
    if not runs:
        return states, known
    groups = tuple([p for p in group if p[0] in states] for group in need.pairs)
    released = [run_id for run_id in need.released if run_id in states]
    pairs = (groups[0], groups[1], groups[2])
    _fold_rows(states, known, sql.load_rows(conn, runs, pairs, released))
    return states, known


def _complete(conn: sqlite3.Connection, states: dict[str, RunState], known: Known) -> set[str]:
    """Read every entity of the loaded runs short enough to cache; the runs now whole."""
    short = [
        run_id
        for run_id, state in states.items()
        if state.run is not None and state.run.event_count <= FULL_LOAD_EVENTS
    ]
    if short:
        _fold_rows(states, known, sql.whole_rows(conn, short))
    return {run_id for run_id, state in states.items() if state.run is None} | set(short)


def _fold_rows(
    states: dict[str, RunState], known: Known, rows: Iterable[tuple[int, str, bytes]]
) -> None:
    """Put loaded rows into their runs' states and note their stored statuses."""
    for kind, run_id, body in rows:
        state = states[run_id]
        if kind == sql.RUN_ROW:
            run = state.run = entity_from_body(Run, body, run_id)
            known[(kind, (run_id,))] = run.status
        elif kind == sql.STEP_ROW:
            step = entity_from_body(Step, body, run_id)
            state.steps[step.step_id] = step
            known[(kind, (run_id, step.step_id))] = step.status
        elif kind == sql.WAIT_ROW:
            wait = entity_from_body(Wait, body, run_id)
            state.waits[wait.wait_id] = wait
            known[(kind, (run_id, wait.wait_id))] = wait.status
        else:
            hook = entity_from_body(Hook, body, run_id)
            state.hooks[hook.hook_id] = hook
            known[(kind, (run_id, hook.hook_id))] = hook.status


def _known_cached(cached: dict[str, RunState], need: Needs, known: Known) -> None:
    """The stored status of what the plan may write of cached (whole, exact) states: the
    run, each entity its events name (looked up in every table), a released run's waits and
    hooks."""
    for run_id, state in cached.items():
        if state.run is not None:
            known[(sql.RUN_ROW, (run_id,))] = state.run.status
    for group in need.pairs:
        for run_id, key in group:
            named = cached.get(run_id)
            if named is None:
                continue
            for kind, table in _tables(named):
                entity = table.get(key)
                if entity is not None:
                    known[(kind, (run_id, key))] = entity.status
    for run_id in need.released:
        ending = cached.get(run_id)
        if ending is not None:
            for wait_id, wait in ending.waits.items():
                known[(sql.WAIT_ROW, (run_id, wait_id))] = wait.status
            for hook_id, hook in ending.hooks.items():
                known[(sql.HOOK_ROW, (run_id, hook_id))] = hook.status


def _tables(state: RunState) -> tuple[tuple[int, Mapping[str, Step | Wait | Hook]], ...]:
    return ((sql.STEP_ROW, state.steps), (sql.WAIT_ROW, state.waits), (sql.HOOK_ROW, state.hooks))


def _write_plan(conn: sqlite3.Connection, plan: BatchPlan, known: Known) -> bool:
    """Insert the plan's events and annotations and write its entities; whether it wrote."""
    stamps: dict[datetime, int] = {}  # most of a batch's times are one "now"

    def us(at: datetime) -> int:
        found = stamps.get(at)
        if found is None:
            found = stamps[at] = micros(at)
        return found

    _many(conn, sql.INSERT_EVENT, _event_rows(plan.events, us))
    _entities(conn, sql.RUN_ROW, known, [((r,), run) for r, run in plan.runs.items()])
    _entities(conn, sql.STEP_ROW, known, plan.steps.items())
    _entities(conn, sql.WAIT_ROW, known, plan.waits.items())
    _entities(conn, sql.HOOK_ROW, known, plan.hooks.items())
    rows = list(plan.annotation_rows)
    _many(conn, sql.INSERT_ANNOTATION, [_annotation_row(a, us(a.created_at)) for a in rows])
    return bool(plan.events or rows)


def _event_rows(events: list[Event], us: Callable[[datetime], int]) -> list[tuple[object, ...]]:
    """The rows of ``events``, in the order of ``sql.INSERT_EVENT`` (``us``: a time in
    microseconds)."""
    return [
        (
            e.event_id,
            e.run_id,
            e.event_type,
            e.correlation_id,
            encode_data(e.data),
            us(e.created_at),
            e.spec_version,
        )
        for e in events
    ]


def _annotation_row(a: AnnotationRecord, created_at: int) -> tuple[object, ...]:
    scope = (a.scope, a.scope_id, a.actor_id, a.actor_kind, a.attempt, a.idempotency_key)
    return (a.id, a.run_id, a.key, *scope, created_at, annotation_body(a))


def _insert_row(entity: Run | Step | Wait | Hook, body: bytes) -> tuple[object, ...]:
    """The columns of an entity's new row, in the order of ``sql.INSERTS``."""
    e = entity
    if isinstance(e, Run):
        return (e.run_id, e.workflow_name, e.status.value, micros(e.created_at), body)
    if isinstance(e, Step):
        return (e.run_id, e.step_id, e.generation, e.position, e.status.value, body)
    if isinstance(e, Wait):
        at = micros(e.resume_at)
        return (e.run_id, e.wait_id, e.status.value, at, e.generation, e.position, body)
    return (e.run_id, e.hook_id, e.token, e.status.value, e.generation, e.position, body)


def _entities(
    conn: sqlite3.Connection,
    kind: int,
    known: Known,
    entities: Iterable[tuple[tuple[str, ...], Run | Step | Wait | Hook]],
) -> None:
    """Write entities of one kind: status changes first, then inserts, then other updates.

    That order frees a hook token (a live hook disposed) before a new claim of it is
    inserted, and an update that keeps the status leaves the ``status`` indexes alone.
    """
    moves: list[tuple[object, ...]] = []
    inserts: list[tuple[object, ...]] = []
    edits: list[tuple[object, ...]] = []
    for where, entity in entities:
        body = entity_body(entity)
        stored = known.get((kind, where))
        if stored is None:
            inserts.append(_insert_row(entity, body))
        elif stored == entity.status:
            edits.append((body, *where))
        else:
            moves.append((entity.status.value, body, *where))
    _many(conn, sql.MOVES[kind], moves)
    _many(conn, sql.INSERTS[kind], inserts)
    _many(conn, sql.EDITS[kind], edits)


def _many(conn: sqlite3.Connection, statement: str, rows: list[tuple[object, ...]]) -> None:
    if len(rows) == 1:
        conn.execute(statement, rows[0])
    elif rows:
        conn.executemany(statement, rows)


def append_chunks(
    conn: sqlite3.Connection,
    run_id: str,
    stream: str,
    start_index: int,
    chunks: list[bytes],
    close: bool,
) -> tuple[StreamInfo, list[str]]:
    """Append chunks (and the close marker) at the stream's next index, atomically."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = _append(conn, run_id, stream, start_index, chunks, close)
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return result


Append = tuple[str, str, int, list[bytes], bool]
"""The arguments of one :func:`append_chunks` after the connection."""


def append_chunk_groups(
    conn: sqlite3.Connection, appends: list[Append]
) -> list[tuple[StreamInfo, list[str]] | StoreError]:
    """Several appends (of any streams) in one transaction, so they share one commit: each
    in a savepoint, so one refused (a closed stream, a wrong index, no such run) changes
    nothing and is answered with its error while the others commit. A failure of SQLite
    itself fails them all (nothing is written)."""
    results: list[tuple[StreamInfo, list[str]] | StoreError] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for append in appends:
            conn.execute("SAVEPOINT append")
            try:
                results.append(_append(conn, *append))
            except StoreError as refused:
                conn.execute("ROLLBACK TO append")
                results.append(refused)
            conn.execute("RELEASE append")
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return results


def _append(
    conn: sqlite3.Connection,
    run_id: str,
    stream: str,
    start_index: int,
    chunks: list[bytes],
    close: bool,
) -> tuple[StreamInfo, list[str]]:
    """The statements of one append, inside the caller's transaction."""
    if not conn.execute(sql.RUN_EXISTS, (run_id,)).fetchall():
        raise RunNotFoundError(run_id)
    last = conn.execute(sql.LAST_CHUNK, (run_id, stream)).fetchall()
    if last and last[0][1]:
        raise StreamClosedError(run_id, stream)
    following = last[0][0] + 1 if last else 0
    if start_index != following:
        raise EntityConflictError(
            f"chunk {start_index} of stream {stream!r} of run {run_id!r} is not the next "
            f"one ({following})"
        )
    rows = [(run_id, stream, start_index + i, data, 0) for i, data in enumerate(chunks)]
    if close:
        rows.append((run_id, stream, start_index + len(chunks), b"", 1))
    conn.executemany(sql.INSERT_CHUNK, rows)
    return StreamInfo(start_index + len(chunks) - 1, close), [stream_topic(run_id, stream)]


def save_cursor(conn: sqlite3.Connection, name: str, position: int) -> tuple[None, list[str]]:
    """Store a subscriber's position (one autocommit statement)."""
    conn.execute(sql.UPSERT_CURSOR, (name, position))
    return None, []


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
