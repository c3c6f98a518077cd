"""Finding where a rerun starts: a step id, or a step name meaning its first call."""

from __future__ import annotations

from persistence import RunStatus, Store
from persistence import events as ev
from persistence.errors import EntityConflictError, StepNotFoundError
from persistence.history import effective_history


async def rerun_point(store: Store, run_id: str, step: str) -> ev.RunRerun:
    """The ``run_rerun`` data that reruns ``run_id`` from ``step`` (nothing is written).

    ``StepNotFoundError`` if the run's current history has no such step.
    """
    run = await store.get_run(run_id)
    if run.status is RunStatus.PENDING:
        raise EntityConflictError(f"run {run_id!r} has not started; nothing to rerun")
    events: list[ev.Event] = []
    after = None
    while True:
        page = await store.list_events(run_id, after=after, limit=1000)
        events.extend(page.items)
        if page.cursor is None:
            break
        after = page.cursor
    _, current = effective_history(events)
    steps = [s for s in await store.list_steps(run_id) if s.step_id in current]
    target = next((s for s in steps if s.step_id == step), None)
    if target is None:
        named = [s for s in steps if s.step_name == step]
        target = min(named, key=lambda s: s.position) if named else None
    if target is None:
        raise StepNotFoundError(run_id, step)
    return ev.RunRerun(
        generation=run.generation + 1, from_position=target.position, from_step_id=target.step_id
    )
