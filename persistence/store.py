"""The Store protocol: the one interface the runtime uses to persist and read runs.

Three stores implement it (memory, SQLite, PostgreSQL) and one conformance suite tests them
all. Every state change is an event appended with :meth:`Store.create_batch`; the entity
tables (runs, steps, waits, hooks) are views a store updates in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from .dormant import Dormant
from .errors import StoreError
from .events import Event, NewEvent
from .notify import Notifier
from .records import (
    AnnotationFilter,
    AnnotationRecord,
    AttachAnnotations,
    BatchResult,
    CommittedEvent,
    Lease,
    Page,
    StreamChunk,
    StreamInfo,
    WorkerInfo,
)
from .state import Hook, Run, RunStatus, Step, Wait


@runtime_checkable
class Store(Protocol):
    """Durable storage of runs: an append-only event log plus the entities it implies.

    Writes go through :meth:`create_batch`, which checks each event against the state
    machines atomically with the write. Reads never block writers. All methods are
    coroutines on the caller's event loop; none of them blocks it.
    """

    url: str
    """The URL the store was opened with (``memory://``, ``sqlite:///...``, ``postgresql://...``)."""

    schema_version: int
    """The version of the store's schema after its migrations ran."""

    notifier: Notifier
    """Wakes in-process waiters after commits (runs, streams, the global log)."""

    claims_in_write: bool
    """Whether ``create_batch`` takes a new run's lease with it (``NewEvent.claim``)."""

    async def open(self, *, create: bool = True) -> None:
        """Connect, create or migrate the schema. Idempotent.

        With ``create=False`` a store that does not exist yet is not created:
        ``StoreConfigurationError`` says so (no SQLite file, no PostgreSQL schema), and
        nothing is made, not even a directory. Read-only tools open stores this way.
        """

    async def close(self) -> None:
        """Release connections and threads. Idempotent."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    # -- writes ---------------------------------------------------------------------------

    async def create(self, event: NewEvent) -> Event:
        """Append one event; raise the state machine's error if it is refused."""

    async def create_batch(self, requests: Sequence[NewEvent | AttachAnnotations]) -> BatchResult:
        """Append events (of any runs) and annotations in one transaction.

        Each request is decided on its own: a refused one is reported in the result and
        does not stop the others. Raises only for store failures (``StoreUnavailableError``),
        in which case nothing was written.
        """

    async def append_chunks(
        self, run_id: str, stream: str, start_index: int, chunks: Sequence[bytes], close: bool
    ) -> StreamInfo:
        """Append chunks at ``start_index`` (the stream's next index), optionally closing it.

        Raises ``StreamClosedError`` if the stream is closed, ``EntityConflictError`` if
        ``start_index`` is not the next index, ``RunNotFoundError`` for an unknown run.
        """

    async def save_cursor(self, name: str, position: int) -> None:
        """Store a subscriber's position durably."""

    # -- reads ----------------------------------------------------------------------------

    async def list_events(
        self, run_id: str, *, after: str | None = None, limit: int | None = None
    ) -> Page[Event]:
        """A run's events in log order, after the event id ``after``."""

    async def get_run(self, run_id: str) -> Run:
        """The run, or ``RunNotFoundError``."""

    async def list_runs(
        self,
        *,
        status: RunStatus | Sequence[RunStatus] | None = None,
        workflow_name: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Run]:
        """Runs, newest first, filtered by status and workflow name."""

    async def get_step(self, run_id: str, step_id: str) -> Step:
        """The step, or ``StepNotFoundError``."""

    async def list_steps(self, run_id: str) -> list[Step]:
        """A run's steps in call order."""

    async def list_waits(self, run_id: str) -> list[Wait]:
        """A run's waits in call order."""

    async def due_waits(self, before: datetime, limit: int = 1000) -> list[Wait]:
        """Pending waits of non-terminal runs due at or before ``before``, earliest first."""

    async def get_hook(self, token: str) -> Hook:
        """The live hook holding ``token``, or ``HookNotFoundError``."""

    async def list_hooks(self, run_id: str) -> list[Hook]:
        """A run's hooks in call order, live or not."""

    async def find_payload(self, token: str, idempotency_key: str) -> str | None:
        """The run whose hook holding ``token`` (live or not) recorded a payload with this
        idempotency key, or None."""

    async def resolve_hook(self, token: str, idempotency_key: str | None) -> Hook | str | None:
        """In one read, where a payload for ``token`` goes: the live hook holding it; else,
        with an idempotency key, the id of the run that recorded a payload with that key (as
        :meth:`find_payload`); else None."""

    async def read_chunks(
        self, run_id: str, stream: str, start_index: int = 0, limit: int = 1000
    ) -> list[StreamChunk]:
        """Chunks from ``start_index`` on, in index order, the close marker included."""

    async def stream_info(self, run_id: str, stream: str) -> StreamInfo:
        """The stream's tail index (-1 when empty) and whether it is closed."""

    async def list_annotations(
        self, run_id: str, filters: AnnotationFilter | None = None
    ) -> list[AnnotationRecord]:
        """A run's annotations, by creation time then id, filtered."""

    async def read_committed(
        self, after: int, limit: int = 1000, types: Sequence[str] | None = None
    ) -> list[CommittedEvent]:
        """Events of all runs in commit order, from position ``after`` (exclusive)."""

    async def get_cursor(self, name: str) -> int:
        """A subscriber's stored position (0 if it has none)."""

    async def last_position(self) -> int:
        """The position of the last committed event (0 if none)."""

    # -- leases (which worker runs which run) -----------------------------------------------

    async def claim_runs(
        self,
        owner: str,
        lease_seconds: float,
        limit: int = 100,
        *,
        workflows: Sequence[str] | None = None,
        dead: Sequence[str] = (),
        after: str = "",
    ) -> list[Lease]:
        """Take up to ``limit`` runs that have not ended and that no live lease holds, in run
        id order, from the first run id greater than ``after`` (a sweep over many pages
        passes the last id it took, so no page scans the runs the earlier ones took).

        Claimable: a pending run with no lease; a running run with no lease created more
        than ``lease_seconds`` ago (its starter died before claiming it); any run whose lease
        lapsed, or is held by one of the ``dead`` owners (their process is known to be gone).
        Never a run whose lease is live. Only runs of ``workflows`` (all if None). Returns
        the leases now held by ``owner``: a lease that passes to another owner (or is taken
        for the first time) gets the next epoch.
        """

    async def dormant_runs(self, run_ids: Sequence[str]) -> dict[str, Dormant]:
        """Of these runs, those that only wait (see :mod:`persistence.dormant`), with their
        waiting sleeps and active hooks: a worker that takes them over need not load them."""

    async def claim_each(
        self, owner: str, run_ids: Sequence[str], lease_seconds: float
    ) -> list[Lease]:
        """Take (or keep) the lease of each of these runs, in one transaction, unless another
        owner's lease on it is live (the runs need not exist yet: a starter claims its new
        runs); the leases ``owner`` now holds, in the order asked."""

    async def claim_run(self, owner: str, run_id: str, lease_seconds: float) -> Lease | None:
        """:meth:`claim_each` for one run: its lease, or None if another owner's is live."""

    async def release_leases(self, owner: str, run_ids: Sequence[str]) -> None:
        """Give up these leases (a run was let go, or the worker is leaving): another worker
        may claim a run that has not ended at once. A write that ends a run lapses its lease
        itself, whoever holds it."""

    async def renew_leases(self, owner: str, lease_seconds: float) -> set[str]:
        """Extend every live lease ``owner`` holds; the run ids it still holds (a lease that
        lapsed is not revived: the run must be claimed again)."""

    async def beat(self, worker: WorkerInfo) -> None:
        """Record that ``worker`` is alive until ``worker.expires_at`` (and what it hosts)."""

    async def list_workers(self) -> list[WorkerInfo]:
        """The workers whose last beat has not expired."""

    async def remove_worker(self, worker_id: str) -> None:
        """Forget a worker (it left, or its process is gone)."""


class StoreBase:
    """What every store shares: the async context manager and ``create`` over
    ``create_batch``. Subclasses implement the rest of :class:`Store`."""

    writes_inline = False
    """Whether ``create_batch`` completes without waiting on I/O (it never suspends): its
    callers gain nothing by gathering writes into one batch and may write one by one."""

    poll_interval = 0.25
    """Seconds between re-checks of a waiter (a run's result, a stream's tail, the log
    watcher) for what other processes commit: short where their commits are not notified
    here (SQLite), long where they are (PostgreSQL) or cannot happen (memory)."""

    claims_in_write = False
    """Whether ``create_batch`` takes leases with ``NewEvent.claim`` (else a request with a
    claim raises ``ValueError``, and a starter claims with ``claim_each`` first)."""

    async def open(self, *, create: bool = True) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def create_batch(self, requests: Sequence[NewEvent | AttachAnnotations]) -> BatchResult:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def create(self, event: NewEvent) -> Event:
        """Append one event; raise the state machine's error if it is refused."""
        return await create_one(self, event)

    async def claim_each(
        self, owner: str, run_ids: Sequence[str], lease_seconds: float
    ) -> list[Lease]:
        raise NotImplementedError

    async def claim_run(self, owner: str, run_id: str, lease_seconds: float) -> Lease | None:
        """One run's lease (see ``Store.claim_each``), or None if another owner's is live."""
        leases = await self.claim_each(owner, [run_id], lease_seconds)
        return leases[0] if leases else None


async def create_one(store: Store | StoreBase, event: NewEvent) -> Event:
    """``create`` in terms of ``create_batch``: the accepted event, or the refusal raised."""
    result = await store.create_batch([event])
    outcome = result.outcomes[0]
    if isinstance(outcome, BaseException):
        raise outcome
    assert outcome is not None
    return outcome


def first_error(result: BatchResult) -> StoreError | None:
    """The first refusal in a batch result, if any."""
    for outcome in result.outcomes:
        if isinstance(outcome, StoreError):
            return outcome
    return None
