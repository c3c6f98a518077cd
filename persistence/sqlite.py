"""SqliteStore: the Store protocol on one SQLite file (``sqlite:///path.db``), the default store.

One writer thread owns the only writing connection and runs every write as a
``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction: it loads what the batch planner needs, plans,
writes the plan and commits. A reader thread owns a second connection; in WAL mode its reads
run beside the writer's transactions. Coroutines hand a job to a thread and await a future
that the thread resolves on the event loop with ``call_soon_threadsafe``, so the loop never
waits on SQLite. Notifications of a commit are sent on the loop before the caller resumes.

Several processes (or several stores in one process) may share a file: SQLite's write lock
serialises their transactions, and ``busy_timeout`` bounds how long a writer waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar, TypeVarTuple

from . import _sqlite_schema as sql
from . import events as ev
from .batch import BatchPlan, Request, TokenOwner, idempotency_keys, plan_batch, referenced
from .errors import (
    EntityConflictError,
    RunNotFoundError,
    StoreError,
    StoreUnavailableError,
    StreamClosedError,
)
from .events import Event, NewEvent
from .notify import EVENTS_TOPIC, Notifier, run_topic, stream_topic
from .records import (
    AnnotationFilter,
    AnnotationRecord,
    BatchResult,
    CommittedEvent,
    Page,
    StreamChunk,
    StreamInfo,
)
from .rows import annotation_body, entity_body, entity_from_body, event_data_bytes, micros
from .state import Hook, HookStatus, Run, RunState, RunStatus, Step, Wait
from .store import create_one

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

_Job = tuple[
    Callable[..., Any] | None,
    tuple[Any, ...],
    asyncio.AbstractEventLoop,
    "asyncio.Future[Any]",
    bool,
]


def _settle(
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
    notifier: Notifier,
    topics: Sequence[str],
) -> None:
    """On the loop: send the commit's notifications, then hand the caller its result."""
    if topics:
        notifier.notify(topics)
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class _Worker:
    """A thread that owns one SQLite connection and runs jobs on it, one at a time, in order."""

    def __init__(
        self,
        name: str,
        connect: Callable[[], sqlite3.Connection],
        notifier: Notifier,
        map_error: Callable[[sqlite3.Error], BaseException],
    ) -> None:
        self._connect = connect
        self._notifier = notifier
        self._map_error = map_error
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    async def start(self) -> None:
        """Start the thread and open its connection; raise if the connection fails."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._jobs.put((None, (), loop, ready, False))
        self._thread.start()
        await ready

    def call(self, fn: Callable[[sqlite3.Connection, *Ts], T], *args: *Ts) -> asyncio.Future[T]:
        """Run ``fn(connection, *args)`` on the thread; the future resolves on this loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, args, loop, future, False))
        return future

    def write(
        self,
        fn: Callable[[sqlite3.Connection, *Ts], tuple[T, Sequence[str]]],
        *args: *Ts,
    ) -> asyncio.Future[T]:
        """Like :meth:`call` for a job returning ``(result, topics)``: topics are notified."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, args, loop, future, True))
        return future

    async def stop(self) -> None:
        """Finish the queued jobs, close the connection and end the thread."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._jobs.put((None, (), loop, done, False))
        await done
        self._thread.join()

    def _run(self) -> None:
        fn, _, loop, future, _ = self._jobs.get()
        try:
            conn = self._connect()
        except BaseException as exc:
            self._post(loop, future, None, self._mapped(exc), ())
            return
        self._post(loop, future, None, None, ())
        try:
            while True:
                fn, args, loop, future, notify = self._jobs.get()
                if fn is None:
                    break
                topics: Sequence[str] = ()
                error: BaseException | None = None
                result: Any = None
                try:
                    result = fn(conn, *args)
                    if notify:
                        result, topics = result
                except BaseException as exc:
                    error = self._mapped(exc)
                self._post(loop, future, result, error, topics)
        finally:
            conn.close()
        self._post(loop, future, None, None, ())

    def _mapped(self, exc: BaseException) -> BaseException:
        if isinstance(exc, sqlite3.Error):
            mapped = self._map_error(exc)
            mapped.__cause__ = exc
            return mapped
        return exc

    def _post(
        self,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
        result: Any,
        error: BaseException | None,
        topics: Sequence[str],
    ) -> None:
        with contextlib.suppress(RuntimeError):  # the loop was closed: nobody is waiting
            loop.call_soon_threadsafe(_settle, future, result, error, self._notifier, topics)


class SqliteStore:
    """A Store in one SQLite file; survives restarts and may be shared by several processes.

    URL options: ``synchronous`` = ``full`` (default) | ``normal`` | ``off`` and
    ``busy_timeout`` in milliseconds (default 5000), e.g.
    ``sqlite:///.actorflow/actorflow.db?synchronous=normal``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.options = sql.parse_url(url)
        self.path = self.options.path
        self.schema_version = 0
        self.notifier = Notifier()
        self._writer: _Worker | None = None
        self._reader: _Worker | None = None
        self._lock = asyncio.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the file (creating its directory), switch it to WAL and migrate its schema."""
        async with self._lock:
            if self._writer is not None:
                return
            writer = self._worker("writer", writer=True)
            reader = self._worker("reader", writer=False)
            try:
                await writer.start()
                self.schema_version = await writer.call(sql.migrate, self.path)
                await reader.start()
            except BaseException:
                await _stop_quietly(writer)
                raise
            self._writer, self._reader = writer, reader

    async def close(self) -> None:
        """Let queued jobs finish, then close both connections and end the threads."""
        async with self._lock:
            writer, reader = self._writer, self._reader
            self._writer = self._reader = None
            for worker in (reader, writer):
                if worker is not None:
                    await worker.stop()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _worker(self, role: str, *, writer: bool) -> _Worker:
        def connect() -> sqlite3.Connection:
            try:
                return sql.connect(self.options, writer=writer)
            except OSError as exc:
                raise StoreUnavailableError(
                    f"cannot create the directory of SQLite database {self.path}: {exc}"
                ) from exc

        return _Worker(f"actorflow-sqlite-{role}", connect, self.notifier, self._unavailable)

    def _unavailable(self, exc: sqlite3.Error) -> BaseException:
        """A SQLite failure as a store error naming the file."""
        message = str(exc)
        if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError):
            return StoreError(f"SQLite database {self.path} refused a write: {message}")
        if "locked" in message or "busy" in message:
            return StoreUnavailableError(
                f"SQLite database {self.path} is locked by another connection and stayed so "
                f"for busy_timeout={self.options.busy_timeout_ms} ms ({message}); retry later"
            )
        return StoreUnavailableError(f"SQLite database {self.path} failed: {message}")

    def _w(self) -> _Worker:
        if self._writer is None:
            raise StoreUnavailableError(f"SQLite store {self.path} is not open; call open()")
        return self._writer

    def _r(self) -> _Worker:
        if self._reader is None:
            raise StoreUnavailableError(f"SQLite store {self.path} is not open; call open()")
        return self._reader

    async def connection_settings(self) -> dict[str, object]:
        """The writer connection's journal mode, synchronous level and busy timeout."""
        return await self._w().call(sql.settings)

    # -- writes ------------------------------------------------------------------------------

    async def create(self, event: NewEvent) -> Event:
        """Append one event; raise the state machine's error if it is refused."""
        return await create_one(self, event)

    async def create_batch(self, requests: Sequence[Request]) -> BatchResult:
        """Append events and annotations in one transaction (see ``Store.create_batch``)."""
        return await self._w().write(write_batch, list(requests))

    async def append_chunks(
        self, run_id: str, stream: str, start_index: int, chunks: Sequence[bytes], close: bool
    ) -> StreamInfo:
        """Append chunks at the stream's next index, optionally closing it, atomically."""
        return await self._w().write(
            append_chunks, run_id, stream, start_index, list(chunks), close
        )

    async def save_cursor(self, name: str, position: int) -> None:
        """Store a subscriber's position durably."""
        await self._w().write(save_cursor, name, position)

    # -- reads -------------------------------------------------------------------------------

    async def list_events(
        self, run_id: str, *, after: str | None = None, limit: int | None = None
    ) -> Page[Event]:
        """A run's events in log order, after the event id ``after``."""
        return await self._r().call(sql.list_events, run_id, after, limit)

    async def get_run(self, run_id: str) -> Run:
        """The run, or ``RunNotFoundError``."""
        return await self._r().call(sql.get_run, run_id)

    async def list_runs(
        self,
        *,
        status: RunStatus | Sequence[RunStatus] | None = None,
        workflow_name: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Run]:
        """Runs, newest first, filtered by status and workflow name."""
        return await self._r().call(sql.list_runs, status, workflow_name, limit, cursor)

    async def get_step(self, run_id: str, step_id: str) -> Step:
        """The step, or ``StepNotFoundError``."""
        return await self._r().call(sql.get_step, run_id, step_id)

    async def list_steps(self, run_id: str) -> list[Step]:
        """A run's steps in call order."""
        return await self._r().call(sql.list_steps, run_id)

    async def list_waits(self, run_id: str) -> list[Wait]:
        """A run's waits in call order."""
        return await self._r().call(sql.list_waits, run_id)

    async def due_waits(self, before: datetime, limit: int = 1000) -> list[Wait]:
        """Pending waits due at or before ``before``, earliest first."""
        return await self._r().call(sql.due_waits, before, limit)

    async def get_hook(self, token: str) -> Hook:
        """The live hook holding ``token``, or ``HookNotFoundError``."""
        return await self._r().call(sql.get_hook, token)

    async def list_hooks(self, run_id: str) -> list[Hook]:
        """A run's hooks in call order, live or not."""
        return await self._r().call(sql.list_hooks, run_id)

    async def read_chunks(
        self, run_id: str, stream: str, start_index: int = 0, limit: int = 1000
    ) -> list[StreamChunk]:
        """Chunks from ``start_index`` on, in index order, the close marker included."""
        return await self._r().call(sql.read_chunks, run_id, stream, start_index, limit)

    async def stream_info(self, run_id: str, stream: str) -> StreamInfo:
        """The stream's tail index (-1 when empty) and whether it is closed."""
        return await self._r().call(sql.stream_info, run_id, stream)

    async def list_annotations(
        self, run_id: str, filters: AnnotationFilter | None = None
    ) -> list[AnnotationRecord]:
        """A run's annotations, by creation time then id, filtered."""
        return await self._r().call(sql.list_annotations, run_id, filters or AnnotationFilter())

    async def read_committed(
        self, after: int, limit: int = 1000, types: Sequence[str] | None = None
    ) -> list[CommittedEvent]:
        """Events of all runs in commit order, from position ``after`` (exclusive)."""
        wanted = list(types) if types is not None else None
        return await self._r().call(sql.read_committed, after, limit, wanted)

    async def get_cursor(self, name: str) -> int:
        """A subscriber's stored position (0 if it has none)."""
        return await self._r().call(sql.get_cursor, name)


# -- the write path (runs on the writer thread) -------------------------------------------------

_RELEASING = (ev.RunCompleted, ev.RunFailed, ev.RunCancelled, ev.RunRerun)


def write_batch(conn: sqlite3.Connection, requests: list[Request]) -> tuple[BatchResult, list[str]]:
    """Load, plan and write one batch in one transaction; the result and topics to notify."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        states, owners, keys = _load(conn, requests)
        plan = plan_batch(states, requests, datetime.now(UTC), owners, keys)
        wrote = _write_plan(conn, plan)
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    topics = [*(run_topic(r) for r in plan.runs), EVENTS_TOPIC] if wrote else []
    return plan.result(), topics


def _load(
    conn: sqlite3.Connection, requests: list[Request]
) -> tuple[dict[str, RunState], dict[str, TokenOwner | None], set[tuple[str, str, str]]]:
    """What the planner needs: the batch's runs and entities, token owners, stored keys."""
    run_ids, entities, tokens = referenced(requests)
    released = {
        r.run_id for r in requests if isinstance(r, NewEvent) and isinstance(r.data, _RELEASING)
    }
    pairs = [(run_id, key) for run_id, keys in entities.items() for key in keys]
    states = {run_id: RunState() for run_id in run_ids}
    for kind, run_id, body in sql.load_rows(conn, list(run_ids), pairs, list(released)):
        state = states[run_id]
        if kind == sql.RUN_ROW:
            state.run = entity_from_body(Run, body, run_id)
        elif kind == sql.STEP_ROW:
            step = entity_from_body(Step, body, run_id)
            state.steps[step.step_id] = step
        elif kind == sql.WAIT_ROW:
            wait = entity_from_body(Wait, body, run_id)
            state.waits[wait.wait_id] = wait
        else:
            hook = entity_from_body(Hook, body, run_id)
            state.hooks[hook.hook_id] = hook
    owners: dict[str, TokenOwner | None] = dict.fromkeys(tokens)
    for token, run_id, hook_id, position in sql.token_owners(conn, list(tokens)):
        owners[token] = TokenOwner(run_id, hook_id, position)
    wanted = idempotency_keys(requests)
    keys = sql.stored_keys(conn, list(wanted)) if wanted else set()
    return states, owners, keys


def _write_plan(conn: sqlite3.Connection, plan: BatchPlan) -> bool:
    """Insert the plan's events and annotations, upsert its entities; whether it wrote."""
    if plan.events:
        conn.executemany(
            sql.INSERT_EVENT,
            [
                (
                    e.event_id,
                    e.run_id,
                    e.event_type,
                    e.correlation_id,
                    event_data_bytes(e),
                    micros(e.created_at),
                    e.spec_version,
                )
                for e in plan.events
            ],
        )
    if plan.runs:
        conn.executemany(
            sql.UPSERT_RUN,
            [
                (r.run_id, r.workflow_name, r.status.value, micros(r.created_at), entity_body(r))
                for r in plan.runs.values()
            ],
        )
    if plan.steps:
        conn.executemany(
            sql.UPSERT_STEP,
            [
                (s.run_id, s.step_id, s.generation, s.position, s.status.value, entity_body(s))
                for s in plan.steps.values()
            ],
        )
    if plan.waits:
        conn.executemany(
            sql.UPSERT_WAIT,
            [
                (
                    w.run_id,
                    w.wait_id,
                    w.status.value,
                    micros(w.resume_at),
                    w.generation,
                    w.position,
                    entity_body(w),
                )
                for w in plan.waits.values()
            ],
        )
    if plan.hooks:
        # Released hooks first, so a token they free is free before a new claim is written.
        hooks = sorted(plan.hooks.values(), key=lambda h: h.status is HookStatus.ACTIVE)
        conn.executemany(
            sql.UPSERT_HOOK,
            [
                (
                    h.run_id,
                    h.hook_id,
                    h.token,
                    h.status.value,
                    h.generation,
                    h.position,
                    entity_body(h),
                )
                for h in hooks
            ],
        )
    rows = list(plan.annotation_rows)
    if rows:
        conn.executemany(
            sql.INSERT_ANNOTATION,
            [
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
                    micros(a.created_at),
                    annotation_body(a),
                )
                for a in rows
            ],
        )
    return bool(plan.events or rows)


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
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return StreamInfo(start_index + len(chunks) - 1, close), [stream_topic(run_id, stream)]


def save_cursor(conn: sqlite3.Connection, name: str, position: int) -> tuple[None, list[str]]:
    """Store a subscriber's position (one autocommit statement)."""
    conn.execute(sql.UPSERT_CURSOR, (name, position))
    return None, []


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


async def _stop_quietly(worker: _Worker) -> None:
    """Stop a worker that may never have started."""
    if worker._thread.is_alive():
        await worker.stop()
