"""The batch write path of the PostgreSQL store: loading, planning, guarded writing.

A batch is planned by the shared planner and written by one statement whose data-modifying
CTEs first guard the runs (an ``UPDATE ... WHERE last_event_id = expected`` per written run,
an ``INSERT ... ON CONFLICT DO NOTHING`` per new run, a check per run decided but not
written), then take the commit-order lock, then write events, entities and annotations, and
``pg_notify``. If a guard finds a run other than expected, the statement raises a
serialization failure, so nothing is written and the batch is planned again from fresh rows.

:class:`BatchWriter` tries three paths, cheapest first:

1. cached: a batch on runs whose full state the writer keeps (it wrote them lately) is
   planned from the cache and written in one round trip; a stale cache only fails guards;
2. read-then-write: one query loads the runs, entities, token owners and annotation keys the
   plan needs, in one snapshot, then the guarded write;
3. locked: if a guard or a unique index (a hook token, an idempotency key) refused the write,
   the batch is planned again in a transaction holding its runs ``FOR UPDATE``, a bounded
   number of times.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from . import events as ev
from ._pg_schema import FULL_LOAD_EVENTS, LOAD, LOCK_RUNS
from .batch import (
    BatchPlan,
    Request,
    TokenOwner,
    fenced,
    idempotency_keys,
    plan_batch,
    referenced,
)
from .errors import StoreUnavailableError
from .events import NewEvent
from .rows import annotation_body, entity_body, entity_from_body, event_data_bytes
from .state import Hook, HookStatus, Run, RunState, Step, Wait

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

CACHE_EVENTS: Final = 200_000
"""The runs a writer keeps hold at most about this many events in all (least recently
written runs are dropped first)."""

LOCKED_ATTEMPTS: Final = 12
PAYLOAD_LIMIT: Final = 7900
"""PostgreSQL refuses NOTIFY payloads of 8000 bytes or more."""

RETRY: Final = (
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.UniqueViolationError,
)
"""What makes a batch be planned again: a guard failed, a deadlock, a unique index."""


class BatchWriter:
    """Writes batches for one store: keeps the states of runs it wrote, tries the paths."""

    def __init__(self, where: str, channel: str, lock_key: int, origin: str) -> None:
        self._where = where
        self._channel = channel
        self._lock_key = lock_key
        self._origin = origin
        self._cache: OrderedDict[str, RunState] = OrderedDict()
        self._weights: dict[str, int] = {}
        self._weight = 0
        self._epochs: dict[str, int] = {}  # lease epochs read lately (the guard checks them)

    async def write(self, conn: Conn, requests: list[Request]) -> BatchPlan:
        """Plan and commit ``requests``; the committed plan (raises only store failures)."""
        try:
            return await self._write(conn, requests)
        except BaseException:
            self.forget(r.run_id for r in requests)
            raise

    def claimed(self, epochs: Mapping[str, int]) -> None:
        """This store's process took these leases at these epochs: a first write to such a
        run need not read its epoch (its guard still checks it in the same statement)."""
        self._epochs.update(epochs)

    def forget(self, run_ids: Iterable[str]) -> None:
        """Drop cached states and lease epochs (they may not be what was committed)."""
        for run_id in run_ids:
            self._epochs.pop(run_id, None)
            if self._cache.pop(run_id, None) is not None:
                self._weight -= self._weights.pop(run_id, 0)

    def clear(self) -> None:
        """Drop every cached state."""
        self._cache.clear()
        self._weights.clear()
        self._epochs.clear()
        self._weight = 0

    def payloads(self, topics: list[str]) -> list[str]:
        """NOTIFY payloads naming ``topics`` (``origin\\n["topic", ...]``), each under the limit.

        A topic too long for any payload gives ``origin\\n*``: wake everyone.
        """
        whole = f"{self._origin}\n{json.dumps(topics)}"
        if len(whole) < PAYLOAD_LIMIT // 4 or len(whole.encode()) < PAYLOAD_LIMIT:
            return [whole]
        payloads: list[str] = []
        chunk: list[str] = []
        size = len(self._origin) + 3
        for topic in topics:
            cost = len(json.dumps(topic).encode()) + 2
            if cost + len(self._origin) + 3 > PAYLOAD_LIMIT:
                return [f"{self._origin}\n*"]
            if chunk and size + cost > PAYLOAD_LIMIT:
                payloads.append(f"{self._origin}\n{json.dumps(chunk)}")
                chunk, size = [], len(self._origin) + 3
            chunk.append(topic)
            size += cost
        if chunk:
            payloads.append(f"{self._origin}\n{json.dumps(chunk)}")
        return payloads

    async def _write(self, conn: Conn, requests: list[Request]) -> BatchPlan:
        run_ids, _, tokens = referenced(requests)
        if not tokens:  # token owners live in other runs: never decided from the cache
            try:
                plan = await self._cached(conn, requests)
                if plan is not None:
                    return plan
            except RETRY:
                self.forget(run_ids)
        try:
            return await self._loaded(conn, requests)
        except RETRY:
            self.forget(run_ids)
        for attempt in range(LOCKED_ATTEMPTS):
            try:
                async with conn.transaction():
                    await conn.execute(LOCK_RUNS, sorted(run_ids))
                    return await self._loaded(conn, requests)
            except RETRY:
                self.forget(run_ids)
                await asyncio.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.1)))
        raise StoreUnavailableError(
            f"PostgreSQL at {self._where} is too busy: a batch lost {LOCKED_ATTEMPTS} races"
        )

    async def _cached(self, conn: Conn, requests: list[Request]) -> BatchPlan | None:
        """Plan from cached run states and write with guards; None if a run is not cached."""
        states: dict[str, RunState] = {}
        assumed: set[str] = set()
        for request in requests:
            if request.run_id in states:
                continue
            cached = self._cache.get(request.run_id)
            if cached is not None:
                states[request.run_id] = cached
            elif isinstance(request, NewEvent) and isinstance(request.data, ev.RunCreated):
                states[request.run_id] = RunState()
                assumed.add(request.run_id)
            else:
                return None
        epochs: dict[str, int] = {}
        for run_id in fenced(requests):
            if run_id not in self._epochs:
                return None  # a lease epoch must be read first
            epochs[run_id] = self._epochs[run_id]
        # The cached states are planned on in place: if the write fails they are forgotten,
        # and a batch planned meanwhile on their uncommitted state fails its guards (a lease
        # that moved meanwhile fails its guard too).
        plan = plan_batch(states, requests, datetime.now(UTC), epochs=epochs)
        if not assumed <= plan.new_runs:
            self.forget(states)
            return None  # a refusal assumed a run does not exist: let a read decide
        checks = {
            run_id: state.run.last_event_id
            for run_id, state in states.items()
            if run_id not in plan.runs and state.run is not None
        }
        await self._execute(conn, plan, checks)
        self._remember(states, set(states))
        return plan

    async def _loaded(self, conn: Conn, requests: list[Request]) -> BatchPlan:
        """Load what the plan needs in one snapshot, plan, and write with guards."""
        run_ids, entities, tokens = referenced(requests)
        keys = idempotency_keys(requests)
        releasing = [
            r.run_id
            for r in requests
            if isinstance(r, NewEvent)
            and (r.event_type in ev.TERMINAL_RUN_EVENTS or isinstance(r.data, ev.RunRerun))
        ]
        pairs = [(run_id, cid) for run_id, cids in entities.items() for cid in cids]
        rows = await conn.fetch(
            LOAD,
            list(run_ids),
            FULL_LOAD_EVENTS,
            [p[0] for p in pairs],
            [p[1] for p in pairs],
            releasing,
            list(tokens),
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            sorted(fenced(requests)),
        )
        epochs: dict[str, int] = {}
        states = {run_id: RunState() for run_id in run_ids}
        whole = set(run_ids)
        owners: dict[str, TokenOwner | None] = dict.fromkeys(tokens)
        existing: set[tuple[str, str, str]] = set()
        for kind, run_id, body, key, idem, full in rows:
            if kind == "r":
                states[run_id].run = entity_from_body(Run, body, run_id)
                if not full:
                    whole.discard(run_id)
            elif kind == "s":
                step = entity_from_body(Step, body, run_id)
                states[run_id].steps[step.step_id] = step
            elif kind == "w":
                wait = entity_from_body(Wait, body, run_id)
                states[run_id].waits[wait.wait_id] = wait
            elif kind == "h":
                hook = entity_from_body(Hook, body, run_id)
                states[run_id].hooks[hook.hook_id] = hook
            elif kind == "t":
                hook = entity_from_body(Hook, body, run_id)
                owners[hook.token] = TokenOwner(run_id, hook.hook_id, hook.position)
            elif kind == "l":
                epochs[run_id] = int(key)
            else:
                existing.add((run_id, key, idem))
        plan = plan_batch(states, requests, datetime.now(UTC), owners, existing, epochs)
        await self._execute(conn, plan, {})
        self._remember(states, whole)
        self._epochs.update(epochs)
        return plan

    async def _execute(self, conn: Conn, plan: BatchPlan, checks: dict[str, str]) -> None:
        topics = plan.topics()
        if not (topics or checks):
            return
        statement, args = write_statement(
            plan, checks, self._lock_key, self._channel, self.payloads(topics) if topics else []
        )
        await conn.execute(statement, *args)

    def _remember(self, states: dict[str, RunState], whole: set[str]) -> None:
        """Cache the full states of runs now known as committed."""
        for run_id, state in states.items():
            run = state.run
            if run_id not in whole or run is None:
                self.forget([run_id])
                continue
            old = self._cache.get(run_id)
            if old is not None and old.run is not None and old.run.event_count > run.event_count:
                continue  # a later write of this run was remembered first
            self._weight += run.event_count - self._weights.get(run_id, 0)
            self._weights[run_id] = run.event_count
            self._cache[run_id] = state
            self._cache.move_to_end(run_id)
        while self._weight > CACHE_EVENTS and self._cache:
            self.forget([next(iter(self._cache))])


# -- the guarded statement ------------------------------------------------------------------


Columns: TypeAlias = tuple[tuple[str, str], ...]
Shape: TypeAlias = tuple[int, ...]
"""Per part (runs updated, runs inserted, runs checked, lease fences, events, steps, waits,
hooks, annotations, ended runs' leases, then NOTIFY payloads): 0 rows, 1 row (scalar
parameters) or more (arrays)."""


def _columns(spec: str) -> Columns:
    """``"name type, ..."`` as ``((name, type), ...)``."""
    pairs = (item.split() for item in spec.split(","))
    return tuple((name, cast) for name, cast in pairs)


_UPD: Final = _columns(
    "run_id text, status text, last_event_id text, event_count int4, body bytea, expected text"
)
_INS: Final = _columns(
    "run_id text, workflow_name text, status text, created_at timestamptz, "
    "last_event_id text, event_count int4, body bytea"
)
_CHK: Final = _columns("run_id text, expected text")
_FEN: Final = _columns("run_id text, epoch int4")
_EVENTS: Final = _columns(
    "event_id text, run_id text, event_type text, correlation_id text, data bytea, "
    "created_at timestamptz, spec_version int4"
)
_STEPS: Final = _columns(
    "run_id text, step_id text, generation int4, position int8, status text, body bytea"
)
_WAITS: Final = _columns(
    "run_id text, wait_id text, status text, resume_at timestamptz, generation int4, "
    "position int8, body bytea"
)
_HOOKS: Final = _columns(
    "run_id text, hook_id text, token text, status text, generation int4, position int8, body bytea"
)
_ENDED: Final = _columns("run_id text")
_ANNOTATIONS: Final = _columns(
    "id text, run_id text, key text, scope text, scope_id text, actor_id text, "
    "actor_kind text, attempt int4, idempotency_key text, created_at timestamptz, body bytea"
)


def _rows_class(count: int) -> int:
    """0, 1 (one row: scalar parameters) or 2 (more: one array per column)."""
    return count if count < 2 else 2


def _add(rows: Sequence[tuple[Any, ...]], shape: list[int], args: list[Any]) -> None:
    """Append a part's rows as parameters: one row's values, or one array per column."""
    shape.append(_rows_class(len(rows)))
    if len(rows) == 1:
        args.extend(rows[0])
    elif rows:
        args.extend(list(column) for column in zip(*rows, strict=True))


def write_statement(
    plan: BatchPlan,
    checks: dict[str, str],
    lock_key: int,
    channel: str,
    payloads: list[str],
) -> tuple[str, list[Any]]:
    """The one statement that writes ``plan``, guarded, and notifies listeners.

    ``checks`` maps runs the plan decided without writing them to the ``last_event_id`` the
    decision assumed. ``lock_key`` is the advisory lock that orders commits of events. The
    SQL depends only on the batch's shape, so each shape is prepared once per connection.
    """
    expected, new_runs = plan.expected, plan.new_runs
    runs = (
        sorted(plan.runs.values(), key=lambda r: r.run_id)
        if len(plan.runs) > 1
        else plan.runs.values()
    )
    old = [
        (
            r.run_id,
            r.status.value,
            r.last_event_id,
            r.event_count,
            entity_body(r),
            expected[r.run_id],
        )
        for r in runs
        if r.run_id not in new_runs
    ]
    new = [
        (
            r.run_id,
            r.workflow_name,
            r.status.value,
            r.created_at,
            r.last_event_id,
            r.event_count,
            entity_body(r),
        )
        for r in runs
        if r.run_id in new_runs
    ]
    events = [
        (
            e.event_id,
            e.run_id,
            e.event_type,
            e.correlation_id,
            event_data_bytes(e),
            e.created_at,
            e.spec_version,
        )
        for e in plan.events
    ]
    steps = [
        (s.run_id, s.step_id, s.generation, s.position, s.status.value, entity_body(s))
        for s in plan.steps.values()
    ]
    waits = [
        (w.run_id, w.wait_id, w.status.value, w.resume_at, w.generation, w.position, entity_body(w))
        for w in plan.waits.values()
    ]
    # Released hooks first, so a token freed and claimed again in one batch never meets its
    # old claim in the live-token index.
    hooks = [
        (h.run_id, h.hook_id, h.token, h.status.value, h.generation, h.position, entity_body(h))
        for h in sorted(plan.hooks.values(), key=lambda h: h.status is HookStatus.ACTIVE)
    ]
    annotations = [
        (
            a.id,
            a.run_id,
            a.key,
            a.scope,
            a.scope_id,
            a.actor_id,
            a.actor_kind,
            a.attempt,
            a.idempotency_key,
            a.created_at,
            annotation_body(a),
        )
        for a in plan.annotation_rows
    ]
    shape: list[int] = []
    args: list[Any] = []
    fences = sorted(plan.fences.items())
    guards: tuple[Sequence[tuple[Any, ...]], ...] = (old, new, list(checks.items()), fences)
    for rows in guards:
        _add(rows, shape, args)
    args.append(len(old) + len(new) + len(checks) + len(fences))
    if events:
        args.append(lock_key)
    ended = [(run_id,) for run_id in plan.ended]
    writes: tuple[Sequence[tuple[Any, ...]], ...] = (
        events,
        steps,
        waits,
        hooks,
        annotations,
        ended,
    )
    for rows in writes:
        _add(rows, shape, args)
    shape.append(_rows_class(len(payloads)))
    if payloads:
        args.append(channel)
        args.append(payloads[0] if len(payloads) == 1 else payloads)
    return write_sql(tuple(shape)), args


@lru_cache(maxsize=512)
def write_sql(shape: Shape) -> str:
    """The SQL of a batch write of ``shape`` (parameters in :func:`write_statement`'s order)."""
    upd, ins, chk, fen, events, steps, waits, hooks, annotations, ended, notify = shape
    params = iter(range(1, 10_000))

    def source(columns: Columns, kind: int, ordered: bool = False) -> str:
        names = ", ".join(name for name, _ in columns)
        if kind == 1:
            values = ", ".join(f"${next(params)}::{cast}" for _, cast in columns)
            return f"(SELECT {values}) AS u({names})"
        arrays = ", ".join(f"${next(params)}::{cast}[]" for _, cast in columns)
        if ordered:
            return f"unnest({arrays}) WITH ORDINALITY AS u({names}, ord)"
        return f"unnest({arrays}) AS u({names})"

    def order(kind: int) -> str:
        return " ORDER BY u.ord" if kind == 2 else ""

    ctes: list[str] = []
    guards: list[str] = []
    if upd:
        ctes.append(
            "upd AS (UPDATE runs AS r SET status = u.status, last_event_id = u.last_event_id, "
            f"event_count = u.event_count, body = u.body FROM {source(_UPD, upd)} "
            "WHERE r.run_id = u.run_id AND r.last_event_id = u.expected RETURNING 1)"
        )
        guards.append("(SELECT count(*) FROM upd)")
    if ins:
        ctes.append(
            f"ins AS (INSERT INTO runs ({_names(_INS)}) SELECT u.* FROM {source(_INS, ins)} "
            "ON CONFLICT (run_id) DO NOTHING RETURNING 1)"
        )
        guards.append("(SELECT count(*) FROM ins)")
    if chk:
        ctes.append(
            f"chk AS (SELECT 1 FROM runs AS r JOIN {source(_CHK, chk)} "
            "ON r.run_id = u.run_id AND r.last_event_id = u.expected)"
        )
        guards.append("(SELECT count(*) FROM chk)")
    if fen:  # the lease rows are locked: a claim moving an epoch waits, or makes this fail
        ctes.append(
            f"fen AS (SELECT 1 FROM leases AS l JOIN {source(_FEN, fen)} "
            "ON l.run_id = u.run_id AND l.epoch = u.epoch FOR SHARE OF l)"
        )
        guards.append("(SELECT count(*) FROM fen)")
    total = f"${next(params)}::int8"
    ctes.append(f"gate AS MATERIALIZED (SELECT ({' + '.join(guards) or '0'}) = {total} AS ok)")
    gate = "gate"
    if events:
        ctes.append(
            "lk AS MATERIALIZED (SELECT g.ok, pg_advisory_xact_lock("
            f"${next(params)}::int8) AS l FROM gate AS g)"
        )
        gate = "lk"
    when = f"WHERE (SELECT ok FROM {gate})"
    if events:
        ctes.append(
            f"ev AS (INSERT INTO events ({_names(_EVENTS)}) SELECT {_names(_EVENTS, 'u.')} "
            f"FROM {source(_EVENTS, events, True)} {when}{order(events)})"
        )
    for name, table, columns, kind, ordered in (
        ("st", "steps", _STEPS, steps, False),
        ("wt", "waits", _WAITS, waits, False),
        ("hk", "hooks", _HOOKS, hooks, True),
    ):
        if kind:
            ctes.append(
                f"{name} AS (INSERT INTO {table} ({_names(columns)}) "
                f"SELECT {_names(columns, 'u.')} FROM {source(columns, kind, ordered)} "
                f"{when}{order(kind) if ordered else ''} "
                f"ON CONFLICT ({columns[0][0]}, {columns[1][0]}) "
                "DO UPDATE SET status = EXCLUDED.status, body = EXCLUDED.body)"
            )
    if annotations:
        ctes.append(
            f"an AS (INSERT INTO annotations ({_names(_ANNOTATIONS)}) "
            f"SELECT {_names(_ANNOTATIONS, 'u.')} FROM {source(_ANNOTATIONS, annotations)} "
            f"{when})"
        )
    if ended:  # an ended run is nobody's to execute: its lease lapses with the write
        ctes.append(
            "le AS (UPDATE leases AS l SET expires_at = now() - interval '1 microsecond' "
            f"FROM {source(_ENDED, ended)} {when} AND l.run_id = u.run_id "
            "AND l.expires_at >= now())"
        )
    signal = ""
    if notify == 1:
        signal = f", pg_notify(${next(params)}::text, ${next(params)}::text) AS notified"
    elif notify == 2:
        channel, payloads = next(params), next(params)
        signal = (
            f", (SELECT count(*) FROM (SELECT pg_notify(${channel}::text, p) "
            f"FROM unnest(${payloads}::text[]) AS p) AS n) AS notified"
        )
    return (
        "WITH "
        + ",\n".join(ctes)
        + f"\nSELECT CASE WHEN g.ok THEN 0 ELSE stale_state() END AS stale{signal} "
        + f"FROM (SELECT ok FROM {gate}) AS g"
    )


def _names(columns: Columns, prefix: str = "") -> str:
    return ", ".join(prefix + name for name, _ in columns)
