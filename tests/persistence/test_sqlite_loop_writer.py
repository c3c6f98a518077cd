"""The SQLite store with ``?writer=loop``: its transactions on the event loop's thread.

The conformance suite runs on this writer too; these tests look at what differs: where the
jobs run, that callers still take turns, that the loop waits out a transaction, and that the
file stays whole when another writer shares it.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from persistence import (
    InvalidStoreURLError,
    StoreConfigurationError,
    StoreUnavailableError,
    store_for,
)
from persistence import _sqlite_migrations as migrations
from persistence import _sqlite_schema as schema
from persistence.sqlite import SqliteStore

from .helpers import batch_beside_ticker, created, run_id, started, step_created

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


def loop_url(path: Path, more: str = "") -> str:
    return f"sqlite:///{path}?writer=loop{more}"


async def new_run(store: SqliteStore) -> str:
    run = run_id()
    result = await store.create_batch([created(run), started(run)])
    assert result.accepted(0) and result.accepted(1)
    return run


def integrity_and_steps(path: Path) -> tuple[str, int]:
    conn = sqlite3.connect(path)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        return check, conn.execute("SELECT count(*) FROM steps").fetchone()[0]
    finally:
        conn.close()


# -- the option ------------------------------------------------------------------------------


def test_the_writer_option_is_parsed_and_thread_is_the_default(tmp_path: Path) -> None:
    assert schema.parse_url(f"sqlite:///{tmp_path}/a.db").writer == "thread"
    assert schema.parse_url(f"sqlite:///{tmp_path}/a.db?writer=thread").writer == "thread"
    assert schema.parse_url(f"sqlite:///{tmp_path}/a.db?writer=LOOP").writer == "loop"
    both = schema.parse_url(f"sqlite:///{tmp_path}/a.db?synchronous=normal&writer=loop")
    assert (both.writer, both.synchronous) == ("loop", "normal")


@pytest.mark.parametrize("value", ["process", "fast", "loop,thread", ""])
def test_a_bad_writer_is_refused_naming_the_option_and_its_values(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(InvalidStoreURLError, match=r"writer=.*use one of thread, loop"):
        store_for(f"sqlite:///{tmp_path}/a.db?writer={value}")


def test_an_unknown_option_lists_writer_among_the_options(tmp_path: Path) -> None:
    with pytest.raises(InvalidStoreURLError, match=r"writer \(thread, loop\)"):
        store_for(f"sqlite:///{tmp_path}/a.db?writers=loop")


# -- where and when jobs run -----------------------------------------------------------------


async def test_jobs_run_on_the_loop_thread_and_reads_on_the_reader(tmp_path: Path) -> None:
    def where(_: sqlite3.Connection) -> int:
        return threading.get_ident()

    async with SqliteStore(loop_url(tmp_path / "s.db")) as store:
        assert await store._w().call(where) == threading.get_ident()
        assert await store._r().call(where) != threading.get_ident()
    async with SqliteStore(f"sqlite:///{tmp_path / 's.db'}") as store:
        assert await store._w().call(where) != threading.get_ident()


async def test_a_writing_coroutine_still_lets_other_tasks_run(tmp_path: Path) -> None:
    async with SqliteStore(loop_url(tmp_path / "s.db", "&synchronous=off")) as store:
        run = await new_run(store)
        turns = 0
        busy = True

        async def other() -> None:
            nonlocal turns
            while busy:
                turns += 1
                await asyncio.sleep(0)

        task = asyncio.ensure_future(other())
        await asyncio.sleep(0)
        seen = []
        for i in range(20):
            before = turns
            await store.create(step_created(run, f"s{i}", i))
            seen.append(turns - before)
        busy = False
        await task
    assert all(n >= 1 for n in seen), seen


async def test_the_event_loop_waits_while_a_large_batch_commits(tmp_path: Path) -> None:
    async with SqliteStore(loop_url(tmp_path / "s.db")) as store:
        run = await new_run(store)
        timed = await batch_beside_ticker(store, run, period=0.001)
    began, ended = timed.began, timed.ended
    assert timed.result.accepted(3999)
    assert ended - began > 0.02, "the batch was too quick to tell anything"
    # the transaction ran whole in one turn of the loop; the ticker had at most the turn after
    assert len([t for t in timed.ticks if began < t < ended]) <= 1, timed.ticks


async def test_a_closed_loop_writer_says_so(tmp_path: Path) -> None:
    store = SqliteStore(loop_url(tmp_path / "s.db"))
    await store.open()
    writer = store._w()
    await store.close()
    await store.close()
    with pytest.raises(StoreUnavailableError, match="not open"):
        await store.create(step_created(run_id(), "s1"))
    with pytest.raises(StoreUnavailableError, match="closed"):
        await writer.call(migrations.migrate, store.path)


async def test_opening_a_missing_file_read_only_fails_and_creates_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "nested" / "s.db"
    store = SqliteStore(loop_url(path))
    with pytest.raises(StoreConfigurationError, match="no actorflow store"):
        await store.open(create=False)
    assert not path.parent.exists()
    with pytest.raises(StoreUnavailableError, match="not open"):
        await store.get_run(run_id())


async def test_a_directory_that_cannot_be_made_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreConfigurationError):
        await SqliteStore(loop_url(tmp_path / "file" / "s.db")).open()


# -- other writers on the file ---------------------------------------------------------------


async def test_a_locked_file_blocks_the_loop_for_busy_timeout_then_is_unavailable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.005)

    async with SqliteStore(loop_url(path, "&busy_timeout=200")) as store:
        run = await new_run(store)
        locker = sqlite3.connect(path, isolation_level=None)
        task = asyncio.ensure_future(ticker())
        try:
            locker.execute("BEGIN EXCLUSIVE")
            await asyncio.sleep(0.02)
            began = time.perf_counter()
            with pytest.raises(StoreUnavailableError, match="busy_timeout=200"):
                await store.create(step_created(run, "s1"))
            ended = time.perf_counter()
            locker.execute("ROLLBACK")
        finally:
            task.cancel()
            locker.close()
        assert ended - began >= 0.15, ended - began
        assert len([t for t in ticks if began < t < ended]) <= 1  # the loop waited for the lock
        await store.create(step_created(run, "s1"))  # and the store works again
    assert integrity_and_steps(path) == ("ok", 1)


async def test_a_thread_writer_store_and_a_loop_writer_store_share_a_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    async with (
        SqliteStore(loop_url(path)) as on_loop,
        SqliteStore(f"sqlite:///{path}") as on_thread,
    ):
        run = await new_run(on_loop)
        writes = [
            (on_loop if i % 2 else on_thread).create(step_created(run, f"s{i}", i))
            for i in range(60)
        ]
        await asyncio.gather(*writes)
        assert len(await on_thread.list_steps(run)) == len(await on_loop.list_steps(run)) == 60
    assert integrity_and_steps(path) == ("ok", 60)


SECOND_WRITER = """
import asyncio, sys
from persistence.sqlite import SqliteStore
from tests.persistence.helpers import step_created

async def main():
    async with SqliteStore(sys.argv[1]) as store:
        for i in range(int(sys.argv[3])):
            await store.create(step_created(sys.argv[2], f"p{i}", i))

asyncio.run(main())
"""


@pytest.mark.slow
async def test_a_second_process_writing_the_same_file_corrupts_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SqliteStore(loop_url(path)) as store:
        run = await new_run(store)
        other = subprocess.Popen(
            [sys.executable, "-c", SECOND_WRITER, loop_url(path), run, "150"],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            for i in range(150):
                await store.create(step_created(run, f"l{i}", i))
            _, err = await asyncio.to_thread(other.communicate, timeout=60)
        finally:
            if other.poll() is None:
                other.kill()
        assert other.returncode == 0, err
        steps = await store.list_steps(run)
    assert len(steps) == 300
    assert integrity_and_steps(path) == ("ok", 300)
