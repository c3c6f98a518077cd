"""Cancellation, wake-ups, passivation, recovery after a restart, supervision."""

from __future__ import annotations

import textwrap
import time
import uuid
from pathlib import Path

import anyio
import pytest

from persistence import RunStatus, Store
from persistence.sqlite import SqliteStore
from runtime import Run, RunCancelledError, RunFailedError, Runtime

from ..scripts import kill_when, run, start
from . import workflows as wf

pytestmark = pytest.mark.anyio


async def eventually(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    with anyio.fail_after(timeout):
        while not await predicate():
            await anyio.sleep(0.01)


async def test_cancel_stops_running_steps(shared_store: Store, tmp_path: Path) -> None:
    marker = tmp_path / "cancelled"
    async with Runtime(shared_store, workflows=[wf.cancellable]) as rt:
        run = await rt.start(wf.cancellable, str(marker))

        async def running() -> bool:
            return rt.stats()["running_steps"] == 1

        await eventually(running)
        await run.cancel(reason="changed my mind")
        with pytest.raises(RunCancelledError):
            await run.result(timeout=10)
        await eventually(lambda: _exists(marker))
        assert await run.status() is RunStatus.CANCELLED
        events = await run.events()
        assert events[-1].event_type == "run_cancelled"
        assert events[-1].data.reason == "changed my mind"  # type: ignore[union-attr]
        await run.cancel()  # cancelling an ended run does nothing
        assert (await run.events())[-1] == events[-1]


async def _exists(path: Path) -> bool:
    return path.exists()


async def test_wake_up_ends_a_sleep_now(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[wf.long_sleeper]) as rt:
        run = await rt.start(wf.long_sleeper)

        async def sleeping() -> bool:
            return any(e.event_type == "wait_created" for e in await run.events())

        await eventually(sleeping)
        assert await rt.wake_up(run.id) == 1
        assert await run.result(timeout=10) == "awake"
        assert await rt.wake_up(run.id) == 0


async def test_passivated_run_wakes_on_time(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[wf.sleeper], passivate_after=0.05) as rt:
        run = await rt.start(wf.sleeper, 0.4)

        async def passivated() -> bool:
            return rt.stats()["live_runs"] == 0

        await eventually(passivated, timeout=0.35)
        assert await run.result(timeout=10) == "awake"


async def test_sleep_that_passed_while_down_completes_at_recovery(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[wf.sleeper]) as rt:
        run = await rt.start(wf.sleeper, 0.2)
    await anyio.sleep(0.3)
    async with Runtime(shared_store, workflows=[wf.sleeper]) as rt:
        assert await rt.get_run(run.id).result(timeout=10) == "awake"


async def test_unfinished_steps_continue_after_restart(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[wf.sequential]) as rt:
        run = await rt.start(wf.sequential, 200)
    status = (await shared_store.get_run(run.id)).status
    async with Runtime(shared_store, workflows=[wf.sequential]) as rt:
        assert await rt.get_run(run.id).result(timeout=30) == sum(range(200))
    assert status in (RunStatus.RUNNING, RunStatus.COMPLETED)


async def test_an_actor_that_keeps_crashing_fails_the_run(shared_store: Store) -> None:
    class Broken(Runtime):
        def _program(self, run):  # type: ignore[no-untyped-def]
            if run.run_id.startswith("broken"):
                raise RuntimeError("the program cannot be built")
            return super()._program(run)

    async with Broken(shared_store, workflows=[wf.sequential]) as rt:
        with pytest.raises(RuntimeError, match="cannot be built"):
            await rt.start(wf.sequential, 1, run_id="broken-1")
    async with Runtime(shared_store, role="client") as client:
        await client.start(wf.sequential, 1, run_id="broken-2")
    async with Broken(shared_store, workflows=[wf.sequential]) as rt:
        with pytest.raises(RunFailedError) as failure:
            await rt.get_run("broken-2").result(timeout=10)
    assert failure.value.code == "RUNTIME_ERROR"
    assert "cannot be built" in failure.value.message


CRASH_SCRIPT = textwrap.dedent(
    """
    import asyncio, os, pathlib, sys
    from runtime import Runtime, step, workflow

    marks = pathlib.Path(sys.argv[2])

    @step
    async def one() -> int:
        with marks.joinpath("one").open("a") as f:
            f.write("ran\\n")
        return 1

    @step
    async def two(x: int) -> int:
        with marks.joinpath("two").open("a") as f:
            f.write("ran\\n")
        if not marks.joinpath("resume").exists():
            marks.joinpath("inside-two").write_text("yes")
            await asyncio.sleep(60)
        return x + 1

    @step
    async def three(x: int) -> int:
        return x + 1

    @workflow(name="crash:three_steps")
    async def three_steps() -> int:
        return await three(await two(await one()))

    async def main() -> None:
        async with Runtime(sys.argv[1], workflows=[three_steps]) as rt:
            if sys.argv[3] == "start":
                run = await rt.start(three_steps, run_id="crash-run")
                await asyncio.sleep(60)
            else:
                print(await rt.get_run("crash-run").result(timeout=30))

    asyncio.run(main())
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite"])
async def test_sigkill_inside_step_two_then_a_new_process_finishes(
    kind: str, tmp_path: Path
) -> None:
    from tests.conftest import fresh_url

    url = fresh_url(kind, tmp_path)
    script = tmp_path / "crash.py"
    script.write_text(CRASH_SCRIPT)
    marks = tmp_path / "marks"
    marks.mkdir()
    await kill_when(start(script, url, str(marks), "start"), marks / "inside-two")
    (marks / "resume").write_text("yes")
    began = time.monotonic()
    done = run(script, url, str(marks), "finish")
    assert done.stdout.strip() == "3"
    # the killed process's lease (10 s) was not waited out: its process is gone, and the
    # new one saw that at once (same host)
    assert time.monotonic() - began < 8
    assert (marks / "one").read_text() == "ran\n"
    assert (marks / "two").read_text() == "ran\nran\n"


def test_unique_keys_are_unique() -> None:
    assert uuid.uuid4() != uuid.uuid4()


async def test_an_actor_that_keeps_crashing_is_given_up_and_the_run_failed(
    shared_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in the run's shell: the actor is restarted with a backoff, then given up after
    more than five crashes within a minute; the run fails with the traceback recorded."""
    from actors import effects as fx
    from actors import run_actor

    start_body = run_actor._AT_ONCE[fx.StartBody]
    crashes = []

    def buggy(self: run_actor.RunActor, effect: fx.StartBody) -> None:
        if self.run_id == "crashy":
            crashes.append(1)
            raise RuntimeError("a bug in the shell (test)")
        start_body(self, effect)

    monkeypatch.setitem(run_actor._AT_ONCE, fx.StartBody, buggy)
    async with Runtime(shared_store, workflows=[wf.sequential]) as rt:
        run = await rt.start(wf.sequential, 2, run_id="crashy")
        with pytest.raises(RunFailedError) as failure:
            await run.result(timeout=20)
        other = await rt.start(wf.sequential, 3)
        assert await other.result(timeout=10) == 3  # the rest of the runtime is fine
    error = failure.value
    assert error.code == "RUNTIME_ERROR" and "a bug in the shell" in error.message
    assert error.cause is not None and "buggy" in (error.cause.traceback or "")
    assert len(crashes) == 6


async def test_the_poll_interval_is_the_stores_unless_given(store_url: str) -> None:
    """Waiters re-check often only where other processes' commits are not notified here."""
    expected = {"memory": 30.0, "sqlite": 0.25, "postgresql": 5.0}[store_url.split(":", 1)[0]]
    async with Runtime(store_url, role="client") as rt:
        assert rt.poll_interval == expected
    async with Runtime(store_url, role="client", poll_interval=0.5) as rt:
        assert rt.poll_interval == 0.5


async def test_a_run_here_ended_by_another_process_wakes_its_waiter_at_once(
    tmp_path: Path,
) -> None:
    """A run live here is re-checked rarely (its end is notified here), so its end learnt
    from another writer's log must be notified too: the waiter does not sit out the poll."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    async with Runtime(url, workflows=[wf.sleeper]) as worker:
        run = await worker.start(wf.sleeper, 3600)
        with anyio.fail_after(3):  # the local re-check is 5 s
            async with anyio.create_task_group() as tg:
                tg.start_soon(_cancel_from, url, run.id)
                with pytest.raises(RunCancelledError):
                    await run.result(timeout=30)


async def test_a_runtime_leaving_wakes_the_waiters_of_its_runs(tmp_path: Path) -> None:
    """A waiter on a run of a runtime that leaves is told at once, not after its re-check
    (5 s for a run here)."""
    async with SqliteStore(f"sqlite:///{tmp_path / 'shared.db'}") as store:
        outcome: list[BaseException] = []

        async def wait(run: Run) -> None:
            try:
                await run.result(timeout=30)
            except RuntimeError as error:
                outcome.append(error)

        with anyio.fail_after(3):
            async with (
                anyio.create_task_group() as tg,
                Runtime(store, workflows=[wf.sleeper]) as worker,
            ):
                tg.start_soon(wait, await worker.start(wf.sleeper, 3600))
                await anyio.sleep(0.3)  # the waiter waits
        assert "the runtime is not running" in str(outcome[0])


async def _cancel_from(url: str, run_id: str) -> None:
    """Cancel a run from another store object (on SQLite: as another process would)."""
    await anyio.sleep(0.3)  # the waiter waits first
    async with Runtime(url, role="client") as client:
        await client.cancel(run_id)
