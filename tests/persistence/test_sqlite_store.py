"""What only the SQLite store has: its file, its settings, its threads and its failure modes.

The protocol itself is covered by the conformance suite; these tests look at the file with a
raw ``sqlite3`` connection where the store's own API cannot show what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
import pytest

from persistence import (
    CorruptedDataError,
    InvalidStoreURLError,
    MemoryStore,
    NewEvent,
    RunNotFoundError,
    StoreError,
    StoreUnavailableError,
    store_for,
)
from persistence import _sqlite_migrations as migrations
from persistence import events as ev
from persistence.sqlite import SqliteStore

from .helpers import (
    batch_beside_ticker,
    completed,
    created,
    hook_created,
    run_id,
    started,
    step_created,
    step_started,
)

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


def url_of(path: Path, options: str = "") -> str:
    return f"sqlite:///{path}{options}"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
async def sqlite_store(db_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(url_of(db_path)) as opened:
        yield opened


async def new_run(store: SqliteStore) -> str:
    run = run_id()
    result = await store.create_batch([created(run), started(run)])
    assert result.accepted(0) and result.accepted(1)
    return run


@contextlib.contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain autocommit connection to the store's file, closed on exit."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def table_counts(path: Path) -> dict[str, int]:
    with raw(path) as conn:
        tables = ("runs", "events", "steps", "waits", "hooks", "stream_chunks", "annotations")
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


# -- URL and settings ------------------------------------------------------------------------


async def test_wal_and_synchronous_full_by_default(
    sqlite_store: SqliteStore, db_path: Path
) -> None:
    settings = await sqlite_store.connection_settings()
    assert settings == {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 5000}
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert sqlite_store.schema_version == migrations.SCHEMA_VERSION == 4


async def test_synchronous_and_busy_timeout_options_are_honoured(db_path: Path) -> None:
    async with SqliteStore(url_of(db_path, "?synchronous=normal&busy_timeout=250")) as store:
        settings = await store.connection_settings()
    assert settings["synchronous"] == 1 and settings["busy_timeout"] == 250
    async with SqliteStore(url_of(db_path, "?synchronous=OFF")) as store:
        assert (await store.connection_settings())["synchronous"] == 0


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ("?synchronous=sometimes", "synchronous"),
        ("?busy_timeout=soon", "busy_timeout"),
        ("?busy_timeout=-5", "busy_timeout"),
        ("?synchronous=", "synchronous"),  # an empty value is not the default
        ("?busy_timeout=", "busy_timeout"),
        ("?journal_mode=delete", "journal_mode"),
    ],
)
def test_bad_options_are_refused(db_path: Path, options: str, named: str) -> None:
    with pytest.raises(InvalidStoreURLError, match=named):
        store_for(url_of(db_path, options))


@pytest.mark.parametrize(
    "url",
    ["sqlite://relative.db", "sqlite:///", "sqlite:///x.db?synchronous", "sqlite:///:memory:"],
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidStoreURLError):
        SqliteStore(url)


async def test_parent_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "store.db"
    async with SqliteStore(url_of(path)) as store:
        run = await new_run(store)
    assert path.exists()
    async with SqliteStore(url_of(path)) as store:
        assert (await store.get_run(run)).run_id == run


async def test_relative_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with SqliteStore("sqlite:///.actorflow/actorflow.db") as store:
        await new_run(store)
    assert (tmp_path / ".actorflow" / "actorflow.db").exists()


# -- lifecycle and migrations -------------------------------------------------------------------


async def test_reopening_does_not_rerun_migrations(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with SqliteStore(url_of(db_path)) as store:
        run = await new_run(store)
    with raw(db_path) as conn:
        cookie = conn.execute("PRAGMA schema_version").fetchone()[0]

    class Untouchable(tuple[tuple[int, tuple[str, ...]], ...]):
        def __iter__(self) -> Iterator[tuple[int, tuple[str, ...]]]:
            raise AssertionError("migrations ran on a file already at the current version")

    monkeypatch.setattr(migrations, "MIGRATIONS", Untouchable())
    async with SqliteStore(url_of(db_path)) as store:
        assert store.schema_version == migrations.SCHEMA_VERSION
        assert (await store.get_run(run)).run_id == run
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA schema_version").fetchone()[0] == cookie
        assert conn.execute("PRAGMA user_version").fetchone()[0] == migrations.SCHEMA_VERSION


async def test_stores_opening_a_new_file_together_migrate_it_once(db_path: Path) -> None:
    stores = [SqliteStore(url_of(db_path)) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        assert [s.schema_version for s in stores] == [migrations.SCHEMA_VERSION] * 4
        run = await new_run(stores[0])
        assert (await stores[3].get_run(run)).run_id == run
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_a_newer_schema_is_refused(db_path: Path) -> None:
    async with SqliteStore(url_of(db_path)):
        pass
    with raw(db_path) as conn:
        conn.execute("PRAGMA user_version = 7")
    store = SqliteStore(url_of(db_path))
    with pytest.raises(StoreError, match="upgrade actorflow"):
        await store.open()
    await store.close()


async def test_close_is_idempotent_and_a_closed_store_says_so(db_path: Path) -> None:
    store = SqliteStore(url_of(db_path))
    await store.close()
    await store.open()
    await store.open()
    run = await new_run(store)
    await store.close()
    await store.close()
    with pytest.raises(StoreUnavailableError, match="not open"):
        await store.get_run(run)
    with pytest.raises(StoreUnavailableError, match="not open"):
        await store.create(step_created(run, "s1"))
    await store.open()
    assert (await store.get_run(run)).run_id == run
    await store.close()


async def test_close_lets_queued_writes_finish(db_path: Path) -> None:
    store = SqliteStore(url_of(db_path))
    await store.open()
    run = await new_run(store)
    writes = [asyncio.ensure_future(store.create(step_created(run, f"s{i}", i))) for i in range(20)]
    await asyncio.sleep(0)
    await store.close()
    assert all(w.done() and w.exception() is None for w in writes)
    assert table_counts(db_path)["steps"] == 20


# -- sharing the file ------------------------------------------------------------------------


async def test_a_second_store_on_the_file_sees_committed_writes(db_path: Path) -> None:
    async with SqliteStore(url_of(db_path)) as first, SqliteStore(url_of(db_path)) as second:
        run = await new_run(first)
        assert (await second.get_run(run)).run_id == run
        await second.create(step_created(run, "s1"))
        assert [s.step_id for s in await first.list_steps(run)] == ["s1"]
        assert len(await first.read_committed(0)) == len(await second.read_committed(0)) == 3


@pytest.mark.slow
async def test_a_second_process_sees_committed_writes(db_path: Path) -> None:
    async with SqliteStore(url_of(db_path)) as store:
        run = await new_run(store)
        await store.create(step_created(run, "s1"))
        script = (
            "import asyncio, sys\n"
            "from persistence.sqlite import SqliteStore\n"
            "async def main():\n"
            "    async with SqliteStore(sys.argv[1]) as store:\n"
            "        steps = await store.list_steps(sys.argv[2])\n"
            "        print(','.join(s.step_id for s in steps))\n"
            "        await store.create_batch([])\n"
            "asyncio.run(main())\n"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", script, url_of(db_path), run],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "s1"


async def test_a_locked_file_is_unavailable_and_nothing_is_written(db_path: Path) -> None:
    async with SqliteStore(url_of(db_path, "?busy_timeout=50")) as store:
        run = await new_run(store)
        before = table_counts(db_path)
        with raw(db_path) as locker:
            locker.execute("BEGIN EXCLUSIVE")
            fresh = run_id()
            with pytest.raises(StoreUnavailableError, match=re.escape(str(db_path))) as caught:
                await store.create_batch([created(fresh), step_created(run, "s1")])
            assert "busy_timeout=50" in str(caught.value)
            with pytest.raises(StoreUnavailableError):
                await store.append_chunks(run, "", 0, [b"x"], close=False)
            with pytest.raises(StoreUnavailableError):
                await store.save_cursor("c", 1)
            assert (await store.get_run(run)).run_id == run  # WAL: readers go on
            locker.execute("ROLLBACK")
        assert table_counts(db_path) == before
        with pytest.raises(RunNotFoundError):
            await store.get_run(fresh)
        await store.create(step_created(run, "s1"))  # and the store works again


# -- corrupted rows ----------------------------------------------------------------------------


def insert_event(path: Path, run: str, event_id: str, event_type: str, data: bytes) -> None:
    with raw(path) as conn:
        conn.execute(
            "INSERT INTO events (event_id, run_id, event_type, correlation_id, data, "
            "created_at, spec_version) VALUES (?, ?, ?, NULL, ?, 0, 1)",
            (event_id, run, event_type, data),
        )


@pytest.mark.parametrize(
    ("event_type", "data"),
    [("run_teleported", b"\x80"), ("step_created", b"\xc1garbage")],
)
async def test_a_corrupt_event_row_names_its_run_and_event(
    sqlite_store: SqliteStore, db_path: Path, event_type: str, data: bytes
) -> None:
    run = await new_run(sqlite_store)
    run_before = await sqlite_store.get_run(run)
    bad = "evnt_ZZZZZZZZZZZZZZZZZZZZZZZZZZ"
    insert_event(db_path, run, bad, event_type, data)
    before = table_counts(db_path)
    with pytest.raises(CorruptedDataError) as caught:
        await sqlite_store.list_events(run)
    assert run in str(caught.value) and bad in str(caught.value)
    assert (caught.value.run_id, caught.value.event_id) == (run, bad)
    with pytest.raises(CorruptedDataError, match=bad):
        await sqlite_store.read_committed(0)
    good = await sqlite_store.list_events(run, limit=2)
    assert [e.event_type for e in good.items] == ["run_created", "run_started"]
    assert await sqlite_store.get_run(run) == run_before
    assert table_counts(db_path) == before


async def test_a_corrupt_entity_body_is_reported_and_the_write_refused(
    sqlite_store: SqliteStore, db_path: Path
) -> None:
    run = await new_run(sqlite_store)
    with raw(db_path) as conn:
        conn.execute("UPDATE runs SET body = x'c1c1' WHERE run_id = ?", (run,))
    before = table_counts(db_path)
    with pytest.raises(CorruptedDataError, match=run):
        await sqlite_store.get_run(run)
    with pytest.raises(CorruptedDataError, match=run):
        await sqlite_store.create(step_created(run, "s1"))
    assert table_counts(db_path) == before


async def test_a_runs_row_leaves_its_input_to_its_first_event(
    sqlite_store: SqliteStore, db_path: Path
) -> None:
    """Each write of a run rewrites its row: the row leaves out the input (a megabyte would be
    written again with every step), which ``get_run`` reads from ``run_created``. A row an
    earlier version wrote, input included, reads the same."""
    run = run_id()
    wanted = msgspec.msgpack.encode(b"x" * 100_000)
    made = NewEvent(run, ev.RunCreated(workflow_name="wf", input=wanted))
    await sqlite_store.create_batch([made, started(run)])
    await sqlite_store.create(step_created(run, "s1"))
    with raw(db_path) as conn:
        [(body,)] = conn.execute("SELECT body FROM runs WHERE run_id = ?", (run,)).fetchall()
    assert len(body) < 1000 and msgspec.msgpack.decode(body)["input"] == b""
    got = await sqlite_store.get_run(run)
    assert got.input == wanted and got.event_count == 3
    old = msgspec.msgpack.encode(msgspec.structs.replace(got, input=wanted))
    with raw(db_path) as conn:
        conn.execute("UPDATE runs SET body = ? WHERE run_id = ?", (old, run))
    assert await sqlite_store.get_run(run) == got
    await sqlite_store.create(step_started(run, "s1"))  # written again without it
    assert (await sqlite_store.get_run(run)).input == wanted


async def test_a_steps_row_leaves_its_input_to_its_step_created_event(
    sqlite_store: SqliteStore, db_path: Path
) -> None:
    run = await new_run(sqlite_store)
    wanted = msgspec.msgpack.encode(b"y" * 100_000)
    made = NewEvent(run, ev.StepCreated(step_name="s", input=wanted, position=0), "s1")
    await sqlite_store.create_batch([made, step_started(run, "s1")])
    with raw(db_path) as conn:
        [(body,)] = conn.execute("SELECT body FROM steps WHERE step_id = 's1'").fetchall()
    assert len(body) < 1000 and msgspec.msgpack.decode(body)["input"] == b""
    assert (await sqlite_store.get_step(run, "s1")).input == wanted
    with raw(db_path) as conn:
        conn.execute("DELETE FROM events WHERE event_type = 'step_created'")
    with pytest.raises(CorruptedDataError, match=r"s1.*step_created"):
        await sqlite_store.get_step(run, "s1")
    with pytest.raises(CorruptedDataError, match=r"s1.*step_created"):
        await sqlite_store.list_steps(run)


async def test_a_run_row_without_its_log_is_corrupt_and_named(
    sqlite_store: SqliteStore, db_path: Path
) -> None:
    run = await new_run(sqlite_store)
    with raw(db_path) as conn:
        conn.execute("DELETE FROM events WHERE run_id = ?", (run,))
    with pytest.raises(CorruptedDataError, match=f"{run}.*run_created"):
        await sqlite_store.get_run(run)
    with pytest.raises(CorruptedDataError, match=run):
        await sqlite_store.list_runs()


# -- the write path ---------------------------------------------------------------------------


async def test_a_token_freed_and_claimed_in_one_batch(sqlite_store: SqliteStore) -> None:
    first, second = await new_run(sqlite_store), await new_run(sqlite_store)
    await sqlite_store.create(hook_created(first, "h1", "tok"))
    result = await sqlite_store.create_batch([completed(first), hook_created(second, "h2", "tok")])
    outcomes = [getattr(o, "event_type", o) for o in result.outcomes]
    assert outcomes == ["run_completed", "hook_created"]
    assert (await sqlite_store.get_hook("tok")).run_id == second


async def test_a_huge_batch_is_written_whole(sqlite_store: SqliteStore) -> None:
    runs = [run_id() for _ in range(6000)]  # more ids than one statement may bind
    result = await sqlite_store.create_batch([created(r) for r in runs])
    assert all(result.accepted(i) for i in range(len(runs)))
    again = await sqlite_store.create_batch([step_created(r, "s1") for r in runs])
    assert all(again.accepted(i) for i in range(len(runs)))
    assert len(await sqlite_store.read_committed(0, limit=20_000)) == 12_000


async def test_the_event_loop_runs_while_a_large_batch_commits(sqlite_store: SqliteStore) -> None:
    run = await new_run(sqlite_store)
    timed = await batch_beside_ticker(sqlite_store, run, period=0.002)
    began, ended = timed.began, timed.ended
    assert timed.result.accepted(3999)
    during = [t for t in timed.ticks if began <= t <= ended]
    gaps = [b - a for a, b in zip([began, *during], [*during, ended], strict=True)]
    assert ended - began > 0.02, "the batch was too quick to tell anything"
    assert len(during) >= 3 and max(gaps) < 0.25, (len(during), max(gaps), ended - began)


# -- reads that differ from a naive SQL translation -----------------------------------------


async def test_key_prefix_is_literal_and_case_sensitive(sqlite_store: SqliteStore) -> None:
    from persistence import AnnotationFilter, AttachAnnotations, NewAnnotation

    run = await new_run(sqlite_store)
    keys = ["a_b.x", "axb.y", "A_B.z", "a_b", "a%b.w", "é.q", "éa"]
    rows = tuple(NewAnnotation(key=k, value=b"\x01") for k in keys)
    await sqlite_store.create_batch([AttachAnnotations(run, rows)])

    async def matching(prefix: str) -> set[str]:
        listed = await sqlite_store.list_annotations(run, AnnotationFilter(key_prefix=prefix))
        return {r.key for r in listed}

    assert await matching("a_b.") == {"a_b.x"}
    assert await matching("a%") == {"a%b.w"}
    assert await matching("é") == {"é.q", "éa"}
    assert await matching("") == set(keys)


async def test_stream_reads_match_the_memory_store(sqlite_store: SqliteStore) -> None:
    memory = MemoryStore()
    runs = []
    for store in (memory, sqlite_store):
        run = run_id()
        await store.create_batch([created(run), started(run)])
        await store.append_chunks(run, "s", 0, [b"a", b"b", b"c"], close=False)
        await store.append_chunks(run, "s", 3, [], close=True)
        await store.append_chunks(run, "open", 0, [b"x"], close=False)
        runs.append(run)
    for stream in ("s", "open", "none"):
        for start in range(6):
            for limit in (0, 1, 3, 10):
                mine = await sqlite_store.read_chunks(runs[1], stream, start, limit)
                theirs = await memory.read_chunks(runs[0], stream, start, limit)
                assert [(c.index, c.data, c.eof) for c in mine] == [
                    (c.index, c.data, c.eof) for c in theirs
                ], (stream, start, limit)
        assert await sqlite_store.stream_info(runs[1], stream) == await memory.stream_info(
            runs[0], stream
        )


async def test_last_position_follows_the_log(sqlite_store: SqliteStore) -> None:
    assert await sqlite_store.last_position() == 0
    await new_run(sqlite_store)
    log = await sqlite_store.read_committed(0)
    assert await sqlite_store.last_position() == log[-1].position


async def test_a_version_1_file_is_migrated_to_the_current_version(db_path: Path) -> None:
    with raw(db_path) as conn:
        for statement in migrations.MIGRATIONS[0][1]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
    async with SqliteStore(url_of(db_path)) as store:
        assert store.schema_version == migrations.SCHEMA_VERSION
        run = await new_run(store)
        assert await store.claim_run("w", run, 30)


async def test_appends_grouped_in_one_transaction_answer_each_and_keep_the_good_ones(
    sqlite_store: SqliteStore, db_path: Path
) -> None:
    """The writer commits queued chunk appends together; a refused one (a wrong index, a
    closed stream, no such run) is answered with its error and leaves no row."""
    from persistence import EntityConflictError, StreamClosedError
    from persistence._sqlite_jobs import append_chunk_groups

    run = await new_run(sqlite_store)
    await sqlite_store.append_chunks(run, "closed", 0, [b"x"], close=True)
    with raw(db_path) as conn:
        results = append_chunk_groups(
            conn,
            [
                (run, "a", 0, [b"a0", b"a1"], False),
                (run, "a", 2, [b"a2"], True),  # follows the first, in the same transaction
                (run, "b", 1, [b"b1"], False),  # not the next index
                (run, "closed", 2, [b"y"], False),
                ("wrun_missing", "a", 0, [b"z"], False),
                (run, "b", 0, [b"b0"], False),
            ],
        )
        assert not conn.in_transaction
    ok = [r for r in results if isinstance(r, tuple)]
    assert [(i.tail_index, i.closed) for i, _ in ok] == [(1, False), (2, True), (0, False)]
    assert [type(r) for r in results if not isinstance(r, tuple)] == [
        EntityConflictError,
        StreamClosedError,
        RunNotFoundError,
    ]
    chunks = await sqlite_store.read_chunks(run, "a")
    assert [c.data for c in chunks] == [b"a0", b"a1", b"a2", b""] and chunks[-1].eof
    assert [c.data for c in await sqlite_store.read_chunks(run, "b")] == [b"b0"]
    assert len(await sqlite_store.read_chunks(run, "closed")) == 2  # x and its close marker


async def test_a_failure_of_sqlite_in_a_group_of_appends_writes_none_of_them(
    sqlite_store: SqliteStore, db_path: Path
) -> None:
    from persistence._sqlite_jobs import append_chunk_groups

    run = await new_run(sqlite_store)
    with raw(db_path) as conn:
        conn.execute(
            "CREATE TRIGGER no_b BEFORE INSERT ON stream_chunks WHEN NEW.stream = 'b' "
            "BEGIN SELECT RAISE(ABORT, 'disk trouble (test)'); END"
        )
        with pytest.raises(sqlite3.IntegrityError, match="disk trouble"):
            append_chunk_groups(conn, [(run, "a", 0, [b"a0"], False), (run, "b", 0, [b"b"], False)])
        assert not conn.in_transaction
        conn.execute("DROP TRIGGER no_b")
    assert await sqlite_store.read_chunks(run, "a") == []


async def test_stream_appends_queued_together_share_commits(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 streams appended at once: the writer groups the appends queued behind each other
    into few transactions, and each caller still gets its own answer."""
    from persistence import StreamClosedError
    from persistence import _sqlite_jobs as jobs

    groups: list[int] = []
    grouped = jobs.append_chunk_groups

    def counted(conn: sqlite3.Connection, appends: list[jobs.Append]) -> list[object]:
        groups.append(len(appends))
        return list(grouped(conn, appends))

    monkeypatch.setattr(jobs, "append_chunk_groups", counted)
    async with SqliteStore(url_of(db_path)) as store:
        run = await new_run(store)
        await store.append_chunks(run, "s7", 0, [b"first"], close=True)
        results = await asyncio.gather(
            *(store.append_chunks(run, f"s{i}", 0, [b"x"], close=False) for i in range(50)),
            return_exceptions=True,
        )
        assert isinstance(results[7], StreamClosedError)  # refused alone
        assert all(r.tail_index == 0 for i, r in enumerate(results) if i != 7)  # type: ignore[union-attr]
        assert sum(groups) >= 40 and len(groups) <= 5, groups
        for i in (0, 49):
            assert [c.data for c in await store.read_chunks(run, f"s{i}")] == [b"x"]
        assert [c.data for c in await store.read_chunks(run, "s7")] == [b"first", b""]


async def test_sqlite_failing_inside_a_group_of_appends_fails_each_caller_and_writes_none(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite fails between two savepoints of a group (an I/O error, injected after the first
    append was written): the group's transaction is rolled back, every caller of the group
    gets the error, and the writer goes on with the next job."""
    import threading

    from persistence import _sqlite_jobs as jobs

    groups: list[int] = []
    grouped, append = jobs.append_chunk_groups, jobs._append

    def counted(conn: sqlite3.Connection, appends: list[jobs.Append]) -> list[object]:
        groups.append(len(appends))
        return list(grouped(conn, appends))

    def failing(conn: sqlite3.Connection, *args: object) -> object:
        if args[1] == "s1":
            raise sqlite3.OperationalError("disk I/O error (test)")
        return append(conn, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(jobs, "append_chunk_groups", counted)
    monkeypatch.setattr(jobs, "_append", failing)
    async with SqliteStore(url_of(db_path)) as store:
        run = await new_run(store)
        gate = threading.Event()
        held = store._w().call(lambda conn: gate.wait(10))  # the 50 appends queue behind it
        appends = [
            asyncio.ensure_future(store.append_chunks(run, f"s{i}", 0, [b"x"], close=False))
            for i in range(50)
        ]
        await asyncio.sleep(0)  # each has queued its job
        gate.set()
        assert await held
        gathered = asyncio.gather(*appends, return_exceptions=True)
        results = await asyncio.wait_for(gathered, 10)  # each caller is answered
        assert groups == [50]
        for result in results:
            assert isinstance(result, StoreUnavailableError), result
            assert "disk I/O error (test)" in str(result) and str(db_path) in str(result)
            assert isinstance(result.__cause__, sqlite3.OperationalError)
        for i in range(50):
            assert await store.read_chunks(run, f"s{i}") == [], i  # s0's rows rolled back
        info = await store.append_chunks(run, "s0", 0, [b"again"], close=False)
        assert info.tail_index == 0
