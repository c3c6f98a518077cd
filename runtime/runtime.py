"""The ``Runtime``: hosts runs on a store. Start, look up, cancel and wake runs.

Entering the runtime opens the store, starts the batcher, and (for a worker) recovers every
run that has not ended: each gets an actor that replays its log and carries on. Leaving it
stops the actors cleanly without failing any run; they continue at the next start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, Self

import anyio
from anyio.abc import TaskGroup

from actors.actor import ActorSystem
from actors.batcher import Batcher
from actors.messages import Begin, Cancel, Changed, HookPayload, Message, WakeUp
from actors.run_actor import RunActor, RunServices
from actors.timers import Timers
from conventions import Annotation
from persistence import (
    NewAnnotation,
    NewEvent,
    RunStatus,
    Store,
    codec,
    store_for,
)
from persistence import (
    Run as RunEntity,
)
from persistence import events as ev
from persistence.errors import (
    EntityConflictError,
    HookNotFoundError,
    RunExpiredError,
    RunNotFoundError,
    StoreUnavailableError,
)
from persistence.ids import RUN, new_id

from .annotations import Annotations
from .api import annotation_rows
from .errors import WorkflowNotRegisteredError
from .leases import Leases
from .outbox import subscribe
from .program import WorkflowProgram
from .registry import Registry, WorkflowFunction
from .reruns import rerun_point
from .run import HookInfo, Run, RunInfo
from .steps import StepRunner
from .telemetry import Telemetry, capture_context
from .watcher import LogWatcher

log = logging.getLogger("actorflow.runtime")


class Runtime:
    """Hosts workflow runs on a store; use it as an async context manager.

    ``store`` is a :class:`persistence.Store`, a URL, or None for ``$ACTORFLOW_STORE`` or
    the embedded default (``sqlite:///.actorflow/actorflow.db``). ``workflows`` are the
    ``@workflow`` functions (or names) this runtime hosts; None hosts every ``@workflow`` of
    the process. A ``role="client"`` runtime hosts no runs: it starts, reads and signals runs
    that workers execute.
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
    ) -> None:
        if role not in ("worker", "client"):
            raise ValueError(f"role must be 'worker' or 'client', got {role!r}")
        if max_concurrent_steps < 1:
            raise ValueError(f"max_concurrent_steps must be at least 1, got {max_concurrent_steps}")
        self._store_arg = store
        self.registry = Registry(workflows)
        self.max_concurrent_steps = max_concurrent_steps
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.role = role
        self.passivate_after = passivate_after
        self._poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self._store: Store | None = None
        self._owns_store = False
        self._tg: TaskGroup | None = None
        self._system: ActorSystem | None = None
        self._batcher: Batcher | None = None
        self._timers: Timers | None = None
        self._steps: StepRunner | None = None
        self._services: RunServices | None = None
        self._known: dict[str, str] = {}
        self._hooks: dict[str, tuple[str, str]] = {}
        self._leases: Leases | None = None  # on a store shared by many workers
        self._closing = False
        self.telemetry: Telemetry | None = None
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
        """Whether runs are shared between workers by leases (PostgreSQL); single-process
        stores (SQLite, memory) give every run to the one worker."""
        return self.store.url.startswith(("postgresql", "postgres"))

    @property
    def poll_interval(self) -> float:
        """How often a waiter re-checks a store that cannot notify across processes."""
        if self._poll_interval is not None:
            return self._poll_interval
        return 30.0 if self.store.url.startswith("memory") else 0.25

    async def __aenter__(self) -> Self:
        if isinstance(self._store_arg, str) or self._store_arg is None:
            self._store = store_for(self._store_arg)
            self._owns_store = True
        else:
            self._store = self._store_arg
        await self._store.open()
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        self._system = ActorSystem(tg)
        telemetry = Telemetry(self.tracer_provider, self.meter_provider)
        self.telemetry = telemetry
        self._batcher = Batcher(
            self._store, observe=telemetry.batch_written if telemetry.metering else None
        )
        tg.start_soon(self._batcher.run, name="actorflow batcher")
        self._timers = Timers(self._deliver)
        self._steps = StepRunner(
            self._deliver,
            self.max_concurrent_steps,
            runtime=self,
            around=telemetry.step_attempt if telemetry.active else None,
        )
        self._services = RunServices(
            store=self._store,
            batcher=self._batcher,
            timers=self._timers,
            executor=self._steps,
            programs=self._program,
            deliver=self._deliver,
            passivate_after=self.passivate_after,
            worker_id=self.worker_id,
            observe=self._observe,
            on_end=self._ended,
            observer=telemetry if telemetry.active else None,
            hooks=self._hooks,
        )
        if self.role == "worker":
            if self.leased:
                self._leases = Leases(
                    self._store,
                    self.worker_id,
                    self.lease_seconds,
                    spawn=self._wake,
                    drop=self._drop_run,
                    wake=lambda run_id: self._deliver(run_id, Changed()),
                )
            position = await self._store.last_position()
            await self._recover()
            watcher = LogWatcher(
                self._store, self._batcher, self._known, self._deliver, lambda: self.poll_interval
            )
            tg.start_soon(watcher.run, position, name="actorflow watcher")
            if self._leases is not None:
                tg.start_soon(self._leases.keep, name="actorflow leases")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing = True
        try:
            if self._system is not None:
                self._system.stop_all()
            if self._leases is not None and self._leases.owned:
                await self._leases.release(sorted(self._leases.owned))
            if self._timers is not None:
                self._timers.close()
            if self._steps is not None:
                await self._steps.close()
            if self._tg is not None:
                self._tg.cancel_scope.cancel()
                await self._tg.__aexit__(None, None, None)
        finally:
            self._tg = None
            if self._owns_store and self._store is not None:
                await self._store.close()
            self._store = None

    def stats(self) -> dict[str, int]:
        """Live run actors, armed timers and running step attempts in this runtime."""
        steps = self._steps
        return {
            "live_runs": len(self._system) if self._system is not None else 0,
            "timers": len(self._timers) if self._timers is not None else 0,
            "running_steps": steps.running_count() if steps is not None else 0,
        }

    def _program(self, run: RunEntity) -> WorkflowProgram:
        return WorkflowProgram(run, self.registry.get(run.workflow_name), self)

    def return_type(self, workflow_name: str) -> Any:
        """The declared result type of a hosted workflow (Any if unknown here)."""
        if workflow_name in self.registry:
            return self.registry.get(workflow_name).signature.return_type
        return Any

    # -- routing --------------------------------------------------------------------------

    def _spawn(self, run_id: str, begin: Begin | None = None) -> None:
        assert self._system is not None and self._services is not None
        services = self._services
        first = [begin]

        def factory() -> RunActor:
            given, first[0] = first[0], None
            return RunActor(run_id, services, given)

        self._system.spawn(run_id, factory)

    def _deliver(self, run_id: str, message: object) -> None:
        """Send a message to a run's actor, waking (spawning) it if it is not live."""
        if self._closing or self._system is None or self.role != "worker":
            return
        ref = self._system.lookup(run_id)
        if ref is not None and ref.tell(message):
            return
        if self._leases is not None and not self._leases.holds(run_id):
            if isinstance(message, Changed):
                self._background(self._leases.take, run_id)  # a new run from a client, perhaps
            return
        self._spawn(run_id)
        ref = self._system.lookup(run_id)
        if ref is not None:
            ref.tell(message)

    def _wake(self, run_id: str) -> None:
        """Make sure a run this worker took has a live actor."""
        if self._system is not None and self._system.lookup(run_id) is None and not self._closing:
            self._spawn(run_id)

    def _drop_run(self, run_id: str) -> None:
        """Stop running a run here (its lease went to another worker)."""
        if self._system is not None:
            self._system.stop(run_id)
        if self._timers is not None:
            self._timers.disarm_run(run_id)
        if self._steps is not None:
            self._steps.cancel(run_id)
        for token in [t for t, (owner, _) in self._hooks.items() if owner == run_id]:
            del self._hooks[token]

    def _observe(self, run_id: str, last_event_id: str) -> None:
        self._known[run_id] = last_event_id

    def _ended(self, run: RunEntity) -> None:
        self._known.pop(run.run_id, None)
        if self._leases is not None and self._leases.holds(run.run_id):
            self._background(self._leases.release, [run.run_id])
        if run.status is RunStatus.CANCELLED and self._tg is not None and not self._closing:
            self._background(self._cancel_children, run.run_id)

    async def _cancel_children(self, run_id: str) -> None:
        """Cancelling a parent cancels the children it started."""
        from .children import CHILD_TOKEN

        for hook in await self.store.list_hooks(run_id):
            if hook.token.startswith(CHILD_TOKEN):
                child = hook.token[len(CHILD_TOKEN) :]
                # RunNotFoundError: the start step was cancelled before the child existed
                with contextlib.suppress(RunNotFoundError):
                    await self.cancel(child, reason=f"its parent run {run_id} was cancelled")

    async def _recover(self) -> None:
        if self._leases is not None:
            await self._leases.claim_lapsed()
            return
        cursor = None
        while True:
            page = await self.store.list_runs(
                status=[RunStatus.PENDING, RunStatus.RUNNING], limit=500, cursor=cursor
            )
            for run in page.items:
                if run.workflow_name not in self.registry:
                    log.warning(
                        "run %s is of workflow %r, which this runtime does not host",
                        run.run_id,
                        run.workflow_name,
                    )
                self._wake(run.run_id)
            if page.cursor is None:
                return
            cursor = page.cursor

    def _background(self, job: Callable[..., Awaitable[object]], *args: object) -> None:
        """Run ``job`` in the runtime's task group; its failure is logged, not fatal."""
        if self._tg is not None and not self._closing:
            self._tg.start_soon(self._guarded, job, args)

    @staticmethod
    async def _guarded(job: Callable[..., Awaitable[object]], args: tuple[object, ...]) -> None:
        try:
            await job(*args)
        except Exception:
            log.exception("background job %s%r failed", getattr(job, "__name__", job), args)

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
        name = workflow if isinstance(workflow, str) else getattr(workflow, "name", None)
        if not isinstance(name, str):
            raise TypeError(f"{workflow!r} is not a @workflow function or a workflow name")
        known = name in self.registry
        if self.role == "worker" and not known:
            raise WorkflowNotRegisteredError(name)
        run_id = _check_run_id(run_id) if run_id is not None else new_id(RUN)
        what = f"workflow {name!r}"
        if known:
            data = self.registry.get(name).signature.encode(args, kwargs, what)
        else:
            data = codec.encode([list(args), kwargs], where=f"the arguments of {what}")
        legacy = None
        if metadata is not None:
            warnings.warn(
                "Runtime.start(metadata=...) is deprecated: use annotations=[Annotation(...)]",
                DeprecationWarning,
                stacklevel=2,
            )
            legacy = codec.encode(dict(metadata), where="metadata")
        rows = tuple(_start_rows(annotations))
        assert self.telemetry is not None
        with self.telemetry.starting(name, run_id):
            now = datetime.now(UTC)
            created = NewEvent(
                run_id,
                ev.RunCreated(
                    workflow_name=name,
                    input=data,
                    metadata=legacy,
                    execution_context=capture_context(),
                    seed=secrets.token_bytes(32),
                ),
                annotations=rows,
                created_at=now,
                if_last_event_id="",
            )
            await self._begin(run_id, created)
            self.telemetry.run_started(name)
        return Run(self, run_id)

    async def _begin(self, run_id: str, created: NewEvent) -> None:
        """Record a new run: a worker writes it with its first steps, a client alone."""
        if self.role == "client":
            await self._write_created(created)
            return
        assert self._system is not None
        if self._system.lookup(run_id) is not None:
            return
        when = created.created_at
        started = NewEvent(
            run_id, ev.RunStarted(worker_id=self.worker_id), created_at=when, if_last_event_id=""
        )
        reply = anyio_future()
        if self._leases is not None and not await self._leases.claim(run_id):
            return  # another worker holds it: it exists and runs there (held before it exists)
        self._spawn(run_id, Begin((created, started), reply))
        if not await reply:  # it existed (perhaps from a retried write): make sure it runs
            self._deliver(run_id, Changed())

    async def _write_created(self, created: NewEvent) -> None:
        """Write ``run_created`` alone, retrying while the store is briefly unavailable."""
        assert self._batcher is not None
        delay = 0.05
        for attempt in range(6):
            try:
                outcomes, _, _ = await self._batcher.submit([created])
                break
            except StoreUnavailableError:
                if attempt == 5:
                    raise
                await anyio.sleep(delay)
                delay *= 2
        outcome = outcomes[0]
        if isinstance(outcome, BaseException) and not isinstance(outcome, EntityConflictError):
            raise outcome

    def get_run(self, run_id: str) -> Run:
        """A handle on a run, without I/O."""
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

    async def cancel(self, run_id: str, reason: str | None = None) -> bool:
        """Cancel a run; False if it had already ended. ``RunNotFoundError`` if unknown."""
        reply = anyio_future()
        if await self._ask_actor(run_id, Cancel(reason, reply)):
            return bool(await reply)
        if (await self.store.get_run(run_id)).status.terminal:
            return False
        assert self._batcher is not None
        outcomes, _, _ = await self._batcher.submit(
            [NewEvent(run_id, ev.RunCancelled(reason=reason))]
        )
        outcome = outcomes[0]
        if isinstance(outcome, RunNotFoundError):
            raise outcome
        if isinstance(outcome, BaseException):
            return False
        if self._timers is not None:
            self._timers.disarm_run(run_id)
        for token in [t for t, (owner, _) in self._hooks.items() if owner == run_id]:
            del self._hooks[token]
        await self._tell_parent_of_cancel(run_id)
        await self._cancel_children(run_id)
        return True

    async def _tell_parent_of_cancel(self, run_id: str) -> None:
        """A child cancelled by a client (not by its actor) still tells its parent."""
        from actors.program import outcome_payload

        run = await self.store.get_run(run_id)
        if run.parent_run_id and run.parent_hook_id:
            notice = ev.HookReceived(payload=outcome_payload("cancelled", None, None))
            assert self._batcher is not None
            await self._batcher.submit([NewEvent(run.parent_run_id, notice, run.parent_hook_id)])
            self._deliver(run.parent_run_id, Changed())

    async def wake_up(self, run_id: str, correlation_ids: Iterable[str] | None = None) -> int:
        """End pending sleeps of a run now (those named, or all); how many ended."""
        ids = frozenset(correlation_ids) if correlation_ids is not None else None
        run = await self.store.get_run(run_id)
        if run.status.terminal:
            return 0
        reply = anyio_future()
        if await self._ask_actor(run_id, WakeUp(ids, reply), spawn=True):
            return int(await reply)
        waits = [w for w in await self.store.list_waits(run_id) if w.status == "waiting"]
        requests = [
            NewEvent(run_id, ev.WaitCompleted(resume_at=w.resume_at), w.wait_id)
            for w in waits
            if ids is None or w.wait_id in ids
        ]
        if not requests:
            return 0
        assert self._batcher is not None
        outcomes, _, _ = await self._batcher.submit(requests)
        return sum(1 for o in outcomes if isinstance(o, ev.Event))

    async def resume_hook(self, token: str, payload: Any) -> str:
        """Send ``payload`` to the live hook holding ``token``; returns the hook's run id.

        Works from any runtime on the store (another process too). The payload is recorded
        (``hook_received``) before this returns; the owning run wakes. ``HookNotFoundError``
        for an unknown or released token; ``SerializationError`` (nothing recorded) for a
        payload that cannot be encoded.
        """
        data = codec.encode(payload, where=f"the payload for hook {token!r}")
        local = self._hooks.get(token)
        if (
            local is not None
            and self.role == "worker"
            and (self._leases is None or self._leases.holds(local[0]))
        ):  # a hook of a run of this runtime: no read
            reply = anyio_future()
            self._deliver(local[0], HookPayload(local[1], token, data, reply))
            with contextlib.suppress(HookNotFoundError):  # it moved on: ask the store
                return str(await reply)
        hook = await self.store.get_hook(token)
        reply = anyio_future()
        if await self._ask_actor(hook.run_id, HookPayload(hook.hook_id, token, data, reply)):
            return str(await reply)
        assert self._batcher is not None
        request = NewEvent(hook.run_id, ev.HookReceived(payload=data, token=token), hook.hook_id)
        outcomes, _, _ = await self._batcher.submit([request])
        outcome = outcomes[0]
        if isinstance(outcome, RunExpiredError | HookNotFoundError | EntityConflictError):
            raise HookNotFoundError(token)
        if isinstance(outcome, BaseException):
            raise outcome
        self._deliver(hook.run_id, Changed())
        return hook.run_id

    async def get_hook(self, token: str) -> HookInfo:
        """The live hook holding ``token``; ``HookNotFoundError`` if none does."""
        hook = await self.store.get_hook(token)
        metadata = None if hook.metadata is None else codec.decode(hook.metadata)
        return HookInfo(hook.hook_id, hook.run_id, hook.token, metadata, hook.created_at)

    async def start_child_run(
        self,
        workflow_name: str,
        child_run_id: str,
        parent_run_id: str,
        parent_hook_id: str,
        data: bytes,
    ) -> None:
        """Start a child run (the built-in step of ``start_child`` calls this)."""
        if self.role == "worker" and workflow_name not in self.registry:
            raise WorkflowNotRegisteredError(workflow_name)
        created = NewEvent(
            child_run_id,
            ev.RunCreated(
                workflow_name=workflow_name,
                input=data,
                parent_run_id=parent_run_id,
                parent_hook_id=parent_hook_id,
                execution_context=capture_context(),
                seed=secrets.token_bytes(32),
            ),
            created_at=datetime.now(UTC),
            if_last_event_id="",
        )
        await self._begin(child_run_id, created)

    async def rerun_from(self, run_id: str, step: str) -> Run:
        """Run a run again from a step: ``step`` is a step id, or a step name (its first call).

        Appends ``run_rerun`` with the next attempt generation; the run is running again.
        Steps before that point keep their recorded results; that step and everything after
        run again. Earlier events and annotations stay (filter them by ``attempt``).
        ``StepNotFoundError`` (nothing changes) if the run has no such step.
        """
        data = await rerun_point(self.store, run_id, step)
        assert self._batcher is not None
        outcomes, _, _ = await self._batcher.submit([NewEvent(run_id, data)])
        if isinstance(outcomes[0], BaseException):
            raise outcomes[0]
        self._deliver(run_id, Changed())
        return Run(self, run_id)

    def subscribe(self, name: str, types: Sequence[str] | None = None) -> AsyncIterator[ev.Event]:
        """Committed events of all runs in commit order, at least once, from the durable
        cursor ``name``: an event is acknowledged (the cursor saved) when the consumer asks
        for the next one, so a consumer that stops gets again only what it had not
        acknowledged. Several subscribers each keep their own cursor."""
        return subscribe(self.store, name, types, self.poll_interval)

    async def _ask_actor(self, run_id: str, message: Message, spawn: bool = False) -> bool:
        """Send ``message`` to the run's actor in this process, if it is (or may be) here."""
        if self.role != "worker" or self._system is None:
            return False
        ref = self._system.lookup(run_id)
        if ref is not None and ref.tell(message):
            return True
        if not spawn or (self._leases is not None and not self._leases.holds(run_id)):
            return False
        self._deliver(run_id, message)
        return True


def anyio_future() -> Any:
    import asyncio

    return asyncio.get_running_loop().create_future()


def _check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not 1 <= len(run_id) <= 255 or not run_id.isprintable():
        raise ValueError(f"a run id is 1 to 255 printable characters, got {run_id!r}")
    return run_id


def _start_rows(annotations: Sequence[Annotation]) -> Iterable[NewAnnotation]:
    for item in annotations:
        yield from annotation_rows(
            None,
            None,
            item.attributes,
            item.actor,
            item.payload,
            item.idempotency_key,
            item.emit_event,
        )
