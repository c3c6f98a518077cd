"""The batch write path of the PostgreSQL store: loading, planning, guarded writing.

A batch is planned by the shared planner and written by one guarded statement
(``_pg_statement``): if a guard finds a run other than expected, the statement raises a
serialization failure, so nothing is written and the batch is planned again from fresh rows.

:class:`BatchWriter` tries three paths, cheapest first:

1. cached: a batch on runs whose full state the writer keeps (it wrote them lately) is
   planned from the cache and written in one round trip; a stale cache only fails guards;
2. read-then-write: one query loads the runs, entities, token owners, annotation keys and
   leases the plan needs, in one snapshot, then the guarded write;
3. locked: if a guard or a unique index (a hook token, an idempotency key) refused the write,
   the batch is planned again in a transaction holding its runs ``FOR UPDATE``, a bounded
   number of times.

A new run's lease (``NewEvent.claim``) is taken by the same statement. The cached path
assumes no lease on a new id (the common case: one round trip); the statement's guard takes
it only as planned (no lease, this owner's at the planned epoch, or another's lapsed at the
epoch before), else nothing is written and the read-then-write path plans again on the lease
as it is: another owner's live lease refuses that request with ``EntityConflictError``, as in
every store. Liveness is read by the server's clock, the clock the guard goes by, so a plan
and its guard never disagree for long.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Final, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from . import events as ev
from ._pg_schema import FULL_LOAD_EVENTS, LOAD, LOCK_RUNS
from ._pg_statement import write_statement
from .batch import (
    BatchPlan,
    Held,
    Request,
    TokenOwner,
    claiming,
    fenced,
    idempotency_keys,
    plan_batch,
    referenced,
)
from .errors import StoreUnavailableError
from .events import NewEvent
from .rows import entity_from_body
from .state import Hook, Run, RunState, Step, Wait

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
LIVE: Final = datetime.max.replace(tzinfo=UTC)
LAPSED: Final = datetime.min.replace(tzinfo=UTC)
"""A claimed run's lease is planned on as never lapsing or long lapsed: the server's clock
decided which when it was read."""


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
        self._took(plan)
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
            sorted(claiming(requests)),
        )
        epochs: dict[str, int] = {}
        states = {run_id: RunState() for run_id in run_ids}
        whole = set(run_ids)
        owners: dict[str, TokenOwner | None] = dict.fromkeys(tokens)
        existing: set[tuple[str, str, str]] = set()
        held: dict[str, Held] = {}
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
            elif kind == "c":
                held[run_id] = Held(idem, LIVE if full else LAPSED, int(key))
            else:
                existing.add((run_id, key, idem))
        plan = plan_batch(states, requests, datetime.now(UTC), owners, existing, epochs, held)
        await self._execute(conn, plan, {})
        self._remember(states, whole)
        self._epochs.update(epochs)
        self._took(plan)
        return plan

    async def _execute(self, conn: Conn, plan: BatchPlan, checks: dict[str, str]) -> None:
        topics = plan.topics()
        if not (topics or checks):
            return
        statement, args = write_statement(
            plan, checks, self._lock_key, self._channel, self.payloads(topics) if topics else []
        )
        await conn.execute(statement, *args)

    def _took(self, plan: BatchPlan) -> None:
        """Keep the epochs of the leases a committed plan took: the run's next writes, fenced
        with them, need not read them."""
        self._epochs.update((run_id, c.epoch) for run_id, c in plan.claims.items())

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
