"""``TestRuntime``: the real runtime on a memory store and a virtual clock.

Nothing in a run's time moves unless the test moves it: a sleep of a week, a step's retry
delay or an ``asyncio.timeout`` in workflow code is due once :meth:`TestRuntime.advance` has
moved the clock past it, and the events of that run carry the virtual times, so
``runtime.now()`` in workflow code follows the clock. Everything else (steps, hooks, the
store's rules, replay, passivation) is the real runtime's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from persistence import MemoryStore, RunStatus, Store
from persistence.errors import HookNotFoundError

from ..durations import Duration, resolve_instant
from ..registry import WorkflowFunction
from ..run import HookInfo, RunInfo
from ..runtime import Runtime
from .clock import VirtualClock
from .errors import NotIdleError, StuckError

T = TypeVar("T")

QUIET_TURNS: Final = 5
"""Turns of the event loop in a row with nothing busy before the runtime counts as idle."""


class TestRuntime(Runtime):
    """A :class:`~runtime.Runtime` for tests: a memory store and a virtual clock.

    Use it as the real one (``async with TestRuntime(workflows=[...]) as rt``; ``start``,
    ``get_run``, ``resume_hook``, ``cancel``, ...) and move time with :meth:`advance`.
    ``start`` is the virtual time to begin at (default: now). ``idle_timeout`` is how many
    real seconds :meth:`run_until_idle` and the ``wait_for_*`` methods wait for step bodies
    before they raise :class:`NotIdleError`. ``store`` defaults to a fresh memory store stamped
    by the virtual clock; other options are the real runtime's.
    """

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(
        self,
        workflows: Iterable[WorkflowFunction[Any, Any] | str] | None = None,
        *,
        store: Store | None = None,
        start: datetime | None = None,
        idle_timeout: float = 10.0,
        shutdown_grace: float = 1.0,
        **options: Any,
    ) -> None:
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive, got {idle_timeout}")
        self.virtual_clock = VirtualClock(start)
        if store is None:
            store = MemoryStore(clock=self.virtual_clock.now)
        self.idle_timeout = idle_timeout
        super().__init__(
            store,
            workflows,
            clock=self.virtual_clock,
            shutdown_grace=shutdown_grace,
            **options,
        )

    def now(self) -> datetime:
        """The virtual time."""
        return self.virtual_clock.now()

    async def advance(self, duration: Duration, *, timeout: float | None = None) -> None:
        """Move the clock by ``duration`` (seconds, a timedelta, ``"3d"``) or to a datetime.

        Every durable timer due by then (sleeps, step retry delays, ``asyncio.timeout``,
        passivation) fires in time order, the clock standing at each timer's time while the
        runs it wakes settle, so a sleep that starts while advancing and ends before the target
        fires too. Returns once every run is waiting or done at the target time.
        """
        self._open()
        clock = self.virtual_clock
        if not isinstance(duration, datetime | str | bool) and _negative(duration):
            raise ValueError(f"cannot advance the clock by a negative duration: {duration!r}")
        target = resolve_instant(duration, clock.now())
        if target < clock.now():
            raise ValueError(f"cannot advance the clock back to {target} (it is {clock.now()})")
        await self.run_until_idle(timeout=timeout)
        while (due := clock.next_due()) is not None and due <= target:
            clock.move_to(due)
            await self.run_until_idle(timeout=timeout)
        clock.move_to(target)

    async def run_until_idle(self, *, timeout: float | None = None) -> None:
        """Return when every run is waiting (on a timer, a hook, a retry delay) or done.

        :class:`NotIdleError` if something is still busy after ``timeout`` real seconds
        (default ``idle_timeout``), naming what.
        """
        await self._settle(timeout, None)

    async def wait_for_hook(self, token: str, *, timeout: float | None = None) -> HookInfo:
        """The live hook holding ``token``, once a run has created it.

        :class:`StuckError` if every run settles without one (advance the clock first?).
        """

        async def live() -> HookInfo | None:
            try:
                return await self.get_hook(token)
            except HookNotFoundError:
                return None

        return await self._until(live, f"no live hook has the token {token!r}", timeout)

    async def wait_for_sleep(self, run_id: str, *, timeout: float | None = None) -> datetime:
        """When the run's pending sleep ends (its ``resume_at``), once it sleeps.

        :class:`StuckError` if the run settles without a pending sleep.
        """

        async def sleeping() -> datetime | None:
            waits = await self.store.list_waits(run_id)
            pending = sorted(w.resume_at for w in waits if w.status == "waiting")
            return pending[0] if pending else None

        return await self._until(sleeping, f"run {run_id} is not sleeping", timeout)

    async def wait_for_status(
        self, run_id: str, status: RunStatus | str, *, timeout: float | None = None
    ) -> RunInfo:
        """The run's info once its status is ``status``.

        :class:`StuckError` if the run ends with another status, or settles without it.
        """
        wanted = RunStatus(status)

        async def reached() -> RunInfo | None:
            info = await self.get_run(run_id).info()
            if info.status is wanted:
                return info
            if info.status.terminal and wanted.terminal:
                error = f" ({info.error.type}: {info.error.message})" if info.error else ""
                raise StuckError(f"run {run_id} ended {info.status.value}{error}, not {wanted}")
            return None

        return await self._until(reached, f"run {run_id} is not {wanted.value}", timeout)

    # -- settling -------------------------------------------------------------------------

    async def _until(
        self, check: Callable[[], Awaitable[T | None]], missing: str, timeout: float | None
    ) -> T:
        found = await self._settle(timeout, check)
        if found is None:
            found = await check()
        if found is None:
            raise StuckError(
                f"{missing}, and every run is waiting or done (at {self.now().isoformat()}); "
                f"advance the clock or resume a hook first.\n{await self.describe()}"
            )
        return found

    async def _settle(
        self, timeout: float | None, check: Callable[[], Awaitable[T | None]] | None
    ) -> T | None:
        """Turn the loop until nothing is busy for a few turns in a row (or ``check`` finds
        what it looks for)."""
        self._open()
        limit = self.idle_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        quiet = spins = 0
        while True:
            if check is not None and (found := await check()) is not None:
                return found
            busy = self._busy()
            if busy is None:
                quiet += 1
                if quiet >= QUIET_TURNS:
                    return None
                await asyncio.sleep(0)
                continue
            quiet = 0
            if time.monotonic() >= deadline:
                raise NotIdleError(
                    f"the runtime did not go idle within {limit} s (real time): {busy}"
                )
            spins += 1
            await asyncio.sleep(0 if spins < 100 else 0.001)

    def _busy(self) -> str | None:
        """What keeps the runtime from being idle, or None."""
        parts = self._open()
        running = parts.steps.running_names()
        if running:
            return "still running: " + ", ".join(running)
        if parts.timers.queued():
            return "timers fired and not yet delivered"
        if not parts.system.idle():
            return "run actors are handling messages"
        if parts.batcher.busy:
            return "a batch is being written"
        if self.background_jobs:
            return f"{self.background_jobs} background job(s) running"
        if len(parts.replies):
            return f"{len(parts.replies)} call(s) wait for an answer"
        return None

    async def describe(self) -> str:
        """What every run that has not ended waits for (for failure messages)."""
        now = self.now()
        lines = []
        page = await self.store.list_runs(limit=1000)
        for run in page.items:
            if run.status.terminal:
                continue
            what = [
                f"sleep until {w.resume_at.isoformat()} (in {_span(w.resume_at - now)})"
                for w in await self.store.list_waits(run.run_id)
                if w.status == "waiting"
            ]
            what += [
                f"hook {h.token!r}"
                for h in await self.store.list_hooks(run.run_id)
                if h.status == "active"
            ]
            for step in await self.store.list_steps(run.run_id):
                if step.retry_after is not None and not step.terminal:
                    when = _span(step.retry_after - now)
                    attempt = f"attempt {step.attempt}"
                    what.append(f"retry of step {step.step_name} ({attempt}) in {when}")
            waits = "; ".join(what) or "nothing"
            lines.append(f"  {run.run_id} ({run.workflow_name}, {run.status.value}): {waits}")
        return "runs not ended:\n" + "\n".join(lines) if lines else "no run is waiting"


def _negative(value: Any) -> bool:
    if isinstance(value, timedelta):
        return value < timedelta(0)
    return isinstance(value, int | float) and value < 0


def _span(delta: timedelta) -> str:
    seconds = max(0.0, delta.total_seconds())
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
