"""``actorflow worker MODULE`` in a process of its own: SIGTERM drains it, ``--concurrency``
caps the runs it holds, and it hosts exactly the workflows of its module.

The worker runs as the console script does (the current directory is not on the path), in the
directory of a module written by the test: it finds the module only because it puts the
current directory on the path itself. Its steps mark their start and end in files, so what ran
is counted outside the engine.
"""

from __future__ import annotations

import signal
import subprocess
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path

import anyio
import pytest

from persistence import RunStatus, Store
from runtime import HookNotFoundError, Runtime

from ..scripts import start_cli

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.parametrize("store_kind", ["sqlite", "postgres"]),
]

FLOWS = textwrap.dedent(
    '''
    import asyncio
    import pathlib

    import elsewhere  # a module with a workflow of its own, which `worker flows` must not host
    from runtime import create_hook, step, workflow

    MARKS = pathlib.Path(__file__).parent / "marks"


    def mark(name: str) -> int:
        """Append a line to the mark file ``name``; how many lines it has now."""
        path = MARKS / name
        with path.open("a") as f:
            f.write("x\\n")
        return len(path.read_text().splitlines())


    @step(name="flows:slow")
    async def slow(seconds: float) -> str:
        if mark("start") == 1:  # the first attempt takes its time, a later one does not
            await asyncio.sleep(seconds)
        mark("end")
        return "slow"


    @step(name="flows:after")
    async def after(value: str) -> str:
        mark("after")
        return value + ", then after"


    @workflow(name="flows:two_steps")
    async def two_steps(seconds: float) -> str:
        return await after(await slow(seconds))


    @workflow(name="flows:gated")
    async def gated(token: str) -> object:
        return await create_hook(token=token)
    '''
)

ELSEWHERE = textwrap.dedent(
    """
    from runtime import workflow


    @workflow(name="elsewhere:flow")
    async def flow() -> None:
        return None
    """
)

HOSTED = ("flows:gated", "flows:two_steps")
LEASE = 10.0  # the worker's lease (the Runtime default): a run whose lease lapses waits this


@pytest.fixture
def here(tmp_path: Path) -> Path:
    """A directory with the worker's module ``flows`` (and ``elsewhere``, which it imports)."""
    (tmp_path / "flows.py").write_text(FLOWS)
    (tmp_path / "elsewhere.py").write_text(ELSEWHERE)
    (tmp_path / "marks").mkdir()
    return tmp_path


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """The worker processes a test starts; any still running at its end are killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def worker(
    url: str, here: Path, processes: list[subprocess.Popen[str]], *options: str
) -> subprocess.Popen[str]:
    """Start ``actorflow --store URL worker flows OPTIONS`` in ``here``."""
    process = start_cli("--store", url, "worker", "flows", *options, cwd=here)
    processes.append(process)
    return process


async def terminate(process: subprocess.Popen[str], timeout: float = 30) -> tuple[float, str]:
    """SIGTERM ``process``; the seconds it took to exit (with status 0) and its stdout."""
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    out, err = await anyio.to_thread.run_sync(partial(process.communicate, timeout=timeout))
    took = time.monotonic() - began
    assert process.returncode == 0, f"exit status {process.returncode}: {err}"
    return took, out


def check_output(out: str) -> None:
    """The worker said what it hosts, that it drains on SIGTERM, and that it drained."""
    lines = out.splitlines()
    assert len(lines) == 3, out
    worker_id = lines[0].split()[2]
    assert lines[0].endswith(f": hosting {', '.join(HOSTED)}")
    assert lines[1].startswith(f"actorflow worker {worker_id}: SIGTERM: draining")
    assert lines[2] == f"actorflow worker {worker_id}: drained"


async def until_exists(path: Path, process: subprocess.Popen[str], timeout: float = 30) -> None:
    with anyio.fail_after(timeout):
        while not path.exists():
            assert process.poll() is None, "the worker died on its own"
            await anyio.sleep(0.02)


def lines(path: Path) -> int:
    """How many marks the file ``path`` holds (0 if there is none)."""
    return len(path.read_text().splitlines()) if path.exists() else 0


async def step_events(rt: Runtime, run_id: str) -> Counter[tuple[str, str]]:
    """How many events of each type the run's log holds per step name."""
    names: dict[str | None, str] = {}
    counted: Counter[tuple[str, str]] = Counter()
    for event in await rt.get_run(run_id).events():
        if event.event_type == "step_created":
            names[event.correlation_id] = getattr(event.data, "step_name", "?")
        if event.event_type.startswith("step_"):
            counted[(names.get(event.correlation_id, "?"), event.event_type)] += 1
    return counted


async def assert_released(store: Store, run_id: str) -> None:
    """No worker is listed and nobody holds the run's lease (it was released, not left to
    lapse): a probe can claim it at once."""
    assert await store.list_workers() == []
    lease = await store.claim_run("probe", run_id, 1)
    assert lease is not None, "the drained worker still holds the run's lease"
    await store.release_leases("probe", [run_id])


async def test_sigterm_lets_the_running_step_finish_and_hands_the_run_over_at_once(
    store_url: str, shared_store: Store, here: Path, processes: list[subprocess.Popen[str]]
) -> None:
    marks = here / "marks"
    async with Runtime(shared_store, role="client") as client:
        first = worker(store_url, here, processes, "--grace", "5")
        run = await client.start("flows:two_steps", 1.0)
        await until_exists(marks / "start", first)
        took, out = await terminate(first)
        assert took < 5 + 5  # the step's second and the drain, well within the grace
        check_output(out)
        assert lines(marks / "end") == 1  # the body was not interrupted...
        assert not (marks / "after").exists()  # ...and no new one started while draining
        logged = await step_events(client, run.id)
        assert logged[("flows:slow", "step_completed")] == 1  # its result is recorded
        await assert_released(shared_store, run.id)

        began = time.monotonic()
        second = worker(store_url, here, processes)
        with anyio.fail_after(LEASE - 2):  # not a lapsing lease: at once
            assert await client.get_run(run.id).result(timeout=LEASE) == "slow, then after"
        assert time.monotonic() - began < LEASE - 2
        await terminate(second)
        logged = await step_events(client, run.id)
    assert [lines(marks / name) for name in ("start", "end", "after")] == [1, 1, 1]
    for name in ("flows:slow", "flows:after"):
        assert logged[(name, "step_started")] == logged[(name, "step_completed")] == 1


async def test_a_step_longer_than_the_grace_is_cancelled_and_runs_again_in_the_next_worker(
    store_url: str, shared_store: Store, here: Path, processes: list[subprocess.Popen[str]]
) -> None:
    marks = here / "marks"
    async with Runtime(shared_store, role="client") as client:
        first = worker(store_url, here, processes, "--grace", "0.2")
        run = await client.start("flows:two_steps", 30.0)
        await until_exists(marks / "start", first)
        took, out = await terminate(first)
        assert took < 5  # not the step's 30 s
        check_output(out)
        assert not (marks / "end").exists()  # it was cancelled
        logged = await step_events(client, run.id)
        assert logged[("flows:slow", "step_completed")] == 0
        assert logged[("flows:slow", "step_failed")] == 0
        assert await client.get_run(run.id).status() == RunStatus.RUNNING  # not failed
        await assert_released(shared_store, run.id)

        second = worker(store_url, here, processes)
        with anyio.fail_after(LEASE - 2):
            assert await client.get_run(run.id).result(timeout=LEASE) == "slow, then after"
        await terminate(second)
        logged = await step_events(client, run.id)
    assert [lines(marks / name) for name in ("start", "end", "after")] == [2, 1, 1]
    assert logged[("flows:slow", "step_completed")] == 1
    assert logged[("flows:after", "step_completed")] == 1


async def hooked(rt: Runtime, token: str) -> bool:
    try:
        await rt.get_hook(token)
    except HookNotFoundError:
        return False
    return True


async def until_hooked(
    rt: Runtime, tokens: list[str], process: subprocess.Popen[str], timeout: float = 15
) -> str:
    """The first of ``tokens`` whose hook exists: its run is running in the worker."""
    with anyio.fail_after(timeout):
        while True:
            for token in tokens:
                if await hooked(rt, token):
                    return token
            assert process.poll() is None, "the worker died on its own"
            await anyio.sleep(0.05)


async def when(rt: Runtime, run_id: str, event_type: str) -> datetime:
    (event,) = [e for e in await rt.get_run(run_id).events() if e.event_type == event_type]
    return event.created_at


async def test_concurrency_1_holds_one_run_at_a_time(
    store_url: str, shared_store: Store, here: Path, processes: list[subprocess.Popen[str]]
) -> None:
    async with Runtime(shared_store, role="client") as client:
        runs = {token: (await client.start("flows:gated", token)).id for token in ("a", "b")}
        process = worker(store_url, here, processes, "--concurrency", "1")
        held = await until_hooked(client, ["a", "b"], process)
        other = "b" if held == "a" else "a"
        (listed,) = await shared_store.list_workers()
        assert listed.workflows == HOSTED  # not elsewhere:flow, which the process knows too
        # a worker claims runs nobody holds every fifth of a lease: watch for more than one
        deadline = time.monotonic() + LEASE / 5 * 1.5
        while time.monotonic() < deadline:
            assert await client.get_run(runs[other]).status() == RunStatus.PENDING
            assert not await hooked(client, other)
            await anyio.sleep(0.1)
        assert await client.get_run(runs[held]).status() == RunStatus.RUNNING

        await client.resume_hook(held, "first")
        assert await client.get_run(runs[held]).result(timeout=15) == "first"
        assert await until_hooked(client, [other], process) == other  # its turn now
        await client.resume_hook(other, "second")
        assert await client.get_run(runs[other]).result(timeout=15) == "second"
        later = await when(client, runs[other], "run_started")
        assert later >= await when(client, runs[held], "run_completed")
        await terminate(process)


async def line(process: subprocess.Popen[str], timeout: float = 15) -> str:
    """The next line the worker prints."""
    assert process.stdout is not None
    with anyio.fail_after(timeout):
        return await anyio.to_thread.run_sync(process.stdout.readline, abandon_on_cancel=True)


async def test_a_second_sigterm_stops_a_draining_worker_at_once(
    store_url: str, shared_store: Store, here: Path, processes: list[subprocess.Popen[str]]
) -> None:
    async with Runtime(shared_store, role="client") as client:
        process = worker(store_url, here, processes, "--grace", "60")
        assert (await line(process)).endswith(f": hosting {', '.join(HOSTED)}\n")
        await client.start("flows:two_steps", 60.0)
        await until_exists(here / "marks" / "start", process)
        process.send_signal(signal.SIGTERM)
        assert ": SIGTERM: draining (grace 60 s)" in await line(process)
        process.send_signal(signal.SIGTERM)  # the step has 60 s to go: do not wait for it
        await anyio.to_thread.run_sync(partial(process.wait, timeout=10))
        assert process.returncode == -signal.SIGTERM
