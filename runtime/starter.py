"""Starting runs: ``start()``, child runs, and the resilient first write.

A worker hands a new run to a fresh actor with its first events (``run_created`` +
``run_started``); the actor writes them together with the workflow's first durable calls in
one conditional write, so the first step can start after a single commit. Starting with a
``run_id`` that exists returns that run, and concurrent starts of one id share one write. A
client (``role="client"``) writes ``run_created`` alone; a worker takes the run from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import anyio
import msgspec

from actors.batcher import Batcher
from actors.clock import SYSTEM_CLOCK, Clock
from actors.messages import Begin, RunElsewhere
from conventions import Annotation
from persistence import LeaseClaim, NewAnnotation, NewEvent, codec
from persistence import events as ev
from persistence.errors import EntityConflictError, StoreUnavailableError
from persistence.ids import RUN, new_id

from .api import annotation_rows
from .errors import WorkflowNotRegisteredError
from .leases import Leases
from .registry import Registry, WorkflowFunction
from .replies import Replies
from .router import Router
from .telemetry import Telemetry, capture_context


class Starter:
    """Starts runs for one runtime."""

    def __init__(
        self,
        registry: Registry,
        worker_id: str,
        client: bool,
        router: Router,
        batcher: Batcher,
        replies: Replies,
        telemetry: Telemetry,
        leases: Leases | None,
        clock: Clock = SYSTEM_CLOCK,
        claims_in_write: bool = False,
    ) -> None:
        self._registry = registry
        self._clock = clock
        self._worker_id = worker_id
        self._client = client
        self._router = router
        self._batcher = batcher
        self._replies = replies
        self._telemetry = telemetry
        self._leases = leases
        self._starting: dict[str, Any] = {}  # run id -> the future of its first write
        self._claims_in_write = claims_in_write

    async def start(
        self,
        workflow: WorkflowFunction[Any, Any] | str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: str | None,
        annotations: Sequence[Annotation],
        metadata: Mapping[str, Any] | None,
    ) -> str:
        """Record a new run (or find the one with ``run_id``); its id."""
        name = workflow if isinstance(workflow, str) else getattr(workflow, "name", None)
        if not isinstance(name, str):
            raise TypeError(f"{workflow!r} is not a @workflow function or a workflow name")
        known = name in self._registry
        if not self._client and not known:
            raise WorkflowNotRegisteredError(name, self._registry.names())
        run_id = check_run_id(run_id) if run_id is not None else new_id(RUN)
        what = f"workflow {name!r}"
        if known:
            data = self._registry.get(name).signature.encode(args, kwargs, what)
        else:
            data = codec.encode([list(args), kwargs], where=f"the arguments of {what}")
        legacy = None
        if metadata is not None:
            warnings.warn(
                "Runtime.start(metadata=...) is deprecated: use annotations=[Annotation(...)]",
                DeprecationWarning,
                stacklevel=3,
            )
            legacy = codec.encode(dict(metadata), where="metadata")
        rows = tuple(_start_rows(annotations))
        with self._telemetry.starting(name, run_id):
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
                created_at=self._clock.now(),
                if_last_event_id="",
            )
            await self.begin(run_id, created)
            self._telemetry.run_started(name)
        return run_id

    async def start_child(
        self,
        workflow_name: str,
        child_run_id: str,
        parent_run_id: str,
        parent_hook_id: str,
        data: bytes,
    ) -> None:
        """Start a child run (the built-in step of ``start_child`` calls this)."""
        if not self._client and workflow_name not in self._registry:
            raise WorkflowNotRegisteredError(workflow_name, self._registry.names())
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
            created_at=self._clock.now(),
            if_last_event_id="",
        )
        await self.begin(child_run_id, created)

    async def begin(self, run_id: str, created: NewEvent) -> None:
        """Record a new run: a worker writes it with its first steps, a client alone."""
        if self._client:
            await self._write_created(created)
            return
        while (starting := self._starting.get(run_id)) is not None:
            try:  # another start of the same id is writing it
                await asyncio.shield(starting)
                return
            except asyncio.CancelledError:
                if not _abandoned(starting):
                    raise  # this caller was cancelled
                # that start's caller left before the write: this one starts the run
        reply = self._replies.new()
        self._starting[run_id] = reply
        leases = self._leases
        assert leases is not None
        folded = self._claims_in_write
        if folded:  # the run's first write takes its lease: one commit, not two
            leases.starting(run_id)
            created = msgspec.structs.replace(
                created, claim=LeaseClaim(self._worker_id, leases.seconds)
            )
        try:
            fence = None if folded else await leases.claim(run_id)
            if fence is None and not folded:
                reply.set_result(False)  # another worker holds it: it exists, and runs there
                return
            when = created.created_at
            started = NewEvent(
                run_id,
                ev.RunStarted(worker_id=self._worker_id),
                created_at=when,
                if_last_event_id="",
            )
            self._router.begin(run_id, Begin((created, started), reply, fence))
            with contextlib.suppress(RunElsewhere):  # its lease moved before the write:
                await reply  # the run is another worker's now
        finally:
            if folded:
                leases.started(run_id)
            if self._starting.get(run_id) is reply:
                del self._starting[run_id]
            if not reply.done():  # the caller left before the run was handed to an actor
                reply.cancel()

    async def _write_created(self, created: NewEvent) -> None:
        """Write ``run_created`` alone, retrying while the store is briefly unavailable."""
        delay = 0.05
        for attempt in range(6):
            try:
                outcomes = (await self._batcher.submit([created])).outcomes
                break
            except StoreUnavailableError:
                if attempt == 5:
                    raise
                await anyio.sleep(delay)
                delay *= 2
        outcome = outcomes[0]
        if isinstance(outcome, BaseException) and not isinstance(outcome, EntityConflictError):
            raise outcome


def _abandoned(starting: asyncio.Future[Any]) -> bool:
    """Whether a shared start was dropped by its caller (not this task cancelled)."""
    task = asyncio.current_task()
    return starting.cancelled() and (task is None or task.cancelling() == 0)


def check_run_id(run_id: str) -> str:
    """A client-chosen run id: 1 to 255 printable characters."""
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
