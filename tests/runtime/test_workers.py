"""Many workers on one PostgreSQL store: leases give each run to one worker at a time."""

from __future__ import annotations

import asyncio
import textwrap
from collections import Counter
from pathlib import Path

import anyio
import pytest

from runtime import Runtime, step, workflow

from ..scripts import kill_when, start

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("store_kind", ["postgres"])]
bodies: Counter[str] = Counter()


@step
async def count(run_key: str, index: int) -> int:
    bodies[f"{run_key}:{index}"] += 1
    await asyncio.sleep(0.005)
    return index


@workflow
async def three(run_key: str) -> int:
    total = 0
    for index in range(3):
        total += await count(run_key, index)
    return total


async def test_two_workers_run_each_step_once(store_url: str) -> None:
    async with (
        Runtime(store_url, workflows=[three], worker_id="w1", lease_seconds=2) as one,
        Runtime(store_url, workflows=[three], worker_id="w2", lease_seconds=2) as two,
        Runtime(store_url, role="client") as client,
    ):
        runs = [await client.start(three, f"k{i}") for i in range(20)]
        with anyio.fail_after(30):
            results = [await client.get_run(r.id).result(timeout=30) for r in runs]
        assert results == [3] * 20
        with anyio.fail_after(5):  # a worker's actor stops just after its end is committed
            while one.stats()["live_runs"] + two.stats()["live_runs"]:
                await anyio.sleep(0.01)
    for i in range(20):
        assert [bodies[f"k{i}:{n}"] for n in range(3)] == [1, 1, 1]
    infos = [await client_info(store_url, r.id) for r in runs]
    assert {i["worker"] for i in infos} <= {"w1", "w2"}


async def client_info(url: str, run_id: str) -> dict[str, object]:
    async with Runtime(url, role="client") as client:
        started = [
            e for e in await client.get_run(run_id).events() if e.event_type == "run_started"
        ]
    return {"worker": started[0].data.worker_id}  # type: ignore[union-attr]


async def test_a_leaving_worker_hands_its_runs_over_at_once(store_url: str) -> None:
    async with Runtime(store_url, role="client") as client:
        async with Runtime(store_url, workflows=[sleeper], worker_id="a", lease_seconds=30) as a:
            run = await a.start(sleeper, 0.5)
        async with Runtime(store_url, workflows=[sleeper], worker_id="b", lease_seconds=30):
            with anyio.fail_after(10):  # not the 30 s of a lapsing lease
                assert await client.get_run(run.id).result(timeout=10) == "awake"


@workflow
async def sleeper(seconds: float) -> str:
    from runtime import sleep

    await sleep(seconds)
    return "awake"


KILLED_WORKER = textwrap.dedent(
    """
    import asyncio, pathlib, sys
    from runtime import Runtime, step, workflow

    marks = pathlib.Path(sys.argv[2])

    @step(name="takeover:one")
    async def one() -> int:
        with marks.joinpath("one").open("a") as f:
            f.write("ran\\n")
        return 1

    @step(name="takeover:two")
    async def two(x: int) -> int:
        marks.joinpath("inside").write_text("yes")
        await asyncio.sleep(60)
        return x + 1

    @workflow(name="takeover:flow")
    async def flow() -> int:
        return await two(await one())

    async def main():
        url = sys.argv[1]
        async with Runtime(url, workflows=[flow], worker_id="doomed", lease_seconds=1) as rt:
            await rt.start(flow, run_id="takeover-run")
            await asyncio.sleep(60)

    asyncio.run(main())
    """
)


@step(name="takeover:one")
async def takeover_one() -> int:
    raise AssertionError("step one ran again after the takeover")


@step(name="takeover:two")
async def takeover_two(x: int) -> int:
    return x + 1


@workflow(name="takeover:flow")
async def takeover_flow() -> int:
    return await takeover_two(await takeover_one())


@pytest.mark.slow
async def test_a_killed_workers_run_is_taken_over_when_its_lease_lapses(
    store_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "worker.py"
    script.write_text(KILLED_WORKER)
    marks = tmp_path / "marks"
    marks.mkdir()
    await kill_when(start(script, store_url, str(marks)), marks / "inside")
    async with Runtime(
        store_url, workflows=[takeover_flow], worker_id="heir", lease_seconds=1
    ) as rt:
        with anyio.fail_after(15):
            assert await rt.get_run("takeover-run").result(timeout=15) == 2
        starts = [
            e for e in await rt.get_run("takeover-run").events() if e.event_type == "step_started"
        ]
    assert (marks / "one").read_text() == "ran\n"
    assert len(starts) == 3  # one, two, and two again in the heir
