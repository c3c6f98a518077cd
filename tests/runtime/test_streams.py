"""Durable streams: written from steps, read from any index, live, across retries."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from persistence import Store
from runtime import (
    Runtime,
    StoreUnavailableError,
    StreamClosedError,
    create_hook,
    get_writable,
    step,
    step_metadata,
    workflow,
)

pytestmark = pytest.mark.anyio


@step
async def produce(namespace: str, count: int) -> int:
    async with get_writable(namespace) as writer:
        for i in range(count):
            await writer.write(f"chunk-{i}".encode() if i % 2 == 0 else {"i": i})
    return count


@step
async def write_after_close(namespace: str) -> str:
    writer = get_writable(namespace)
    await writer.write(b"only")
    await writer.close()
    try:
        await writer.write(b"more")
    except StreamClosedError:
        return "refused"
    return "accepted"


@workflow
async def streaming(namespace: str, count: int) -> int:
    return await produce(namespace, count)


@workflow
async def gated_stream(token: str, count: int) -> int:
    await create_hook(token=token)
    return await produce("", count)


@workflow
async def closing() -> str:
    return await write_after_close("ns")


@step(max_retries=2, retry_delay=0.01)
async def produce_twice() -> str:
    writer = get_writable()
    attempt = step_metadata().attempt
    await writer.write(f"attempt-{attempt}-a")
    if attempt == 1:
        await writer.flush()
        raise RuntimeError("fail after one chunk")
    await writer.write(f"attempt-{attempt}-b")
    await writer.close()
    return "ok"


@workflow
async def retried_stream() -> str:
    return await produce_twice()


@step
async def no_close(count: int) -> None:
    writer = get_writable("open")
    for i in range(count):
        await writer.write(i)


@workflow
async def unclosed(count: int) -> None:
    await no_close(count)


async def read_all(stream) -> list[object]:  # type: ignore[no-untyped-def]
    return [chunk async for chunk in stream]


async def test_readers_from_0_1_and_minus_1(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[streaming]) as rt:
        run = await rt.start(streaming, "ns", 4)
        assert await run.result(timeout=10) == 4
        expected = [b"chunk-0", {"i": 1}, b"chunk-2", {"i": 3}]
        assert await read_all(run.stream("ns")) == expected
        assert await read_all(run.stream("ns", start_index=1)) == expected[1:]
        assert await read_all(run.stream("ns", start_index=-1)) == expected[-1:]
        assert await read_all(run.stream("ns", start_index=-10)) == expected
        assert await run.stream_tail_index("ns") == 3
        assert await run.stream_tail_index("other") == -1
        assert await read_all(run.stream("other")) == []  # the run ended


async def test_a_reader_started_before_the_first_chunk(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[gated_stream]) as rt:
        run = await rt.start(gated_stream, "t-gate", 3)
        got: list[object] = []

        async def reader() -> None:
            async for chunk in run.stream():
                got.append(chunk)

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await anyio.sleep(0.05)
            assert got == []
            with anyio.fail_after(10):
                while True:
                    try:
                        await rt.resume_hook("t-gate", "go")
                        break
                    except Exception:
                        await anyio.sleep(0.01)
        assert got == [b"chunk-0", {"i": 1}, b"chunk-2"]
        assert await run.result(timeout=10) == 3


async def test_write_after_close_raises(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[closing]) as rt:
        run = await rt.start(closing)
        assert await run.result(timeout=10) == "refused"
        assert await read_all(run.stream("ns")) == [b"only"]


async def test_a_retried_step_continues_the_stream(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[retried_stream]) as rt:
        run = await rt.start(retried_stream)
        assert await run.result(timeout=10) == "ok"
        # the failed attempt's chunk stays; the next attempt continues after it
        assert await read_all(run.stream()) == ["attempt-1-a", "attempt-2-a", "attempt-2-b"]


async def test_an_unclosed_stream_ends_with_its_run_and_is_flushed(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[unclosed]) as rt:
        run = await rt.start(unclosed, 50)
        await run.result(timeout=10)
        assert await read_all(run.stream("open")) == list(range(50))


class CountingAppends:
    """A store that counts its appends; the first ``failing`` raise ``StoreUnavailableError``,
    as every append of a SQLite group that failed does."""

    def __init__(self, store: Store, failing: int = 0) -> None:
        self._store = store
        self.appends = 0
        self._failing = failing

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    async def append_chunks(self, *args: object, **kwargs: object) -> object:
        self.appends += 1
        if self.appends <= self._failing:
            raise StoreUnavailableError("the append's group failed (test)")
        return await self._store.append_chunks(*args, **kwargs)  # type: ignore[arg-type]


async def test_many_small_writes_cost_few_commits(shared_store: Store) -> None:
    store = CountingAppends(shared_store)
    async with Runtime(store, workflows=[streaming]) as rt:  # type: ignore[arg-type]
        run = await rt.start(streaming, "many", 500)
        await run.result(timeout=20)
        assert len(await read_all(run.stream("many"))) == 500
    assert store.appends < 100


@step(retry_delay=0.01)
async def writes_unclosed(namespace: str) -> int:
    await get_writable(namespace).write(step_metadata().attempt)
    return step_metadata().attempt  # the end of the step flushes the writer


@workflow
async def unclosed_flushed(namespace: str) -> int:
    return await writes_unclosed(namespace)


async def test_an_append_failing_in_the_end_of_step_flush_retries_the_step(
    shared_store: Store,
) -> None:
    """A writer the step did not close is flushed at its end; an append failing there fails
    the attempt, which is retried as a failure of the body is (not the step for good)."""
    store = CountingAppends(shared_store, failing=1)
    async with Runtime(store, workflows=[unclosed_flushed]) as rt:  # type: ignore[arg-type]
        run = await rt.start(unclosed_flushed, "flushed")
        assert await run.result(timeout=10) == 2
        assert await read_all(run.stream("flushed")) == [2]  # the failed append wrote nothing


async def test_get_writable_outside_a_step_is_refused() -> None:
    with pytest.raises(RuntimeError, match="only be called in a step"):
        get_writable()
    with pytest.raises(TypeError, match="namespace"):
        get_writable(3)  # type: ignore[arg-type]


@step(retry_delay=0.01)
async def closes_then_fails(namespace: str) -> int:
    attempt = step_metadata().attempt
    async with get_writable(namespace) as writer:
        await writer.write(f"attempt {attempt}".encode())
    if attempt == 1:
        raise RuntimeError("died after closing its stream")  # like a crash before its end
    return attempt


@workflow
async def closed_then_retried(namespace: str) -> int:
    return await closes_then_fails(namespace)


async def test_a_failed_attempt_that_closed_its_stream_does_not_close_it(
    shared_store: Store,
) -> None:
    """The close takes effect with the step's end: the retry continues the stream, and
    readers see both attempts' chunks, then the end."""
    async with Runtime(shared_store, workflows=[closed_then_retried]) as rt:
        run = await rt.start(closed_then_retried, "retried")
        assert await run.result(timeout=10) == 2
        with anyio.fail_after(10):
            chunks = [chunk async for chunk in run.stream("retried")]
        assert chunks == [b"attempt 1", b"attempt 2"]
        with anyio.fail_after(10):  # the close is applied just after the step's end is stored
            while not (info := await shared_store.stream_info(run.id, "retried")).closed:
                await anyio.sleep(0.01)
        assert info.tail_index == 1
        completed = [e for e in await run.events() if e.event_type == "step_completed"]
        assert completed[0].data.closes == ("retried",)  # type: ignore[union-attr]


STREAM_CRASH_SCRIPT = """
import asyncio, pathlib, sys
from runtime import Runtime, get_writable, step, workflow

marks = pathlib.Path(sys.argv[2])

@step
async def tell() -> str:
    async with get_writable("out") as writer:
        await writer.write(b"first try" if not marks.joinpath("resume").exists() else b"retry")
    if not marks.joinpath("resume").exists():
        marks.joinpath("closed").write_text("yes")  # closed; the process dies before its end
        await asyncio.sleep(60)
    return "told"

@workflow(name="crash:stream")
async def streamer() -> str:
    return await tell()

async def main() -> None:
    async with Runtime(sys.argv[1], workflows=[streamer]) as rt:
        if sys.argv[3] == "start":
            await rt.start(streamer, run_id="stream-run")
            await asyncio.sleep(60)
        else:
            print(await rt.get_run("stream-run").result(timeout=30))
            print([bytes(c).decode() async for c in rt.get_run("stream-run").stream("out")])

asyncio.run(main())
"""


@pytest.mark.slow
@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
async def test_a_crash_after_a_step_closed_its_stream_does_not_fail_the_run(
    store_url: str, tmp_path: Path
) -> None:
    from ..scripts import kill_when, run, start

    script = tmp_path / "stream_crash.py"
    script.write_text(STREAM_CRASH_SCRIPT)
    marks = tmp_path / "marks"
    marks.mkdir()
    await kill_when(start(script, store_url, str(marks), "start"), marks / "closed")
    (marks / "resume").write_text("yes")
    done = run(script, store_url, str(marks), "finish")
    assert done.stdout.split("\n")[:2] == ["told", "['first try', 'retry']"]


GROUPED_CRASH_SCRIPT = """
import asyncio, json, pathlib, sys, threading, time
from persistence import _sqlite_jobs as jobs
from runtime import (
    Runtime, current_runtime, get_writable, step, step_metadata, workflow, workflow_metadata,
)

url, marks, mode = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
RUNS, CHUNKS = int(sys.argv[4]), int(sys.argv[5])

@step
async def emit(count: int) -> int:
    run = current_runtime().get_run(workflow_metadata().run_id)
    start = await run.stream_tail_index("out") + 1  # written idempotently: after what is stored
    async with get_writable("out") as out:
        for i in range(start, count):
            await out.write([i, step_metadata().attempt])
            await asyncio.sleep(0.001)  # the other runs' writers queue appends meanwhile
    return count

@workflow(name="crash:grouped")
async def streamer(count: int) -> int:
    return await emit(count)

# the writer thread stops between a group's first and second savepoints (once every run is
# started and the group's first stream holds a quarter of its chunks): the process is killed
# there
armed = threading.Event()
group: list[jobs.Append] = []
grouped, one_append = jobs.append_chunk_groups, jobs._append

def hold(conn, appends):
    group[:] = appends
    try:
        return grouped(conn, appends)
    finally:
        group.clear()

def append(conn, *args):
    if armed.is_set() and len(group) > 1 and args == group[1] and group[0][2] >= CHUNKS // 4:
        held = [[run_id, stream, start, len(chunks)] for run_id, stream, start, chunks, _ in group]
        marks.joinpath("held.tmp").write_text(json.dumps(held))
        marks.joinpath("held.tmp").rename(marks / "held")
        time.sleep(60)
    return one_append(conn, *args)

async def main() -> None:
    ids = [f"grouped-{i}" for i in range(RUNS)]
    async with Runtime(url, workflows=[streamer]) as rt:
        if mode == "start":
            await asyncio.gather(*(rt.start(streamer, CHUNKS, run_id=i) for i in ids))
            armed.set()
            await asyncio.sleep(60)
        else:
            for run_id in ids:
                assert await rt.get_run(run_id).result(timeout=30) == CHUNKS
            deadline = time.monotonic() + 10  # streams close once their step's end is stored
            for run_id in ids:
                while not (await rt.store.stream_info(run_id, "out")).closed:
                    assert time.monotonic() < deadline, f"the stream of {run_id} is not closed"
                    await asyncio.sleep(0.01)

if mode == "start":  # before the store opens: its writer takes the grouped form then
    jobs.append_chunk_groups, jobs._append = hold, append
asyncio.run(main())
"""


@pytest.mark.slow
async def test_a_sigkill_inside_a_group_of_appends_loses_and_repeats_no_chunk(
    tmp_path: Path,
) -> None:
    """SQLite: 30 runs stream at once, so the writer commits their appends in groups; the
    process is killed inside a group's transaction, between its first and second savepoints.
    The file has none of that group's appends, and a new process finishes every run: each
    stream holds exactly the chunks 0..n-1 its step wrote (the retry writes from the stored
    tail), the held group's written again by the retry, then its end."""
    import json
    import sqlite3
    from contextlib import closing

    from persistence import codec

    from ..scripts import kill_when, run, start

    runs, count = 30, 200
    db = tmp_path / "grouped.db"
    url = f"sqlite:///{db}"
    script = tmp_path / "grouped_crash.py"
    script.write_text(GROUPED_CRASH_SCRIPT)
    marks = tmp_path / "marks"
    marks.mkdir()
    sizes = (str(runs), str(count))
    await kill_when(start(script, url, str(marks), "start", *sizes), marks / "held")
    held = json.loads((marks / "held").read_text())
    assert len(held) > 1  # a group, held after its first append's savepoint
    query = "SELECT count(*) FROM stream_chunks WHERE run_id = ? AND stream = ? AND idx >= ?"
    with closing(sqlite3.connect(db)) as conn:
        for run_id, stream, first, _ in held:
            assert conn.execute(query, (run_id, stream, first)).fetchone()[0] == 0, run_id
        stored = conn.execute("SELECT count(*) FROM stream_chunks").fetchone()[0]
    assert 0 < stored < runs * count  # killed mid-stream, with chunks already committed

    run(script, url, str(marks), "finish", *sizes)
    rows = (
        "SELECT idx, data, eof FROM stream_chunks WHERE run_id = ? AND stream = 'out' ORDER BY idx"
    )
    with closing(sqlite3.connect(db)) as conn:
        streams = {
            f"grouped-{i}": conn.execute(rows, (f"grouped-{i}",)).fetchall() for i in range(runs)
        }
    for run_id, chunks in streams.items():
        assert [idx for idx, _, _ in chunks] == list(range(count + 1)), run_id
        assert [eof for _, _, eof in chunks] == [0] * count + [1], run_id  # closed, once
        written = [codec.decode(data) for _, data, _ in chunks[:-1]]
        assert [i for i, _ in written] == list(range(count)), run_id
        attempts = [attempt for _, attempt in written]
        assert attempts == sorted(attempts) and set(attempts) <= {1, 2}, run_id
    for run_id, _, first, size in held:
        again = [codec.decode(data)[1] for _, data, _ in streams[run_id][first : first + size]]
        assert again == [2] * size, run_id  # rolled back with its group, written by the retry
