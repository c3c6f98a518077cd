"""MemoryStore: the Store protocol held in this process's memory (``memory://``).

For tests and for benchmarks of the runtime alone. It keeps the full fold of every run and
applies each batch with the same planner as the durable stores, so its rules are theirs.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from ._memory_claims import ClaimIndex, Holding
from .batch import (
    Held,
    Request,
    TokenOwner,
    claiming,
    fenced,
    idempotency_keys,
    plan_batch,
    referenced,
)
from .dormant import Dormant, judge
from .errors import (
    EntityConflictError,
    HookNotFoundError,
    RunNotFoundError,
    StepNotFoundError,
    StreamClosedError,
)
from .events import Event, check_owner
from .notify import FOREIGN_TOPIC, INPUT_TYPES, Notifier, stream_topic
from .records import (
    AnnotationFilter,
    AnnotationRecord,
    BatchResult,
    CommittedEvent,
    Lease,
    Page,
    StreamChunk,
    StreamInfo,
    WorkerInfo,
)
from .state import Hook, HookStatus, Run, RunState, RunStatus, Step, Wait, WaitStatus
from .store import StoreBase
from .views import filter_annotations, page_after, recorded_by, statuses


class MemoryStore(StoreBase):
    """A Store in memory: nothing survives the process. Share one by passing the object.

    ``clock`` stamps the events and annotations written without a time of their own (the
    runtime's test clock, ``runtime.testing``); leases always run on the wall clock.
    """

    schema_version = 1
    writes_inline = True  # create_batch never suspends: nothing to gain from group commit
    poll_interval = 30.0  # no other process writes here
    claims_in_write = True

    def __init__(
        self, url: str = "memory://", *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.url = url
        self._clock = clock or _wall_clock
        self.notifier = Notifier()
        self._states: dict[str, RunState] = {}
        self._events: dict[str, list[Event]] = {}
        self._log: list[Event] = []
        self._tokens: dict[str, TokenOwner] = {}
        self._token_hooks: dict[str, set[tuple[str, str]]] = {}  # every hook that held a token
        self._waiting: dict[tuple[str, str], Wait] = {}
        self._annotations: dict[str, list[AnnotationRecord]] = {}
        self._keys: set[tuple[str, str, str]] = set()
        self._chunks: dict[tuple[str, str], list[StreamChunk]] = {}
        self._closed: set[tuple[str, str]] = set()
        self._cursors: dict[str, int] = {}
        self._leases: dict[str, _Held] = {}
        self._workers: dict[str, WorkerInfo] = {}
        self._claimable = ClaimIndex()  # where a claim sweep looks
        self._order: list[str] = []  # every run id, sorted: runs are listed by id

    async def open(self, *, create: bool = True) -> None:
        """Nothing to open: a memory store exists as soon as it is made (``create`` is moot)."""
        return None

    async def close(self) -> None:
        return None

    # -- writes ---------------------------------------------------------------------------

    async def create_batch(self, requests: Sequence[Request]) -> BatchResult:
        run_ids, _, tokens = referenced(requests)
        states = {run_id: self._states.get(run_id) or RunState() for run_id in run_ids}
        owners: dict[str, TokenOwner | None] = {t: self._tokens.get(t) for t in tokens}
        keys = idempotency_keys(requests) & self._keys
        epochs = {r: self._leases[r].epoch for r in fenced(requests) if r in self._leases}
        plan = plan_batch(
            states, requests, self._clock(), owners, keys, epochs, self._held(requests)
        )
        for run_id in plan.runs:
            self._states[run_id] = states[run_id]
        for run_id in plan.new_runs:
            bisect.insort(self._order, run_id)  # new ids are the latest: at or near the end
        for run_id, claimed in plan.claims.items():
            until = datetime.now(UTC) + timedelta(seconds=claimed.seconds)
            self._leases[run_id] = _Held(claimed.owner, until, claimed.epoch)
        ended = plan.ended
        if ended:
            self._lapse(ended, owner=None)
        # A run's place in the claim index moves only when it is created, claimed, ended or
        # rerun (each of the last two releases it): a step's write leaves it where it is.
        moved = plan.new_runs.union(plan.claims)
        if plan.releases:
            moved.update(r.run_id for r in plan.releases)
        for run_id in moved:
            self._track(run_id)
        for event in plan.events:
            self._events.setdefault(event.run_id, []).append(event)
            self._log.append(event)
        for hook in plan.hooks.values():
            self._track_hook(hook)
        for key, wait in plan.waits.items():
            if wait.status is WaitStatus.WAITING:
                self._waiting[key] = wait
            else:
                self._waiting.pop(key, None)
        for rows in plan.annotations:
            for row in rows:
                self._annotations.setdefault(row.run_id, []).append(row)
                if row.idempotency_key is not None:
                    self._keys.add((row.run_id, row.key, row.idempotency_key))
        topics = plan.topics()
        if any(event.event_type in INPUT_TYPES for event in plan.events):
            topics.append(FOREIGN_TOPIC)  # a step's commit wakes no other runtime's watcher
        if topics:
            self.notifier.notify(topics)
        return plan.result()

    def _held(self, requests: Sequence[Request]) -> dict[str, Held]:
        """The leases of the runs a batch claims. Leases run on the wall clock and the plan
        on the store's (a test's may be virtual): a live lease is given as never lapsing, a
        lapsed one as long gone."""
        held: dict[str, Held] = {}
        claimed = claiming(requests)
        if not claimed:
            return held
        now = datetime.now(UTC)
        for run_id in claimed:
            lease = self._leases.get(run_id)
            if lease is not None:
                until = _NEVER if lease.expires_at >= now else _LONG_AGO
                held[run_id] = Held(lease.owner, until, lease.epoch)
        return held

    def _track_hook(self, hook: Hook) -> None:
        self._token_hooks.setdefault(hook.token, set()).add((hook.run_id, hook.hook_id))
        owner = self._tokens.get(hook.token)
        if hook.status is HookStatus.ACTIVE:
            self._tokens[hook.token] = TokenOwner(hook.run_id, hook.hook_id, hook.position)
        elif owner is not None and (owner.run_id, owner.hook_id) == (hook.run_id, hook.hook_id):
            del self._tokens[hook.token]

    async def append_chunks(
        self, run_id: str, stream: str, start_index: int, chunks: Sequence[bytes], close: bool
    ) -> StreamInfo:
        if run_id not in self._states:
            raise RunNotFoundError(run_id)
        key = (run_id, stream)
        if key in self._closed:
            raise StreamClosedError(run_id, stream)
        stored = self._chunks.setdefault(key, [])
        if start_index != len(stored):
            raise EntityConflictError(
                f"chunk {start_index} of stream {stream!r} of run {run_id!r} is not the next "
                f"one ({len(stored)})"
            )
        for offset, data in enumerate(chunks):
            stored.append(StreamChunk(run_id, stream, start_index + offset, data))
        if close:
            self._closed.add(key)
        self.notifier.notify([stream_topic(run_id, stream)])
        return StreamInfo(len(stored) - 1, close)

    async def save_cursor(self, name: str, position: int) -> None:
        self._cursors[name] = position

    # -- reads ----------------------------------------------------------------------------

    async def list_events(
        self, run_id: str, *, after: str | None = None, limit: int | None = None
    ) -> Page[Event]:
        events = self._events.get(run_id, [])
        start = 0
        if after is not None:
            start = bisect.bisect_right([e.event_id for e in events], after)
        return page_after(events[start:], limit, lambda e: e.event_id)

    async def get_run(self, run_id: str) -> Run:
        state = self._states.get(run_id)
        if state is None or state.run is None:
            raise RunNotFoundError(run_id)
        return state.run

    async def list_runs(
        self,
        *,
        status: RunStatus | Sequence[RunStatus] | None = None,
        workflow_name: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[Run]:
        wanted = statuses(status)
        runs: list[Run] = []
        end = len(self._order) if cursor is None else bisect.bisect_left(self._order, cursor)
        for index in range(end - 1, -1, -1):  # newest first: by run id, descending
            if len(runs) > limit:  # one more than a page tells that more remain
                break
            run = self._states[self._order[index]].run
            if (
                run is not None
                and (wanted is None or run.status in wanted)
                and (workflow_name is None or run.workflow_name == workflow_name)
            ):
                runs.append(run)
        return page_after(runs, limit, lambda r: r.run_id)

    async def get_step(self, run_id: str, step_id: str) -> Step:
        state = self._states.get(run_id)
        step = state.steps.get(step_id) if state is not None else None
        if step is None:
            raise StepNotFoundError(run_id, step_id)
        return step

    async def list_steps(self, run_id: str) -> list[Step]:
        state = self._states.get(run_id)
        return sorted(state.steps.values(), key=_order) if state else []

    async def list_waits(self, run_id: str) -> list[Wait]:
        state = self._states.get(run_id)
        return sorted(state.waits.values(), key=_order) if state else []

    async def due_waits(self, before: datetime, limit: int = 1000) -> list[Wait]:
        due = [w for w in self._waiting.values() if w.resume_at <= before]
        due.sort(key=lambda w: (w.resume_at, w.run_id, w.wait_id))
        return due[:limit]

    async def get_hook(self, token: str) -> Hook:
        owner = self._tokens.get(token)
        if owner is None:
            raise HookNotFoundError(token)
        return self._states[owner.run_id].hooks[owner.hook_id]

    async def find_payload(self, token: str, idempotency_key: str) -> str | None:
        return recorded_by(self._hooks_of_token(token), idempotency_key)

    def _hooks_of_token(self, token: str) -> Iterator[Hook]:
        """Every hook that held ``token`` (as it is now), by run and hook id."""
        for run_id, hook_id in sorted(self._token_hooks.get(token, ())):
            hook = self._states[run_id].hooks.get(hook_id)
            if hook is not None and hook.token == token:
                yield hook

    async def resolve_hook(self, token: str, idempotency_key: str | None) -> Hook | str | None:
        owner = self._tokens.get(token)
        if owner is not None:
            return self._states[owner.run_id].hooks[owner.hook_id]
        if idempotency_key is None:
            return None
        return await self.find_payload(token, idempotency_key)

    async def list_hooks(self, run_id: str) -> list[Hook]:
        state = self._states.get(run_id)
        return sorted(state.hooks.values(), key=_order) if state else []

    async def read_chunks(
        self, run_id: str, stream: str, start_index: int = 0, limit: int = 1000
    ) -> list[StreamChunk]:
        key = (run_id, stream)
        chunks = list(self._chunks.get(key, [])[start_index : start_index + limit])
        if key in self._closed and len(chunks) < limit:
            tail = len(self._chunks.get(key, []))
            if start_index + len(chunks) >= tail:
                chunks.append(StreamChunk(run_id, stream, tail, b"", eof=True))
        return chunks

    async def stream_info(self, run_id: str, stream: str) -> StreamInfo:
        key = (run_id, stream)
        return StreamInfo(len(self._chunks.get(key, [])) - 1, key in self._closed)

    async def list_annotations(
        self, run_id: str, filters: AnnotationFilter | None = None
    ) -> list[AnnotationRecord]:
        return filter_annotations(self._annotations.get(run_id, []), filters or AnnotationFilter())

    async def read_committed(
        self, after: int, limit: int = 1000, types: Sequence[str] | None = None
    ) -> list[CommittedEvent]:
        wanted = set(types) if types is not None else None
        found: list[CommittedEvent] = []
        for position in range(after + 1, len(self._log) + 1):
            event = self._log[position - 1]
            if wanted is None or event.event_type in wanted:
                found.append(CommittedEvent(position, event))
                if len(found) >= limit:
                    break
        return found

    async def get_cursor(self, name: str) -> int:
        return self._cursors.get(name, 0)

    async def last_position(self) -> int:
        return len(self._log)

    # -- leases ---------------------------------------------------------------------------

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
        check_owner(owner)
        now = datetime.now(UTC)
        wanted = set(workflows) if workflows is not None else None
        gone = set(dead)
        claimed: list[Lease] = []
        for run_id in self._claimable.candidates(now, after, gone):
            if len(claimed) >= limit:
                break
            run = self._states[run_id].run
            if run is None or run.status.terminal:
                continue
            if wanted is not None and run.workflow_name not in wanted:
                continue
            held = self._leases.get(run_id)
            if held is None:
                fresh = run.created_at > now - timedelta(seconds=lease_seconds)
                if run.status is not RunStatus.PENDING and fresh:
                    continue
            elif held.expires_at >= now and held.owner not in gone:
                continue
            claimed.append(self._take(run_id, owner, now, lease_seconds))
        return claimed

    async def dormant_runs(self, run_ids: Sequence[str]) -> dict[str, Dormant]:
        last: dict[str, str] = {}
        busy: set[str] = set()
        waits: list[Wait] = []
        hooks: list[Hook] = []
        for run_id in dict.fromkeys(run_ids):
            state = self._states.get(run_id)
            if state is None or state.run is None or state.run.status is not RunStatus.RUNNING:
                continue
            last[run_id] = self._events[run_id][-1].event_type
            if any(not step.terminal for step in state.steps.values()):
                busy.add(run_id)
            waits += (w for w in state.waits.values() if w.status is WaitStatus.WAITING)
            hooks += (h for h in state.hooks.values() if h.status is HookStatus.ACTIVE)
        busy.update(r for r, s in self._chunks if r in last and (r, s) not in self._closed)
        return judge(last, busy, waits, hooks)

    async def claim_each(
        self, owner: str, run_ids: Sequence[str], lease_seconds: float
    ) -> list[Lease]:
        check_owner(owner)
        now = datetime.now(UTC)
        taken: list[Lease] = []
        for run_id in dict.fromkeys(run_ids):
            held = self._leases.get(run_id)
            if held is None or held.owner == owner or held.expires_at < now:
                taken.append(self._take(run_id, owner, now, lease_seconds))
        return taken

    def _take(self, run_id: str, owner: str, now: datetime, lease_seconds: float) -> Lease:
        held = self._leases.get(run_id)
        epoch = 1 if held is None else held.epoch + (held.owner != owner)
        self._leases[run_id] = _Held(owner, now + timedelta(seconds=lease_seconds), epoch)
        self._track(run_id)
        return Lease(run_id, epoch)

    def _track(self, run_id: str) -> None:
        """Tell the claim index where a run whose state or lease changed now stands."""
        state = self._states.get(run_id)
        active = state is not None and state.run is not None and not state.run.status.terminal
        held = self._leases.get(run_id)
        lease = None if held is None else Holding(held.owner, held.expires_at)
        self._claimable.track(run_id, active, lease)

    async def renew_leases(self, owner: str, lease_seconds: float) -> set[str]:
        now = datetime.now(UTC)
        until = now + timedelta(seconds=lease_seconds)
        held = {r for r, h in self._leases.items() if h.owner == owner and h.expires_at >= now}
        for run_id in held:
            self._leases[run_id] = self._leases[run_id]._replace(expires_at=until)
        self._claimable.renewed(owner, held, until)
        return held

    async def release_leases(self, owner: str, run_ids: Sequence[str]) -> None:
        self._lapse(run_ids, owner)

    def _lapse(self, run_ids: Sequence[str], owner: str | None) -> None:
        """Let the leases of these runs (held by ``owner``; None: by anyone) lapse now."""
        lapsed = datetime.now(UTC) - timedelta(microseconds=1)
        for run_id in run_ids:
            held = self._leases.get(run_id)
            if held is not None and owner in (None, held.owner) and held.expires_at > lapsed:
                self._leases[run_id] = held._replace(expires_at=lapsed)
                self._track(run_id)

    async def beat(self, worker: WorkerInfo) -> None:
        self._workers[worker.worker_id] = worker

    async def list_workers(self) -> list[WorkerInfo]:
        now = datetime.now(UTC)
        return sorted(
            (w for w in self._workers.values() if w.expires_at >= now), key=lambda w: w.worker_id
        )

    async def remove_worker(self, worker_id: str) -> None:
        self._workers.pop(worker_id, None)


_NEVER = datetime.max.replace(tzinfo=UTC)
_LONG_AGO = datetime.min.replace(tzinfo=UTC)


class _Held(NamedTuple):
    """A lease as the memory store keeps it."""

    owner: str
    expires_at: datetime
    epoch: int


def _order(entity: Step | Wait | Hook) -> tuple[int, int]:
    return (entity.generation, entity.position)


def _wall_clock() -> datetime:
    return datetime.now(UTC)
