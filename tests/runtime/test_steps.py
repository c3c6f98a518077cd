"""Steps: retries, fatal errors, timeouts, failures the workflow catches, bad results."""

from __future__ import annotations

import uuid

import pytest

from persistence import Store
from runtime import RunFailedError, Runtime, step, workflow

from . import workflows as wf

pytestmark = pytest.mark.anyio


def key() -> str:
    return uuid.uuid4().hex


async def test_retries_until_success_and_records_each_retry(shared_store: Store) -> None:
    k = key()
    async with Runtime(shared_store, workflows=[wf.retrying]) as rt:
        run = await rt.start(wf.retrying, k, 2)
        assert await run.result(timeout=10) == f"{k} ok after 3"
        events = await run.events()
    types = [e.event_type for e in events]
    assert types.count("step_retrying") == 2 and types.count("step_started") == 3
    retry = next(e for e in events if e.event_type == "step_retrying")
    assert retry.data.error.type == "ValueError"  # type: ignore[union-attr]
    assert "attempt 1" in retry.data.error.message  # type: ignore[union-attr]
    steps = await shared_store.list_steps(run.id)
    assert steps[0].attempt == 3


async def test_exhausted_retries_fail_the_run(shared_store: Store) -> None:
    k = key()
    async with Runtime(shared_store, workflows=[wf.retrying]) as rt:
        run = await rt.start(wf.retrying, k, 10)
        with pytest.raises(RunFailedError) as failure:
            await run.result(timeout=10)
    assert failure.value.code == "USER_ERROR"
    assert wf.attempts[k] == 4  # max_retries=3: four attempts
    assert "StepFailedError" in (failure.value.cause.type if failure.value.cause else "")


async def test_retryable_error_waits_its_delay(shared_store: Store) -> None:
    k = key()
    async with Runtime(shared_store, workflows=[wf.retry_after_flow]) as rt:
        run = await rt.start(wf.retry_after_flow, k)
        assert await run.result(timeout=10) == 2
        events = await run.events()
    retry = next(e for e in events if e.event_type == "step_retrying")
    restart = [e for e in events if e.event_type == "step_started"][-1]
    assert retry.data.retry_after is not None  # type: ignore[union-attr]
    assert (restart.created_at - retry.created_at).total_seconds() >= 0.04


async def test_fatal_error_is_not_retried_and_can_be_caught(shared_store: Store) -> None:
    k = key()
    async with Runtime(shared_store, workflows=[wf.catches]) as rt:
        run = await rt.start(wf.catches, k)
        result = await run.result(timeout=10)
    assert wf.attempts[k] == 1
    assert result == {
        "name": wf.fatal_step.name,
        "type": "FatalError",
        "message": "no point retrying",
        "attempts": 1,
        "traceback": True,
    }


async def test_max_retries_zero_is_one_attempt(shared_store: Store) -> None:
    k = key()
    async with Runtime(shared_store, workflows=[wf.fails_uncaught]) as rt:
        run = await rt.start(wf.fails_uncaught, k)
        with pytest.raises(RunFailedError, match="KeyError"):
            await run.result(timeout=10)
    assert wf.attempts[k] == 1


async def test_timeout_cancels_the_attempt_and_counts_as_failure(shared_store: Store) -> None:
    k = key()
    async with Runtime(shared_store, workflows=[wf.times_out]) as rt:
        run = await rt.start(wf.times_out, k)
        with pytest.raises(RunFailedError, match="StepTimeoutError"):
            await run.result(timeout=10)
        events = await run.events()
    assert wf.attempts[k] == 2
    failed = next(e for e in events if e.event_type == "step_failed")
    assert failed.data.error.type == "StepTimeoutError"  # type: ignore[union-attr]


@step
async def unencodable_result() -> object:
    return object()


@workflow
async def bad_result() -> str:
    try:
        await unencodable_result()
    except Exception as error:
        return type(error).__name__ + ":" + getattr(error, "error_type", "")
    return "no error"


async def test_result_that_cannot_be_encoded_fails_the_step_at_once(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[bad_result]) as rt:
        run = await rt.start(bad_result)
        assert await run.result(timeout=10) == "StepFailedError:SerializationError"
        events = await run.events()
    assert [e.event_type for e in events].count("step_started") == 1


@workflow
async def bad_step_argument() -> str:
    try:
        await wf.echo(object())
    except Exception as error:
        return type(error).__name__
    return "no error"


async def test_step_argument_that_cannot_be_encoded_raises_at_the_call(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[bad_step_argument]) as rt:
        run = await rt.start(bad_step_argument)
        assert await run.result(timeout=10) == "SerializationError"
        assert not [e for e in await run.events() if e.event_type == "step_created"]


def test_step_options_are_validated() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        step(max_retries=-1)(wf.add.fn)
    with pytest.raises(ValueError, match="timeout"):
        step(timeout=0)(wf.add.fn)

    def plain() -> None: ...

    with pytest.raises(TypeError, match="async def"):
        step(plain)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="async def"):
        workflow(plain)  # type: ignore[arg-type]
