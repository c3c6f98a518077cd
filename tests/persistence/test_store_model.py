"""Differential property test: every store decides random batches exactly as the model does.

The model is the pure fold (via MemoryStore's use of the planner). For random request
sequences cut into random batches, each store must accept and refuse the same requests with
the same error classes, and its entity views must equal the fold of its own event log.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persistence import MemoryStore, NewEvent, Store, fold, open_store
from persistence import events as ev
from persistence.events import ErrorInfo
from persistence.ids import RUN, new_id

NOW = datetime.now(UTC)
error = ErrorInfo(message="x")

requests_for_run = st.one_of(
    st.just((None, ev.RunCreated(workflow_name="w", input=b""))),
    st.just((None, ev.RunStarted())),
    st.just((None, ev.RunCompleted(output=b"o"))),
    st.just((None, ev.RunFailed(error=error))),
    st.just((None, ev.RunCancelled())),
    st.builds(lambda g: (None, ev.RunRerun(generation=g, from_position=0)), st.integers(0, 2)),
    st.builds(
        lambda s, p: (s, ev.StepCreated(step_name="s", input=b"i", position=p)),
        st.sampled_from(["s1", "s2"]),
        st.integers(0, 3),
    ),
    st.builds(lambda s: (s, ev.StepStarted()), st.sampled_from(["s1", "s2"])),
    st.builds(lambda s: (s, ev.StepCompleted(result=b"r")), st.sampled_from(["s1", "s2"])),
    st.builds(lambda s: (s, ev.StepFailed(error=error)), st.sampled_from(["s1", "s2"])),
    st.builds(
        lambda s, later: (
            s,
            ev.StepRetrying(error=error, retry_after=NOW + timedelta(hours=1) if later else None),
        ),
        st.sampled_from(["s1", "s2"]),
        st.booleans(),
    ),
    st.builds(
        lambda w, p: (w, ev.WaitCreated(resume_at=NOW, position=p)),
        st.sampled_from(["w1"]),
        st.integers(0, 3),
    ),
    st.just(("w1", ev.WaitCompleted())),
    st.builds(
        lambda h, t, p: (h, ev.HookCreated(token=t, position=p)),
        st.sampled_from(["h1", "h2"]),
        st.sampled_from(["t1", "t2"]),
        st.integers(0, 3),
    ),
    st.builds(lambda h: (h, ev.HookReceived(payload=b"p")), st.sampled_from(["h1", "h2"])),
    st.builds(lambda h: (h, ev.HookDisposed()), st.sampled_from(["h1", "h2"])),
)

scenario = st.lists(
    st.tuples(st.integers(0, 1), requests_for_run, st.booleans()), min_size=1, max_size=30
)


def outcome_kind(outcome: Any) -> str:
    if isinstance(outcome, ev.Event):
        return outcome.event_type
    return type(outcome).__name__


async def play(store: Store, runs: list[str], steps: list[tuple[int, Any, bool]]) -> list[str]:
    kinds: list[str] = []
    batch: list[NewEvent] = []
    for which, (corr, data), cut in steps:
        if isinstance(data, ev.HookCreated):  # tokens are store-wide: keep examples apart
            data = ev.HookCreated(token=f"{runs[0]}:{data.token}", position=data.position)
        batch.append(NewEvent(runs[which], data, corr))
        if cut:
            result = await store.create_batch(batch)
            kinds.extend(outcome_kind(o) for o in result.outcomes)
            batch = []
    if batch:
        result = await store.create_batch(batch)
        kinds.extend(outcome_kind(o) for o in result.outcomes)
    return kinds


async def views_match_log(store: Store, run: str) -> None:
    log = (await store.list_events(run)).items
    if not log:
        return
    state = fold(log)
    assert await store.get_run(run) == state.run
    assert {s.step_id: s for s in await store.list_steps(run)} == state.steps
    assert {w.wait_id: w for w in await store.list_waits(run)} == state.waits
    assert {h.hook_id: h for h in await store.list_hooks(run)} == state.hooks


@pytest.mark.parametrize("examples", [60])
def test_store_decides_like_the_model(store_url: str, examples: int) -> None:
    if store_url.startswith("postgresql"):
        examples = 25

    async def body(store: Store, steps: list[tuple[int, Any, bool]]) -> None:
        runs = [new_id(RUN), new_id(RUN)]
        model_kinds = await play(MemoryStore(), runs, steps)
        kinds = await play(store, runs, steps)
        assert kinds == model_kinds
        for run in runs:
            await views_match_log(store, run)

    with anyio.from_thread.start_blocking_portal() as portal:
        store = portal.call(open_store, store_url)

        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(scenario)
        def check(steps: list[tuple[int, Any, bool]]) -> None:
            portal.call(body, store, steps)

        try:
            check()
        finally:
            portal.call(store.close)
