"""The ``Runtime``: hosts runs on a store. Start, look up, cancel and wake runs.

The runtime is a facade over collaborators that each own their state: the router (run
actors, live hooks, the end-of-run path), the starter (new runs), the signals (cancel, wake,
hook payloads, reruns), the step runner, the timers, the batcher and the log watcher.

Entering it opens the store, starts the batcher, and (for a worker) recovers every run that
has not ended. Leaving it drains: running step bodies may finish within ``shutdown_grace``
seconds, and every caller still waiting gets :class:`RuntimeClosedError`
(:mod:`runtime.lifecycle`). No run is failed by a shutdown; the runs continue at the next
start, here or in another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any, Final, Literal, Self, TypeVar, overload

from anyio.abc import TaskGroup

from actors.clock import SYSTEM_CLOCK, Clock
from actors.messages import LeaseLost
from conventions import Annotation
from persistence import Run as RunEntity
from persistence import RunStatus, Store
from persistence import events as ev
from persistence.errors import RunNotFoundError, StoreUnavailableError
from persistence.notify import end_topic
from persistence.store import StoreBase

from . import lifecycle
from .errors import RuntimeClosedError
from .outbox import subscribe
from .program import WorkflowProgram
from .registry import Registry, WorkflowFunction
from .run import HookInfo, Run, RunInfo
from .telemetry import Telemetry
from .wiring import Parts

log = logging.getLogger("actorflow.runtime")
T = TypeVar("T")

DEFAULT_TIMEOUT: Final = 30.0
"""How long a signal waits for the store before it raises ``StoreUnavailableError``."""


class Runtime:
    """Hosts workflow runs on a store; use it as an async context manager.

    ``store`` is a :class:`persistence.Store`, a URL, or None for ``$ACTORFLOW_STORE`` or
    the embedded default (``sqlite:///.actorflow/actorflow.db``). ``workflows`` are the
    ``@workflow`` functions (or names) this runtime hosts; None hosts every ``@workflow`` of
    the process. A ``role="client"`` runtime hosts no runs: it starts, reads and signals runs
    that workers execute. ``shutdown_grace`` is how long running step bodies may take to
    finish when the runtime leaves before they are cancelled. ``clock`` is the time of runs
    (their events, sleeps, retry delays and timers); tests give a virtual one through
    ``runtime.testing.TestRuntime``.
    """

    def __init__(
        self,
        store: Store | str | None = None,
        workflows: Iterable[WorkflowFunction[Any, Any] | str] | None = None,
        *,
        max_concurrent_steps: int = 100,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        worker_id: str | None = None,
        role: Literal["worker", "client"] = "worker",
        passivate_after: float = 60.0,
        poll_interval: float | None = None,
        lease_seconds: float = 10.0,
        shutdown_grace: float = 10.0,
        max_runs: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        if role not in ("worker", "client"):
            raise ValueError(f"role must be 'worker' or 'client', got {role!r}")
        if max_concurrent_steps < 1:
            raise ValueError(f"max_concurrent_steps must be at least 1, got {max_concurrent_steps}")
        if shutdown_grace < 0:
            raise ValueError(f"shutdown_grace must be 0 or more seconds, got {shutdown_grace}")
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, got {lease_seconds}")
        if worker_id is not None and (not isinstance(worker_id, str) or not worker_id):
            raise ValueError(f"worker_id must be a non-empty string (or None), got {worker_id!r}")
        if max_runs is not None and max_runs < 1:
            raise ValueError(f"max_runs must be at least 1 (or None), got {max_runs}")
        self._store_arg = store
        self.registry = Registry(workflows)
        self.max_concurrent_steps = max_concurrent_steps
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.worker_id = worker_id or lifecycle.default_worker_id()
        self.role = role
        self.passivate_after = passivate_after
        self._poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.shutdown_grace = shutdown_grace
        self.max_runs = max_runs
        self.clock: Clock = clock or SYSTEM_CLOCK
        self._store: Store | None = None
        self._owns_store = False
        self._tg: TaskGroup | None = None
        self._parts: Parts | None = None
        self._closing = False
        self.background_jobs = 0
        """Jobs running in the background (closing streams, cancelling children)."""
        self.telemetry: Telemetry | None = None
        from .annotations import Annotations

        self.annotations = Annotations(self)
        """Attach and list annotations (``rt.annotations.attach``, ``rt.annotations.list``)."""

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the runtime is not running: use `async with Runtime(...) as rt`")
        return self._store

    @property
    def leased(self) -> bool:
        """Whether this runtime executes runs under leases (every worker does; a client
        executes nothing)."""
        return self.role == "worker"

    @property
    def poll_interval(self) -> float:
        """How often a waiter re-checks the store for other processes' commits: the
        ``poll_interval`` given, else the store's (SQLite 0.25 s; PostgreSQL, which notifies
        every process of each commit, 5 s; memory 30 s)."""
        if self._poll_interval is not None:
            return self._poll_interval
        return float(getattr(self.store, "poll_interval", StoreBase.poll_interval))

    async def __aenter__(self) -> Self:
        try:
            await lifecycle.enter(self)
        except BaseException:
            await lifecycle.teardown(self)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._parts is not None:
                await lifecycle.drain(self, self._parts)
        finally:
            await lifecycle.teardown(self)

    def stats(self) -> dict[str, int]:
        """Live run actors, armed timers, running step attempts and live hooks here."""
        parts = self._parts
        if parts is None:
            return {"live_runs": 0, "timers": 0, "running_steps": 0, "hooks": 0, "pending": 0}
        routed = parts.router.stats()
        return {
            "live_runs": routed["live_runs"],
            "timers": len(parts.timers),
            "running_steps": parts.steps.running_count(),
            "hooks": routed["hooks"],
            "known": routed["known"],
            "pending": len(parts.replies),
        }

    def return_type(self, workflow_name: str) -> Any:
        """The declared result type of a hosted workflow (Any if unknown here)."""
        if workflow_name in self.registry:
            return self.registry.get(workflow_name).signature.return_type
        return Any

    def _open(self) -> Parts:
        if self._closing:
            raise RuntimeClosedError("the runtime is closing: it takes no new calls")
        if self._parts is None:
            raise RuntimeError("the runtime is not running: use `async with Runtime(...) as rt`")
        return self._parts

    async def _recover(self) -> None:
        """Announce this worker and take the runs nobody holds (of workflows hosted here)."""
        parts = self._parts
        assert parts is not None and parts.leases is not None
        await parts.leases.beat()
        await parts.leases.claim_lapsed()

    # -- starting runs ------------------------------------------------------------------------

    async def start(
        self,
        workflow: WorkflowFunction[Any, Any] | str,
        *args: Any,
        run_id: str | None = None,
        annotations: Sequence[Annotation] = (),
        metadata: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Run:
        """Start a run of ``workflow`` with these arguments; returns once it is recorded.

        ``run_id`` makes the start idempotent: a run with that id that exists is returned as
        it is. Arguments that cannot be encoded raise ``SerializationError`` and record nothing.
        """
        parts = self._open()
        started = await parts.starter.start(workflow, args, kwargs, run_id, annotations, metadata)
        return Run(self, started)

    async def start_child_run(
        self,
        workflow_name: str,
        child_run_id: str,
        parent_run_id: str,
        parent_hook_id: str,
        data: bytes,
    ) -> None:
        """Start a child run (the built-in step of ``start_child`` calls this)."""
        await self._open().starter.start_child(
            workflow_name, child_run_id, parent_run_id, parent_hook_id, data
        )

    @overload
    def get_run(self, run_id: str, *, must_exist: Literal[False] = False) -> Run: ...
    @overload
    def get_run(self, run_id: str, *, must_exist: Literal[True]) -> Coroutine[Any, Any, Run]: ...
    @overload
    def get_run(self, run_id: str, *, must_exist: bool) -> Run | Coroutine[Any, Any, Run]: ...
    def get_run(self, run_id: str, *, must_exist: bool = False) -> Run | Coroutine[Any, Any, Run]:
        """A handle on a run, without I/O: its methods raise ``RunNotFoundError`` for an
        unknown id when they read the store.

        With ``must_exist=True`` it is a coroutine that reads the run first and raises
        ``RunNotFoundError`` at once for an unknown id (``run = await rt.get_run(id,
        must_exist=True)``): a web handler can answer 404 before it starts a response.
        """
        if not isinstance(must_exist, bool):
            raise TypeError(f"get_run(must_exist=...) takes a bool, got {must_exist!r}")
        if must_exist:
            return self._existing_run(run_id)
        return Run(self, run_id)

    async def _existing_run(self, run_id: str) -> Run:
        await self.store.get_run(run_id)  # raises RunNotFoundError
        return Run(self, run_id)

    async def list_runs(
        self,
        status: RunStatus | str | Sequence[RunStatus | str] | None = None,
        workflow_name: str | None = None,
        limit: int = 100,
    ) -> list[RunInfo]:
        """Runs, newest first, filtered by status and workflow name."""
        wanted: Any = status
        if isinstance(status, str):
            wanted = RunStatus(status)
        elif status is not None:
            wanted = [RunStatus(s) for s in status]
        page = await self.store.list_runs(status=wanted, workflow_name=workflow_name, limit=limit)
        return [RunInfo.of(r) for r in page.items]

    # -- signals to runs ----------------------------------------------------------------------

    async def cancel(
        self, run_id: str, reason: str | None = None, *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> bool:
        """Cancel a run; False if it had already ended. ``RunNotFoundError`` if unknown;
        ``StoreUnavailableError`` if the store could not record it within ``timeout`` s."""
        return await _bounded(self._open().signals.cancel(run_id, reason), timeout, "cancel")

    async def wake_up(
        self,
        run_id: str,
        correlation_ids: Iterable[str] | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> int:
        """End pending sleeps of a run now (those named, or all); how many ended."""
        woken = self._open().signals.wake_up(run_id, correlation_ids)
        return await _bounded(woken, timeout, "wake_up")

    async def resume_hook(
        self,
        token: str,
        payload: Any,
        *,
        idempotency_key: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> str:
        """Send ``payload`` to the live hook holding ``token``; returns the hook's run id.

        Works from any runtime on the store (another process too). The payload is recorded
        (``hook_received``) before this returns; the owning run wakes. ``HookNotFoundError``
        for an unknown or released token; ``SerializationError`` (nothing recorded) for a
        payload that cannot be encoded. With an ``idempotency_key`` the first payload of the
        key is recorded and a retry returns the same run id without recording it again. If
        the store cannot record it within ``timeout`` seconds: ``StoreUnavailableError`` (it
        may still be recorded once the store is back: retry with the same key).
        """
        resumed = self._open().signals.resume_hook(token, payload, idempotency_key)
        return await _bounded(resumed, timeout, "resume_hook")

    async def get_hook(self, token: str) -> HookInfo:
        """The live hook holding ``token``; ``HookNotFoundError`` if none does."""
        from persistence import codec

        hook = await self.store.get_hook(token)
        metadata = None if hook.metadata is None else codec.decode(hook.metadata)
        return HookInfo(hook.hook_id, hook.run_id, hook.token, metadata, hook.created_at)

    async def rerun_from(self, run_id: str, step: str) -> Run:
        """Run a run again from a step: ``step`` is a step id, or a step name (its first call).

        Appends ``run_rerun`` with the next attempt generation; the run is running again.
        Steps before that point keep their recorded results; that step and everything after
        run again. Earlier events and annotations stay (filter them by ``attempt``).
        ``StepNotFoundError`` (nothing changes) if the run has no such step.
        """
        await self._open().signals.rerun_from(run_id, step)
        return Run(self, run_id)

    def subscribe(self, name: str, types: Sequence[str] | None = None) -> AsyncIterator[ev.Event]:
        """Committed events of all runs in commit order, at least once, from the durable
        cursor ``name``: an event is acknowledged (the cursor saved) when the consumer asks
        for the next one, so a consumer that stops gets again only what it had not
        acknowledged. Several subscribers each keep their own cursor."""
        return subscribe(self.store, name, types, self.poll_interval)

    # -- what the collaborators ask of the runtime ------------------------------------------

    def _background(self, job: Callable[..., Awaitable[object]], *args: object) -> None:
        """Run ``job`` in the runtime's task group; its failure is logged, not fatal."""
        if self._tg is not None and not self._closing:
            self.background_jobs += 1
            self._tg.start_soon(self._job, job, args)

    async def _job(self, job: Callable[..., Awaitable[object]], args: tuple[object, ...]) -> None:
        try:
            await _guarded(job, args)
        finally:
            self.background_jobs -= 1

    def _executes(self, run_id: str) -> bool:
        """Whether the run is live here: its end will be committed, or learnt, and notified
        in this process (waiters on it need not poll the store often)."""
        parts = self._parts
        return parts is not None and not self._closing and parts.router.live(run_id)

    def _ended(self, run: RunEntity) -> None:
        parts = self._parts
        assert parts is not None and self.telemetry is not None
        self.store.notifier.notify([end_topic(run.run_id)])  # ended by another writer too
        self.telemetry.released(run.run_id)
        if parts.leases is not None:  # the write that ended the run let its lease lapse
            parts.leases.forget(run.run_id)
        if run.status is RunStatus.CANCELLED:
            self._background(self._cancel_children, run.run_id)

    def _released(self, run_id: str) -> None:
        """A run's actor let it go (another worker has it): stop renewing its lease here."""
        assert self.telemetry is not None and self._parts is not None
        self.store.notifier.notify([end_topic(run_id)])  # its waiters poll the store again
        self.telemetry.released(run_id)
        leases = self._parts.leases
        if leases is not None and leases.holds(run_id) and not self._closing:
            leases.release_soon(run_id)

    def _program(self, run: RunEntity) -> WorkflowProgram:
        """The program of a run (``WorkflowNotRegisteredError`` if this worker lacks it)."""
        return WorkflowProgram(run, self.registry.get(run.workflow_name), self)

    def _lost(self, run_id: str) -> None:
        """Another worker took the run's lease: stop it here (its actor writes nothing)."""
        parts = self._parts
        assert parts is not None
        if not parts.router.deliver(run_id, LeaseLost()):
            parts.router.released(run_id, "its lease went to another worker")

    async def _cancel_children(self, run_id: str) -> None:
        """Cancelling a parent cancels the children it started."""
        from .children import CHILD_TOKEN

        for hook in await self.store.list_hooks(run_id):
            if hook.token.startswith(CHILD_TOKEN):
                child = hook.token[len(CHILD_TOKEN) :]
                # RunNotFoundError: the start step was cancelled before the child existed
                with contextlib.suppress(RunNotFoundError, RuntimeClosedError):
                    await self.cancel(child, reason=f"its parent run {run_id} was cancelled")


async def _bounded(call: Awaitable[T], timeout: float | None, what: str) -> T:
    """``call``, or ``StoreUnavailableError`` once ``timeout`` seconds have passed."""
    if timeout is None:
        return await call
    try:
        async with asyncio.timeout(timeout):  # a third of anyio.fail_after's cost per call
            return await call
    except TimeoutError:
        raise StoreUnavailableError(
            f"{what}() could not be recorded within {timeout} s: the store is unavailable "
            "or slow (it may still be recorded once the store is back)"
        ) from None


async def _guarded(job: Callable[..., Awaitable[object]], args: tuple[object, ...]) -> None:
    try:
        await job(*args)
    except Exception:
        log.exception("background job %s%r failed", getattr(job, "__name__", job), args)
