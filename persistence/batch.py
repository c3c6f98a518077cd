"""Planning a batch: what ``create_batch`` writes, decided by the state machines alone.

Every store calls :func:`plan_batch` with the state it loaded for the runs and entities a
batch names, then writes the plan in one transaction. The planner is pure: it assigns event
ids, folds each event with :func:`rules.apply` (so an illegal one is refused with its
error and changes nothing), turns a second live claim of a hook token into ``hook_conflict``,
deduplicates annotations by idempotency key, and emits ``annotation_created`` only for rows
it actually inserts. One request's refusal never affects the others, except through state
(a step created after its run was cancelled in the same batch is refused, as it should be).

The plan it fills, :class:`persistence.plan.BatchPlan`, and the records it takes (token
owners, leases held) live in :mod:`persistence.plan`; they are importable from here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

from . import events as ev
from .errors import (
    ConcurrentWriteError,
    EntityConflictError,
    LeaseLostError,
    RunNotFoundError,
    StoreError,
)
from .events import Event, NewAnnotation, NewEvent
from .ids import ANNOTATION, EventIds, new_id
from .plan import BatchPlan, Claimed, Held, Release, TokenOwner
from .records import AnnotationRecord, AttachAnnotations
from .rules import apply
from .state import HookStatus, RunState

Request = NewEvent | AttachAnnotations

_TYPES: dict[type, str] = {cls: name for name, cls in ev.DATA_TYPES.items()}
"""Each event data class's event type (its tag)."""


def referenced(requests: Sequence[Request]) -> tuple[set[str], dict[str, set[str]], set[str]]:
    """The run ids, the correlation ids per run and the hook tokens a batch refers to."""
    runs: set[str] = set()
    entities: dict[str, set[str]] = {}
    tokens: set[str] = set()
    for request in requests:
        runs.add(request.run_id)
        if isinstance(request, NewEvent):
            if request.correlation_id is not None:
                entities.setdefault(request.run_id, set()).add(request.correlation_id)
            if isinstance(request.data, ev.HookCreated):
                tokens.add(request.data.token)
    return runs, entities, tokens


def idempotency_keys(requests: Sequence[Request]) -> set[tuple[str, str, str]]:
    """The ``(run_id, key, idempotency_key)`` triples a batch's annotations carry."""
    return {
        (request.run_id, row.key, row.idempotency_key)
        for request in requests
        for row in request.annotations
        if row.idempotency_key is not None
    }


def plan_batch(
    states: Mapping[str, RunState],
    requests: Sequence[Request],
    now: datetime,
    tokens: Mapping[str, TokenOwner | None] | None = None,
    existing_keys: Iterable[tuple[str, str, str]] = (),
    epochs: Mapping[str, int] | None = None,
    held: Mapping[str, Held] | None = None,
) -> BatchPlan:
    """Decide each request of a batch against ``states`` (updated in place).

    ``states`` must hold every run the batch names (an empty ``RunState`` for a run that does
    not exist) with the entities its events name; ``tokens`` the live owner of every hook
    token claimed; ``existing_keys`` the annotation idempotency keys already stored;
    ``epochs`` the lease epoch of every run a request is fenced on (none: no lease);
    ``held`` the lease (if any) of every run a request claims (see ``NewEvent.claim``).
    """
    next_id = EventIds(
        len(requests) + sum(len(r.annotations) for r in requests),
        (s.run.last_event_id for s in states.values() if s.run is not None),
    )
    plan = BatchPlan(next_id=next_id)
    chains: dict[tuple[str, str], str] = {}
    owners = dict(tokens or {})
    seen_keys = set(existing_keys)
    touched: dict[str, RunState] = {}
    for request in requests:
        state = states[request.run_id]
        emitted: list[Event] = []
        plan.emitted.append(emitted)
        if type(request) is AttachAnnotations:
            try:
                if state.run is None:
                    raise RunNotFoundError(request.run_id)
                _check_fence(request, epochs)
                _check_condition(state, request, chains)
            except StoreError as error:
                plan.outcomes.append(error)
                plan.annotations.append([])
                continue
            plan.outcomes.append(None)
            plan.annotations.append(
                _annotations(plan, state, request.annotations, now, seen_keys, touched, emitted)
            )
            _extend_chain(state, request, chains)
            if request.fence is not None:
                plan.fences[request.run_id] = request.fence
            continue
        assert isinstance(request, NewEvent)
        if request.requires_previous:
            previous = plan.outcomes[-1] if plan.outcomes else None
            if isinstance(previous, BaseException) or not plan.outcomes:
                plan.outcomes.append(
                    EntityConflictError("refused because the event it depends on was refused")
                )
                plan.annotations.append([])
                continue
        run_id = request.run_id
        run = state.run
        before = run.last_event_id if run is not None else None
        was_terminal = run is not None and run.status.terminal
        claimed = None
        try:
            if request.fence is not None:
                _check_fence(request, epochs)
            if request.if_last_event_id is not None:
                _check_condition(state, request, chains)
            if request.claim is not None:
                claimed = _check_claim(request, held, now)
            event = _admit(state, request, now, owners, next_id)
        except StoreError as error:
            plan.outcomes.append(error)
            plan.annotations.append([])
            continue
        if claimed is not None:
            plan.claims[run_id] = claimed
        if run_id not in plan.expected:
            plan.expected[run_id] = before
        if before is None:
            plan.new_runs.add(run_id)
        touched[run_id] = state
        if request.fence is not None:
            plan.fences[run_id] = request.fence
        plan.events.append(event)
        plan.outcomes.append(event)
        _record(plan, state, event, owners, was_terminal)
        if request.annotations:
            plan.annotations.append(
                _annotations(
                    plan, state, request.annotations, event.created_at, seen_keys, touched, emitted
                )
            )
        else:
            plan.annotations.append([])
        if request.if_last_event_id is not None:
            _extend_chain(state, request, chains)
    for run_id, state in touched.items():
        assert state.run is not None
        plan.runs[run_id] = state.run
    return plan


def fenced(requests: Sequence[Request]) -> set[str]:
    """The runs a batch writes with a lease fence (their epochs must be loaded)."""
    return {request.run_id for request in requests if request.fence is not None}


def claiming(requests: Sequence[Request]) -> set[str]:
    """The runs a batch claims with ``NewEvent.claim`` (their leases must be loaded)."""
    return {r.run_id for r in requests if isinstance(r, NewEvent) and r.claim is not None}


def _check_claim(
    request: NewEvent, held: Mapping[str, Held] | None, now: datetime
) -> Claimed | None:
    """The lease a ``claim`` takes; refused if another owner's lease on the id is live."""
    claim = request.claim
    if claim is None:
        return None
    if not isinstance(request.data, ev.RunCreated):
        raise ValueError(f"a lease is claimed with run_created only, not {request.event_type}")
    lease = (held or {}).get(request.run_id)
    if lease is None:
        return Claimed(claim.owner, claim.seconds, 1)
    if lease.owner == claim.owner:
        return Claimed(claim.owner, claim.seconds, lease.epoch)
    if lease.expires_at >= now:
        raise EntityConflictError(
            f"run {request.run_id!r} is being started by worker {lease.owner!r}"
        )
    return Claimed(claim.owner, claim.seconds, lease.epoch + 1)


def _check_fence(request: Request, epochs: Mapping[str, int] | None) -> None:
    """Refuse a fenced request of a worker whose lease has passed to another."""
    if request.fence is None:
        return
    epoch = (epochs or {}).get(request.run_id)
    if epoch != request.fence:
        raise LeaseLostError(request.run_id, request.fence, epoch)


def _check_condition(state: RunState, request: Request, chains: dict[tuple[str, str], str]) -> None:
    """Refuse a conditional request if another writer's event came since its condition.

    The condition ``""`` means "the run does not exist yet" (for a writer creating it).
    """
    expected = request.if_last_event_id
    if expected is None:
        return
    last = state.run.last_event_id if state.run is not None else ""
    if last != expected and last != chains.get((request.run_id, expected)):
        raise ConcurrentWriteError(
            f"run {request.run_id!r} changed since its writer read it: expected last event "
            f"{expected!r}, found {last!r}"
        )


def _extend_chain(state: RunState, request: Request, chains: dict[tuple[str, str], str]) -> None:
    """After a conditional request, its writer's next request may follow its last event."""
    if request.if_last_event_id is not None and state.run is not None:
        chains[(request.run_id, request.if_last_event_id)] = state.run.last_event_id


def _admit(
    state: RunState,
    request: NewEvent,
    now: datetime,
    owners: dict[str, TokenOwner | None],
    next_id: Callable[[], str],
) -> Event:
    """Build the event for ``request`` and fold it into ``state``; raise if refused."""
    data = request.data
    kind = type(data)
    if kind is ev.HookConflict:
        raise EntityConflictError("hook_conflict is written by the store, not by clients")
    if kind is ev.HookCreated:
        assert isinstance(data, ev.HookCreated)
        owner = owners.get(data.token)
        if owner is not None and (owner.run_id, owner.hook_id) != (
            request.run_id,
            request.correlation_id,
        ):
            data = ev.HookConflict(
                token=data.token,
                conflicting_run_id=owner.run_id,
                position=data.position,
                generation=data.generation,
            )
    event = Event(  # positional: the fields' order
        next_id(),
        request.run_id,
        _TYPES.get(type(data)) or ev.event_type_of(data),
        request.correlation_id,
        data,
        request.created_at or now,
        request.spec_version,
    )
    apply(state, event)
    return event


def _record(
    plan: BatchPlan,
    state: RunState,
    event: Event,
    owners: dict[str, TokenOwner | None],
    was_terminal: bool,
) -> None:
    """Note the entity ``event`` changed, and the releases and token moves it caused."""
    run_id, key = event.run_id, event.correlation_id
    data = event.data
    if key is not None:
        step = state.steps.get(key)
        if step is not None:
            plan.steps[(run_id, key)] = step
        wait = state.waits.get(key)
        if wait is not None:
            plan.waits[(run_id, key)] = wait
        hook = state.hooks.get(key)
        if hook is not None:
            plan.hooks[(run_id, key)] = hook
            if hook.status is HookStatus.ACTIVE:
                owners[hook.token] = TokenOwner(run_id, key, hook.position)
            elif owners.get(hook.token) == TokenOwner(run_id, key, hook.position):
                owners[hook.token] = None
    start = None
    if event.event_type in ev.TERMINAL_RUN_EVENTS and not was_terminal:
        start = 0
    elif isinstance(data, ev.RunRerun):
        start = data.from_position
    if start is None:
        return
    plan.releases.append(Release(run_id, start, event.created_at))
    for token, owner in owners.items():
        if owner is not None and owner.run_id == run_id and owner.position >= start:
            owners[token] = None
    for hook_id, hook in state.hooks.items():
        plan.hooks[(run_id, hook_id)] = hook
    for wait_id, wait in state.waits.items():
        plan.waits[(run_id, wait_id)] = wait


def _annotations(
    plan: BatchPlan,
    state: RunState,
    rows: Sequence[NewAnnotation],
    now: datetime,
    seen_keys: set[tuple[str, str, str]],
    touched: dict[str, RunState],
    emitted: list[Event],
) -> list[AnnotationRecord]:
    """Rows to insert (first write of an idempotency key wins) and their events."""
    inserted: list[AnnotationRecord] = []
    assert state.run is not None
    run_id = state.run.run_id
    for row in rows:
        if row.idempotency_key is not None:
            triple = (run_id, row.key, row.idempotency_key)
            if triple in seen_keys:
                continue
            seen_keys.add(triple)
        record = AnnotationRecord(
            id=new_id(ANNOTATION),
            run_id=run_id,
            key=row.key,
            value=row.value,
            scope=row.scope,
            scope_id=row.scope_id,
            step_id=row.step_id,
            attempt=row.attempt,
            actor_kind=row.actor_kind,
            actor_id=row.actor_id,
            actor_version=row.actor_version,
            payload=row.payload,
            idempotency_key=row.idempotency_key,
            created_at=now,
        )
        inserted.append(record)
        if row.emit_event:
            emitted.append(_emit_annotation_event(plan, state, record, touched))
    return inserted


def _emit_annotation_event(
    plan: BatchPlan, state: RunState, record: AnnotationRecord, touched: dict[str, RunState]
) -> Event:
    assert state.run is not None
    run_id = state.run.run_id
    if run_id not in plan.expected:
        plan.expected[run_id] = state.run.last_event_id
    event = Event(
        event_id=plan.next_id(),
        run_id=run_id,
        event_type="annotation_created",
        correlation_id=None,
        data=ev.AnnotationCreated(
            annotation_id=record.id,
            key=record.key,
            scope=record.scope,
            scope_id=record.scope_id,
            attempt=record.attempt,
        ),
        created_at=record.created_at,
    )
    apply(state, event)
    touched[run_id] = state
    plan.events.append(event)
    return event


__all__ = [
    "BatchPlan",
    "Claimed",
    "Held",
    "Request",
    "TokenOwner",
    "claiming",
    "fenced",
    "idempotency_keys",
    "plan_batch",
    "referenced",
]
