"""Rerun from a step: earlier results kept, that step and later ones run again."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import anyio
import pytest

from persistence import RunStatus, Store
from runtime import RunFailedError, Runtime, StepNotFoundError, annotate, step, workflow
from runtime.cli import main

pytestmark = pytest.mark.anyio
ran: Counter[str] = Counter()


@step
async def fetch(key: str) -> int:
    ran[f"{key}:fetch"] += 1
    return 10


@step
async def score(key: str, base: int) -> int:
    ran[f"{key}:score"] += 1
    annotate("acme.score.value", base + ran[f"{key}:score"])
    if ran[f"{key}:fail"]:
        raise ValueError("scoring is broken")
    return base + ran[f"{key}:score"]


@step
async def publish(key: str, value: int) -> str:
    ran[f"{key}:publish"] += 1
    return f"published {value}"


@workflow
async def pipeline(key: str) -> str:
    base = await fetch(key)
    value = await score(key, base)
    return await publish(key, value)


async def test_rerun_keeps_earlier_results_and_reruns_the_rest(shared_store: Store) -> None:
    k = uuid.uuid4().hex
    async with Runtime(shared_store, workflows=[pipeline]) as rt:
        run = await rt.start(pipeline, k)
        assert await run.result(timeout=10) == "published 11"
        await rt.rerun_from(run.id, score.name)
        assert await run.result(timeout=10) == "published 12"
        steps = await shared_store.list_steps(run.id)
        await rt.rerun_from(run.id, steps[-1].step_id)  # by id: only publish again
        assert await run.result(timeout=10) == "published 12"
        assert (ran[f"{k}:fetch"], ran[f"{k}:score"], ran[f"{k}:publish"]) == (1, 2, 3)
        info = await shared_store.get_run(run.id)
        assert info.generation == 2 and info.status is RunStatus.COMPLETED
        by_attempt = {
            a: [r.value for r in await rt.annotations.list(run.id, attempt=a)] for a in (0, 1, 2)
        }
        assert by_attempt == {0: [11], 1: [12], 2: []}
        types = [e.event_type for e in await run.events()]
        assert types.count("run_rerun") == 2 and types.count("run_completed") == 3


async def test_rerun_a_failed_run_after_a_fix(shared_store: Store) -> None:
    k = uuid.uuid4().hex
    ran[f"{k}:fail"] = 1
    async with Runtime(shared_store, workflows=[pipeline]) as rt:
        run = await rt.start(pipeline, k)
        with pytest.raises(RunFailedError):
            await run.result(timeout=20)
        ran[f"{k}:fail"] = 0
        await rt.rerun_from(run.id, score.name)
        assert (await run.result(timeout=10)).startswith("published")
        assert ran[f"{k}:fetch"] == 1


async def test_unknown_step_changes_nothing(shared_store: Store) -> None:
    k = uuid.uuid4().hex
    async with Runtime(shared_store, workflows=[pipeline]) as rt:
        run = await rt.start(pipeline, k)
        await run.result(timeout=10)
        before = await run.events()
        with pytest.raises(StepNotFoundError, match="no-such-step"):
            await rt.rerun_from(run.id, "no-such-step")
        assert await run.events() == before


def test_rerun_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli-rerun.db'}"
    k = uuid.uuid4().hex

    async def first() -> str:
        async with Runtime(url, workflows=[pipeline]) as rt:
            run = await rt.start(pipeline, k)
            await run.result(timeout=10)
            return run.id

    async def again(run_id: str) -> str:
        async with Runtime(url, workflows=[pipeline]) as rt:
            return str(await rt.get_run(run_id).result(timeout=10))

    run_id = anyio.run(first)
    assert main(["--store", url, "runs", "rerun", run_id, "--from", publish.name]) == 0
    assert main(["--store", url, "runs", "rerun", run_id, "--from", "nope"]) == 1
    assert anyio.run(again, run_id) == "published 11"
    assert ran[f"{k}:publish"] == 2
