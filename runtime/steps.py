"""Running step bodies: concurrency limit, timeouts, retries, and the report to the run.

Each attempt runs as a task in the runtime's task group, under ``max_concurrent_steps``.
Its outcome is classified here, where the step's options are known: ``completed`` (the
result encoded), ``retry`` (when and why) or ``failed`` (``FatalError``, an exhausted retry
budget, a result that cannot be encoded, an unknown step). The run actor only records it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from typing import Any

import anyio

from actors.clock import SYSTEM_CLOCK, Clock
from actors.messages import StepFinished, StepWork
from persistence import ErrorInfo, codec

from .context import StepContext, StepMetadata, WorkflowMetadata, runtime_context, step_context
from .durations import seconds_until
from .errors import (
    USER_ERROR,
    FatalError,
    RetryableError,
    SerializationError,
    StepNotRegisteredError,
    StepTimeoutError,
)
from .program import error_info
from .registry import StepFunction, find_step
from .telemetry import NO_TRACE, AttemptTrace

log = logging.getLogger("actorflow.steps")

StepHook = Callable[[StepWork, StepContext], AbstractContextManager[AttemptTrace]]
"""Called around an attempt by telemetry: a context manager yielding its trace."""


class StepRunner:
    """The runtime's step executor (implements ``actors.run_actor.StepExecutor``)."""

    def __init__(
        self,
        deliver: Callable[[str, object], object],
        limit: int,
        runtime: Any = None,
        around: StepHook | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if limit < 1:
            raise ValueError(f"max_concurrent_steps must be at least 1, got {limit}")
        self._deliver = deliver
        self._limit = asyncio.Semaphore(limit)
        self._runtime = runtime
        self._around = around
        self._clock = clock
        self._running: dict[str, dict[str, tuple[int, asyncio.Task[None]]]] = {}
        self._closed = False

    def running_count(self) -> int:
        return sum(
            1 for steps in self._running.values() for _, task in steps.values() if not task.done()
        )

    def running_names(self) -> list[str]:
        """What is running, as ``step <name> of <run id>`` (for messages)."""
        return sorted(
            task.get_name()
            for steps in self._running.values()
            for _, task in steps.values()
            if not task.done()
        )

    def in_flight(self, run_id: str) -> dict[str, int]:
        return {step: attempt for step, (attempt, _) in self._running.get(run_id, {}).items()}

    def start(self, work: StepWork) -> None:
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(
            self._run(work), name=f"step {work.step_name} of {work.run_id}"
        )
        self._running.setdefault(work.run_id, {})[work.step_id] = (work.attempt, task)

    def acknowledge(self, run_id: str, step_id: str, attempt: int) -> None:
        steps = self._running.get(run_id)
        if steps is not None and steps.get(step_id, (0, None))[0] == attempt:
            del steps[step_id]
            if not steps:
                del self._running[run_id]

    def cancel(self, run_id: str) -> None:
        for _, task in self._running.pop(run_id, {}).values():
            task.cancel()

    async def stop(self, grace: float, cancelled_wait: float = 1.0) -> set[str]:
        """The runtime is leaving: start nothing more; let running attempts finish within
        ``grace`` seconds, then cancel them and wait ``cancelled_wait`` more. The run ids of
        attempts that ignored the cancellation (their leases must lapse, not be released)."""
        self._closed = True
        with anyio.move_on_after(grace):
            while self._tasks():
                await asyncio.wait(self._tasks(), return_when=asyncio.FIRST_COMPLETED)
        for task in self._tasks():
            task.cancel()
        with anyio.move_on_after(cancelled_wait):
            while self._tasks():
                await asyncio.wait(self._tasks(), return_when=asyncio.FIRST_COMPLETED)
        stuck = {
            run_id
            for run_id, steps in self._running.items()
            for _, task in steps.values()
            if not task.done()
        }
        for run_id in sorted(stuck):
            log.warning(
                "a step of run %s ignored its cancellation; it is left running and its lease "
                "will lapse",
                run_id,
            )
        return stuck

    def _tasks(self) -> set[asyncio.Task[None]]:
        """The attempts still running (an ended one stays known until acknowledged)."""
        return {
            task
            for steps in self._running.values()
            for _, task in steps.values()
            if not task.done()
        }

    async def _run(self, work: StepWork) -> None:
        async with self._limit:
            if self._closed:
                return  # the runtime is leaving: the attempt never ran (the next owner runs it)
            try:
                outcome = await self._attempt(work)
            except Exception as error:  # a bug here must not leave the run waiting forever
                log.exception("running step %s of run %s failed", work.step_name, work.run_id)
                outcome = _failed(work, error, ())
        self._deliver(work.run_id, outcome)  # stays in flight until the run acknowledges it

    async def _attempt(self, work: StepWork) -> StepFinished:
        try:
            step = find_step(work.step_name)
        except StepNotRegisteredError as error:
            return _failed(work, error, ())
        if work.attempt > step.max_retries + 1:
            exhausted = RuntimeError(
                f"step {step.name!r} exceeded its {step.max_retries + 1} attempt(s) "
                "(attempts that never reported, e.g. in a process that died, count too)"
            )
            return _failed(work, exhausted, ())
        what = f"step {step.name!r}"
        try:
            args, kwargs = step.signature.decode(work.input, what)
        except SerializationError as error:
            return _failed(work, error, ())
        context = StepContext(
            step=StepMetadata(work.step_name, work.step_id, work.attempt, work.started_at),
            workflow=WorkflowMetadata(work.workflow_name, work.run_id, work.run_started_at),
            runtime=self._runtime,
            generation=work.generation,
        )
        token = step_context.set(context)
        runtime_token = runtime_context.set(self._runtime)
        try:
            return await self._body(work, step, context, args, kwargs)
        finally:
            step_context.reset(token)
            runtime_context.reset(runtime_token)

    async def _body(
        self,
        work: StepWork,
        step: StepFunction[Any, Any],
        context: StepContext,
        args: list[Any],
        kwargs: dict[str, Any],
    ) -> StepFinished:
        around = self._around(work, context) if self._around is not None else nullcontext(NO_TRACE)
        with around as attempt:
            try:
                result = await self._call(step, args, kwargs)
                await _flush_streams(context)  # a chunk not stored fails the attempt
            except FatalError as error:
                attempt.failed(error)
                return _failed(work, error, context.annotations, context.closes)
            except Exception as error:
                attempt.failed(error)
                finished = self._retry_or_fail(work, step, error, context)
                if finished.retry_after is not None:
                    delay = (finished.retry_after - self._clock.now()).total_seconds()
                    attempt.retrying(max(0.0, delay))
                return finished
            try:
                encoded = codec.encode(result, where=f"the result of step {step.name!r}")
            except SerializationError as error:
                attempt.failed(error)
                return _failed(work, error, context.annotations, context.closes)
        return StepFinished(
            work.step_id,
            work.attempt,
            "completed",
            result=encoded,
            annotations=tuple(context.annotations),
            closes=tuple(context.closes),
        )

    @staticmethod
    async def _call(step: StepFunction[Any, Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
        if step.timeout is None:
            return await step.fn(*args, **kwargs)
        try:
            with anyio.fail_after(step.timeout):
                return await step.fn(*args, **kwargs)
        except TimeoutError:
            raise StepTimeoutError(
                f"step {step.name!r} ran longer than its timeout of {step.timeout} s"
            ) from None

    def _retry_or_fail(
        self,
        work: StepWork,
        step: StepFunction[Any, Any],
        error: Exception,
        context: StepContext,
    ) -> StepFinished:
        annotations = context.annotations
        if work.attempt >= step.max_retries + 1:
            return _failed(work, error, annotations, context.closes)
        now = self._clock.now()
        after = error.retry_after if isinstance(error, RetryableError) else None
        delay = seconds_until(after, now, step.retry_delay)
        return StepFinished(
            work.step_id,
            work.attempt,
            "retry",
            error=error_info(error, USER_ERROR),
            retry_after=now + timedelta(seconds=delay),
            annotations=tuple(annotations),
        )


def _failed(
    work: StepWork, error: BaseException, annotations: Any, closes: Iterable[str] = ()
) -> StepFinished:
    info: ErrorInfo = error_info(error, USER_ERROR)
    return StepFinished(
        work.step_id,
        work.attempt,
        "failed",
        error=info,
        annotations=tuple(annotations),
        closes=tuple(closes),
    )


async def _flush_streams(context: StepContext) -> None:
    for writer in list(context.streams.values()):
        flush = getattr(writer, "flush", None)
        if flush is not None:
            await flush()
