"""The SQLite writer's cache of run states: used when exact, never trusted when stale.

Two stores on one file stand for two processes (each has its own writer connection, so
each one's commits move the other's ``data_version``). A batch planned on a state another
writer has moved since must be decided as on fresh rows: refused by the same guards, no
event lost, no step started twice. A failed transaction must not leave the cache ahead of
the file.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persistence import (
    ConcurrentWriteError,
    EntityConflictError,
    LeaseLostError,
    MemoryStore,
    NewEvent,
    RunExpiredError,
    Store,
    StoreError,
    fold,
)
from persistence import _sqlite_jobs as jobs
from persistence import _sqlite_leases as leases
from persistence import _sqlite_migrations as migrations
from persistence import _sqlite_schema as schema
from persistence import events as ev
from persistence._sqlite_cache import FULL_LOAD_EVENTS, RunCache
from persistence.ids import RUN, new_id
from persistence.sqlite import SqliteStore
from persistence.state import RunState

from .helpers import (
    completed,
    created,
    hook_created,
    run_id,
    started,
    step_completed,
    step_created,
    step_started,
    wait_created,
)
from .test_store_model import outcome_kind, requests_for_run

pytestmark = pytest.mark.anyio

NOW = datetime.now(UTC)


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, SqliteStore]]:
    """Two stores on one file, as two processes would have."""
    path = tmp_path / "shared.db"
    async with SqliteStore(url_of(path)) as first, SqliteStore(url_of(path)) as second:
        yield first, second


async def new_run(store: Store) -> str:
    run = run_id()
    result = await store.create_batch([created(run), started(run)])
    assert result.accepted(0) and result.accepted(1)
    return run


async def refusal(store: Store, request: NewEvent) -> BaseException:
    outcome = (await store.create_batch([request])).outcomes[0]
    assert isinstance(outcome, BaseException), f"{request.event_type} was accepted"
    return outcome


# -- the cache alone (pure) ---------------------------------------------------------------------


def state_of(run: str, *events: NewEvent) -> RunState:
    """The state of a run after these requests (as the planner leaves it)."""
    logged = [
        ev.Event(f"evt_{i:026d}", run, r.event_type, r.correlation_id, r.data, NOW)
        for i, r in enumerate(events, start=1)
    ]
    return fold(logged)


def test_a_state_is_exact_until_another_connection_writes() -> None:
    cache = RunCache()
    state = state_of("r1", created("r1"))
    cache.begin(7)
    cache.remember({"r1": state}, {"r1"}, {"r1": 3})
    cache.begin(7)  # the next transaction: nobody else committed
    assert cache.lookup(["r1", "r2"]) == ({"r1": state}, [], ["r2"])
    assert cache.epochs(["r1", "r2"]) == ({"r1": 3}, ["r2"])
    cache.begin(8)  # someone else committed: check before use, epochs read again
    assert cache.lookup(["r1"]) == ({}, ["r1"], [])
    assert cache.epochs(["r1"]) == ({}, ["r1"])
    assert state.run is not None
    assert cache.confirm("r1", state.run) is state
    assert cache.lookup(["r1"]) == ({"r1": state}, [], [])


def test_a_moved_or_vanished_run_is_dropped_when_checked() -> None:
    cache = RunCache()
    old = state_of("r1", created("r1"))
    moved = state_of("r1", created("r1"), started("r1"))
    cache.begin(1)
    cache.remember({"r1": old, "r2": state_of("r2", created("r2"))}, {"r1", "r2"}, {})
    cache.begin(2)
    assert moved.run is not None
    assert cache.confirm("r1", moved.run) is None
    assert cache.confirm("r2", None) is None
    assert cache.confirm("r3", moved.run) is None
    assert len(cache) == 0


def test_only_whole_unended_runs_are_remembered() -> None:
    cache = RunCache()
    cache.begin(1)
    states = {
        "whole": state_of("whole", created("whole")),
        "part": state_of("part", created("part")),
        "ended": state_of("ended", created("ended"), started("ended"), completed("ended")),
        "none": RunState(),
    }
    cache.remember(states, {"whole", "ended", "none"}, {"ended": 1})
    assert set(cache.lookup(states)[0]) == {"whole"}
    assert cache.epochs(["ended"]) == ({}, ["ended"])


def test_the_cache_keeps_the_runs_written_last_within_its_bound() -> None:
    cache = RunCache(limit=5)
    cache.begin(1)
    for name in ("a", "b", "c"):  # two events each
        cache.remember({name: state_of(name, created(name), started(name))}, {name}, {})
    assert cache.lookup(["a", "b", "c"])[2] == ["a"]  # 6 events > 5: the oldest went
    cache.remember({"b": state_of("b", created("b"), started("b"))}, {"b"}, {})
    cache.remember({"d": state_of("d", created("d"), started("d"))}, {"d"}, {})
    assert cache.lookup(["b", "c", "d"])[2] == ["c"]  # b was written again, c was older


def test_forget_drops_states_and_epochs() -> None:
    cache = RunCache()
    cache.begin(1)
    cache.remember({"r1": state_of("r1", created("r1"))}, {"r1"}, {"r1": 2})
    cache.took({"r2": 5})
    cache.forget(["r1", "r2", "r3"])
    assert cache.lookup(["r1"]) == ({}, [], ["r1"])
    assert cache.epochs(["r1", "r2"]) == ({}, ["r1", "r2"])


def test_lease_epochs_are_bounded_too() -> None:
    cache = RunCache(limit=2)
    cache.took({"a": 1, "b": 1})
    cache.took({"c": 1})
    assert cache.epochs(["a", "b", "c"]) == ({"c": 1}, ["a", "b"])


# -- the write job with a cache ---------------------------------------------------------------


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """The store's writer connection on a fresh file (the jobs run on it directly)."""
    options = schema.parse_url(url_of(tmp_path / "jobs.db"))
    conn = schema.connect(options, writer=True)
    migrations.migrate(conn, options.path)
    try:
        yield conn
    finally:
        conn.close()


def write(conn: Any, cache: RunCache, *requests: NewEvent) -> list[Any]:
    result, _ = jobs.write_batch(conn, cache, list(requests))
    return [outcome_kind(o) for o in result.outcomes]


def reads(conn: sqlite3.Connection, action: Callable[[], object]) -> list[str]:
    """The tables ``action`` read rows of on ``conn``."""
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        action()
    finally:
        conn.set_trace_callback(None)
    tables = ("runs", "steps", "waits", "hooks", "leases")
    return [
        table
        for statement in statements
        if statement.lstrip().upper().startswith("SELECT")
        for table in tables
        if f" {table} " in f" {statement} ".replace("\n", " ")
    ]


def test_a_cached_run_is_planned_without_reading_it(writer: sqlite3.Connection) -> None:
    cache = RunCache()
    run = run_id()
    write(writer, cache, created(run), started(run))
    claimed = leases.claim_each(writer, cache, "w1", [run], 60.0)[0]
    fence = claimed[0].epoch

    def next_step() -> None:
        fenced = step_created(run, "s1")
        batch = [NewEvent(run, fenced.data, "s1", fence=fence), step_started(run, "s1")]
        assert write(writer, cache, *batch) == ["step_created", "step_started"]

    assert reads(writer, next_step) == []


def test_after_another_writer_only_the_run_row_is_checked(
    writer: sqlite3.Connection, tmp_path: Path
) -> None:
    cache = RunCache()
    run, other = run_id(), run_id()
    write(writer, cache, created(run), started(run), step_created(run, "s1"))
    with contextlib.closing(sqlite3.connect(tmp_path / "jobs.db")) as elsewhere:
        elsewhere.execute("INSERT INTO cursors (name, position) VALUES ('c', 1)")
        elsewhere.commit()
    seen = reads(writer, lambda: write(writer, cache, step_started(run, "s1")))
    assert seen == ["runs"]  # unchanged: its steps are not read again
    assert reads(writer, lambda: write(writer, cache, step_completed(run, "s1"))) == []
    write(writer, cache, created(other))
    assert len(cache) == 2


def test_a_run_left_waiting_or_ended_is_not_kept(writer: sqlite3.Connection) -> None:
    cache = RunCache()
    sleeper, hooked, ended, stepping = run_id(), run_id(), run_id(), run_id()
    write(
        writer,
        cache,
        *(r for run in (sleeper, hooked, ended, stepping) for r in (created(run), started(run))),
    )
    assert len(cache) == 4
    write(
        writer,
        cache,
        wait_created(sleeper, "w1", NOW + timedelta(hours=1)),
        hook_created(hooked, "h1", f"{hooked}:tok"),
        completed(ended),
        step_created(stepping, "s1"),
    )
    assert cache.lookup([sleeper, hooked, ended, stepping])[2] == [sleeper, hooked, ended]
    assert write(writer, cache, wait_created(sleeper, "w1", NOW)) == ["EntityConflictError"]


def test_a_long_run_is_read_in_part_and_not_cached(writer: sqlite3.Connection) -> None:
    cache = RunCache()
    run = run_id()
    write(writer, cache, created(run), started(run))
    steps = [step_created(run, f"s{i}", position=i) for i in range(999)]
    write(writer, cache, *steps)  # FULL_LOAD_EVENTS + 1 events
    assert FULL_LOAD_EVENTS == 1000
    fresh = RunCache()  # as after a restart: the run is long
    assert write(writer, fresh, step_started(run, "s7")) == ["step_started"]
    assert len(fresh) == 0
    assert write(writer, fresh, step_started(run, "s7")) == ["step_started"]  # a new attempt
    assert write(writer, fresh, step_created(run, "s7")) == ["EntityConflictError"]


class FailingCommit:
    """The writer connection, but its next COMMIT fails (as a full disk or an I/O error)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.failures = 0

    def execute(self, statement: str, *args: Any) -> sqlite3.Cursor:
        if statement == "COMMIT" and self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("disk I/O error")
        return self.conn.execute(statement, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def test_a_failed_commit_leaves_nothing_cached_ahead_of_the_file(
    writer: sqlite3.Connection,
) -> None:
    cache = RunCache()
    run = run_id()
    conn = FailingCommit(writer)
    write(conn, cache, created(run), started(run), step_created(run, "s1"), step_started(run, "s1"))
    conn.failures = 1
    with pytest.raises(sqlite3.OperationalError):
        write(conn, cache, step_completed(run, "s1"))
    assert not writer.in_transaction
    assert cache.lookup([run]) == ({}, [], [run])
    # Planned again on the file's state: the step is still running, the run not ended.
    assert write(conn, cache, step_completed(run, "s1"), completed(run)) == [
        "step_completed",
        "run_completed",
    ]
    assert write(conn, cache, step_completed(run, "s1")) == ["RunExpiredError"]


async def test_a_write_failing_in_its_transaction_leaves_its_runs_to_be_read_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "trigger.db"
    async with SqliteStore(url_of(path)) as store:
        run = await new_run(store)
        await store.create_batch([step_created(run, "s1"), step_started(run, "s1")])
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute(
                "CREATE TRIGGER no_completion BEFORE INSERT ON events "
                "WHEN NEW.event_type = 'step_completed' "
                "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            )
            conn.commit()
        await store.create(step_created(run, "s2"))  # the cache is exact again
        with pytest.raises(StoreError, match="injected failure"):
            await store.create_batch([step_created(run, "s3"), step_completed(run, "s1")])
        # Nobody else wrote since: the planner's view of s3 must not have outlived the failure.
        assert [
            outcome_kind(o) for o in (await store.create_batch([step_created(run, "s3")])).outcomes
        ] == ["step_created"]
        steps = {s.step_id: s.status.value for s in await store.list_steps(run)}
        assert steps == {"s1": "running", "s2": "pending", "s3": "pending"}
        assert (await store.get_run(run)).event_count == 6


async def test_a_failed_write_on_an_exact_cache_is_planned_again_from_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with SqliteStore(url_of(tmp_path / "fail.db")) as store:
        run = await new_run(store)
        await store.create_batch([step_created(run, "s1"), step_started(run, "s1")])
        real = jobs._write_plan
        calls = 0

        def failing(conn: sqlite3.Connection, plan: Any, known: Any) -> bool:
            nonlocal calls
            calls += 1
            real(conn, plan, known)  # written, then the transaction fails
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(jobs, "_write_plan", failing)
        with pytest.raises(StoreError):
            await store.create_batch([step_completed(run, "s1"), completed(run)])
        monkeypatch.setattr(jobs, "_write_plan", real)
        assert calls == 1
        assert (await store.get_run(run)).status.value == "running"
        result = await store.create_batch([step_completed(run, "s1"), completed(run)])
        assert [outcome_kind(o) for o in result.outcomes] == ["step_completed", "run_completed"]


# -- two writers on one file: a table of interleavings -------------------------------------------


async def test_a_step_completed_by_the_other_writer_is_not_completed_again(
    pair: tuple[SqliteStore, SqliteStore],
) -> None:
    a, b = pair
    run = await new_run(a)
    await a.create_batch([step_created(run, "s1"), step_started(run, "s1")])
    await b.create(step_completed(run, "s1", b"b"))
    assert isinstance(await refusal(a, step_completed(run, "s1", b"a")), EntityConflictError)
    assert (await a.get_step(run, "s1")).output == b"b"


async def test_a_step_created_by_the_other_writer_is_not_created_again(
    pair: tuple[SqliteStore, SqliteStore],
) -> None:
    a, b = pair
    run = await new_run(a)
    await b.create(step_created(run, "s1"))
    assert isinstance(await refusal(a, step_created(run, "s1")), EntityConflictError)
    await a.create(step_started(run, "s1"))  # a sees the step b created
    assert (await b.get_step(run, "s1")).attempt == 1


async def test_a_run_ended_by_the_other_writer_is_not_written_again(
    pair: tuple[SqliteStore, SqliteStore],
) -> None:
    a, b = pair
    run = await new_run(a)
    await a.create_batch([step_created(run, "s1"), step_started(run, "s1")])
    await b.create(completed(run))
    assert isinstance(await refusal(a, step_completed(run, "s1")), RunExpiredError)
    assert isinstance(await refusal(a, completed(run)), EntityConflictError)
    assert len((await a.list_events(run)).items) == 5


async def test_a_conditional_write_after_the_other_writers_event_is_refused(
    pair: tuple[SqliteStore, SqliteStore],
) -> None:
    a, b = pair
    run = await new_run(a)
    last = (await a.get_run(run)).last_event_id
    await b.create(step_created(run, "s1"))
    request = NewEvent(
        run, ev.StepCreated(step_name="s", input=b"", position=1), "s2", if_last_event_id=last
    )
    assert isinstance(await refusal(a, request), ConcurrentWriteError)
    events = [e.correlation_id for e in (await b.list_events(run)).items]
    assert events == [None, None, "s1"]


async def test_a_lease_taken_by_the_other_writer_fences_the_first_out(
    pair: tuple[SqliteStore, SqliteStore],
) -> None:
    a, b = pair
    run = await new_run(a)
    (mine,) = await a.claim_each("wa", [run], 60.0)
    await a.create(
        NewEvent(run, ev.StepCreated(step_name="s", input=b"", position=0), "s1", fence=mine.epoch)
    )
    (theirs,) = await b.claim_runs("wb", 60.0, dead=["wa"])
    assert theirs.epoch == mine.epoch + 1
    late = NewEvent(run, ev.StepStarted(), "s1", fence=mine.epoch)
    assert isinstance(await refusal(a, late), LeaseLostError)
    await b.create(NewEvent(run, ev.StepStarted(), "s1", fence=theirs.epoch))
    assert await a.claim_each("wa", [run], 60.0) == []  # b's lease is live
    assert isinstance(await refusal(a, late), LeaseLostError)


async def test_a_lease_moved_by_the_same_store_fences_its_old_owner_out(
    tmp_path: Path,
) -> None:
    async with SqliteStore(url_of(tmp_path / "own.db")) as store:
        run = await new_run(store)
        (old,) = await store.claim_each("w1", [run], 60.0)
        first = ev.StepCreated(step_name="s", input=b"", position=0)
        await store.create(NewEvent(run, first, "s1", fence=old.epoch))  # epoch now cached
        (new,) = await store.claim_runs("w2", 60.0, dead=["w1"])  # this writer's own commit
        assert new.epoch == old.epoch + 1
        late = NewEvent(run, ev.StepStarted(), "s1", fence=old.epoch)
        assert isinstance(await refusal(store, late), LeaseLostError)
        await store.create(NewEvent(run, ev.StepStarted(), "s1", fence=new.epoch))
        await store.release_leases("w2", [run])
        (third,) = await store.claim_each("w3", [run], 60.0)
        assert third.epoch == new.epoch + 1
        stale = NewEvent(run, ev.StepCompleted(result=b""), "s1", fence=new.epoch)
        assert isinstance(await refusal(store, stale), LeaseLostError)
        await store.create(NewEvent(run, ev.StepCompleted(result=b""), "s1", fence=third.epoch))


async def test_a_hook_token_claimed_by_the_other_writer_conflicts(
    pair: tuple[SqliteStore, SqliteStore],
) -> None:
    a, b = pair
    first, second = await new_run(a), await new_run(a)
    await b.create(hook_created(first, "h1", "tok"))
    result = await a.create_batch([hook_created(second, "h2", "tok")])
    assert [outcome_kind(o) for o in result.outcomes] == ["hook_conflict"]


async def test_a_wait_ended_with_its_run_by_the_other_writer(
    pair: tuple[SqliteStore, SqliteStore],
) -> None:
    a, b = pair
    run = await new_run(a)
    await a.create(wait_created(run, "w1", NOW + timedelta(hours=1)))
    await b.create(completed(run))
    assert [w.status.value for w in await a.list_waits(run)] == ["cancelled"]
    assert isinstance(await refusal(a, wait_created(run, "w2", NOW)), EntityConflictError)


# -- two writers on one file: generated interleavings ---------------------------------------------

interleaving = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 1), requests_for_run, st.booleans()),
    min_size=1,
    max_size=40,
)
"""Per request: which writer sends it, to which run, what, and whether the batch ends there
(a batch goes to the writer of its first request)."""


async def play(
    writers: list[Store], runs: list[str], steps: list[tuple[int, int, Any, bool]]
) -> list[str]:
    kinds: list[str] = []
    batch: list[NewEvent] = []
    writer = 0
    for index, (which, target, (corr, data), cut) in enumerate(steps):
        if not batch:
            writer = which
        if isinstance(data, ev.HookCreated):  # tokens are store-wide: keep examples apart
            data = ev.HookCreated(token=f"{runs[0]}:{data.token}", position=data.position)
        batch.append(NewEvent(runs[target], data, corr))
        if cut or index == len(steps) - 1:
            result = await writers[writer % len(writers)].create_batch(batch)
            kinds.extend(outcome_kind(o) for o in result.outcomes)
            batch = []
    return kinds


async def same_as_model(store: Store, model: Store, run: str) -> None:
    """The run's log and views as the model's (ids and times aside), and its views the fold
    of its own log."""
    log = (await store.list_events(run)).items
    expected = (await model.list_events(run)).items
    assert [(e.event_type, e.correlation_id) for e in log] == [
        (e.event_type, e.correlation_id) for e in expected
    ]
    if not log:
        return
    state = fold(log)
    assert await store.get_run(run) == state.run
    assert {s.step_id: s for s in await store.list_steps(run)} == state.steps
    assert {w.wait_id: w for w in await store.list_waits(run)} == state.waits
    assert {h.hook_id: h for h in await store.list_hooks(run)} == state.hooks


def test_two_writers_decide_every_interleaving_as_one_model(tmp_path: Path) -> None:
    async def body(a: Store, b: Store, steps: list[tuple[int, int, Any, bool]]) -> None:
        runs = [new_id(RUN), new_id(RUN)]
        model = MemoryStore()
        assert await play([a, b], runs, steps) == await play([model], runs, steps)
        for run in runs:
            await same_as_model(a, model, run)
            await same_as_model(b, model, run)

    url = url_of(tmp_path / "interleaved.db")
    with anyio.from_thread.start_blocking_portal() as portal:
        a, b = SqliteStore(url), SqliteStore(url)
        portal.call(a.open)
        portal.call(b.open)

        @settings(
            max_examples=80,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(interleaving)
        def check(steps: list[tuple[int, int, Any, bool]]) -> None:
            portal.call(body, a, b, steps)

        try:
            check()
        finally:
            portal.call(a.close)
            portal.call(b.close)
