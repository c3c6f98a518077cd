"""Builders of event requests for the persistence tests."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

from persistence import Store
from persistence import events as ev
from persistence.events import ErrorInfo, NewEvent
from persistence.ids import RUN, new_id
from persistence.records import BatchResult


def run_id() -> str:
    return new_id(RUN)


def created(run: str, name: str = "wf", payload: bytes = b"\x90") -> NewEvent:
    return NewEvent(run, ev.RunCreated(workflow_name=name, input=payload))


def started(run: str) -> NewEvent:
    return NewEvent(run, ev.RunStarted())


def completed(run: str, output: bytes = b"\xc0") -> NewEvent:
    return NewEvent(run, ev.RunCompleted(output=output))


def failed(run: str, message: str = "boom") -> NewEvent:
    return NewEvent(run, ev.RunFailed(error=ErrorInfo(message=message, code="USER_ERROR")))


def cancelled(run: str) -> NewEvent:
    return NewEvent(run, ev.RunCancelled(reason="test"))


def step_created(run: str, step: str, position: int = 0, name: str = "s") -> NewEvent:
    return NewEvent(run, ev.StepCreated(step_name=name, input=b"\x90", position=position), step)


def step_started(run: str, step: str) -> NewEvent:
    return NewEvent(run, ev.StepStarted(), step)


def step_completed(run: str, step: str, result: bytes = b"\x01") -> NewEvent:
    return NewEvent(run, ev.StepCompleted(result=result), step)


def step_failed(run: str, step: str) -> NewEvent:
    return NewEvent(run, ev.StepFailed(error=ErrorInfo(message="bad", type="ValueError")), step)


def step_retrying(run: str, step: str, retry_after: datetime | None = None) -> NewEvent:
    return NewEvent(
        run, ev.StepRetrying(error=ErrorInfo(message="again"), retry_after=retry_after), step
    )


def wait_created(run: str, wait: str, resume_at: datetime, position: int = 0) -> NewEvent:
    return NewEvent(run, ev.WaitCreated(resume_at=resume_at, position=position), wait)


def wait_completed(run: str, wait: str) -> NewEvent:
    return NewEvent(run, ev.WaitCompleted(), wait)


def hook_created(run: str, hook: str, token: str, position: int = 0) -> NewEvent:
    return NewEvent(run, ev.HookCreated(token=token, position=position), hook)


def hook_received(run: str, hook: str, payload: bytes = b"\x01") -> NewEvent:
    return NewEvent(run, ev.HookReceived(payload=payload), hook)


def hook_disposed(run: str, hook: str) -> NewEvent:
    return NewEvent(run, ev.HookDisposed(), hook)


@dataclass
class Timed:
    """A large batch written while a ticker ran on the loop: its result, when the write
    began and ended, and every tick of the ticker (``perf_counter``)."""

    result: BatchResult
    began: float
    ended: float
    ticks: list[float]


async def batch_beside_ticker(store: Store, run: str, period: float, steps: int = 4000) -> Timed:
    """Write ``steps`` step_created events of ``run`` in one batch while a task ticks every
    ``period`` seconds: how much the loop ran during the write."""
    batch = [step_created(run, f"s{i}", i) for i in range(steps)]
    ticks: list[float] = []
    writing = True

    async def ticker() -> None:
        while writing:
            ticks.append(time.perf_counter())
            await asyncio.sleep(period)

    task = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.01)
    began = time.perf_counter()
    result = await store.create_batch(batch)
    ended = time.perf_counter()
    writing = False
    await task
    return Timed(result, began, ended, ticks)


async def lease_kinds(store: Store) -> tuple[str, str, str, str]:
    """One run of each kind a claim sweep tells apart, as a migration must keep them: an
    ended run whose lease lapsed with its end, a running run ``"a"`` holds, a running run
    never claimed and a pending one never claimed."""
    ended, held, orphan, pending = run_id(), run_id(), run_id(), run_id()
    for run in (ended, held, orphan):
        result = await store.create_batch([created(run), started(run)])
        assert result.accepted(0) and result.accepted(1), result.outcomes
    await store.create(created(pending))
    assert await store.claim_run("a", ended, 30)
    assert await store.claim_run("a", held, 30)
    await store.create(completed(ended))
    return ended, held, orphan, pending
