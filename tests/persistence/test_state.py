"""Property tests of the state machines: any sequence of events is applied or refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from persistence import events as ev
from persistence.errors import (
    EntityConflictError,
    HookNotFoundError,
    RunExpiredError,
    RunNotFoundError,
    RunNotSupportedError,
    StepNotFoundError,
    StoreError,
    TooEarlyError,
    WaitNotFoundError,
)
from persistence.events import ErrorInfo, Event
from persistence.rules import apply, check, fold
from persistence.state import RunState, RunStatus, StepStatus

SPECIFIC = (
    EntityConflictError,
    HookNotFoundError,
    RunExpiredError,
    RunNotFoundError,
    RunNotSupportedError,
    StepNotFoundError,
    TooEarlyError,
    WaitNotFoundError,
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
RUN = "wrun_1"

steps = st.sampled_from(["s1", "s2"])
waits = st.sampled_from(["w1", "w2"])
hooks = st.sampled_from(["h1", "h2"])
tokens = st.sampled_from(["t1", "t2"])
offsets = st.integers(min_value=-5, max_value=5).map(lambda s: T0 + timedelta(seconds=s))
error = st.just(ErrorInfo(message="x"))

data_and_id = st.one_of(
    st.tuples(
        st.just(None), st.builds(ev.RunCreated, workflow_name=st.just("w"), input=st.just(b""))
    ),
    st.tuples(st.just(None), st.builds(ev.RunStarted)),
    st.tuples(st.just(None), st.builds(ev.RunCompleted, output=st.just(b""))),
    st.tuples(st.just(None), st.builds(ev.RunFailed, error=error)),
    st.tuples(st.just(None), st.builds(ev.RunCancelled)),
    st.tuples(
        st.just(None),
        st.builds(ev.RunRerun, generation=st.integers(0, 3), from_position=st.integers(0, 2)),
    ),
    st.tuples(
        steps,
        st.builds(
            ev.StepCreated, step_name=st.just("s"), input=st.just(b""), position=st.integers(0, 2)
        ),
    ),
    st.tuples(steps, st.builds(ev.StepStarted)),
    st.tuples(steps, st.builds(ev.StepCompleted, result=st.just(b""))),
    st.tuples(steps, st.builds(ev.StepFailed, error=error)),
    st.tuples(steps, st.builds(ev.StepRetrying, error=error, retry_after=st.none() | offsets)),
    st.tuples(waits, st.builds(ev.WaitCreated, resume_at=offsets, position=st.integers(0, 2))),
    st.tuples(waits, st.builds(ev.WaitCompleted)),
    st.tuples(hooks, st.builds(ev.HookCreated, token=tokens, position=st.integers(0, 2))),
    st.tuples(
        hooks,
        st.builds(
            ev.HookConflict,
            token=tokens,
            conflicting_run_id=st.just("wrun_2"),
            position=st.integers(0, 2),
        ),
    ),
    st.tuples(hooks, st.builds(ev.HookReceived, payload=st.just(b""))),
    st.tuples(hooks, st.builds(ev.HookDisposed)),
    st.tuples(
        st.just(None),
        st.builds(
            ev.AnnotationCreated,
            annotation_id=st.just("a"),
            key=st.just("a.b"),
            scope=st.just("run"),
        ),
    ),
)


@st.composite
def event_logs(draw: st.DrawFn) -> list[Event]:
    items = draw(st.lists(data_and_id, max_size=40))
    newer = draw(st.lists(st.booleans(), min_size=len(items), max_size=len(items)))
    times = draw(st.lists(offsets, min_size=len(items), max_size=len(items)))
    return [
        Event(
            event_id=f"evnt_{i:06d}",
            run_id=RUN,
            event_type=ev.event_type_of(data),
            correlation_id=corr,
            data=data,
            created_at=at,
            spec_version=ev.SPEC_VERSION + 1 if new and i % 7 == 3 else ev.SPEC_VERSION,
        )
        for i, ((corr, data), new, at) in enumerate(zip(items, newer, times, strict=True))
    ]


@settings(max_examples=400, deadline=None)
@given(event_logs())
def test_every_event_is_applied_or_refused_with_a_specific_error(log: list[Event]) -> None:
    state = RunState()
    accepted: list[Event] = []
    for event in log:
        before = state.copy()
        try:
            apply(state, event)
        except StoreError as exc:
            assert isinstance(exc, SPECIFIC), type(exc)
            assert state == before, "a refused event changed the state"
            continue
        accepted.append(event)
    assert fold(accepted) == state
    for event in accepted:
        assert event.spec_version == ev.SPEC_VERSION


@settings(max_examples=300, deadline=None)
@given(event_logs())
def test_check_agrees_with_apply(log: list[Event]) -> None:
    state = RunState()
    for event in log:
        try:
            check(state, event)
            legal = True
        except StoreError:
            legal = False
        try:
            apply(state, event)
            applied = True
        except StoreError:
            applied = False
        assert legal == applied


@settings(max_examples=300, deadline=None)
@given(event_logs())
def test_folding_a_checked_event_gives_what_applying_it_gives(log: list[Event]) -> None:
    applied, folded = RunState(), RunState()
    for event in log:
        try:
            check(applied, event)
        except StoreError:
            continue
        apply(applied, event)
        apply(folded, event, checked=True)
        assert folded == applied


@settings(max_examples=300, deadline=None)
@given(event_logs())
def test_invariants_of_any_accepted_history(log: list[Event]) -> None:
    state = RunState()
    terminal_steps: dict[str, int] = {}
    run_ends = 0
    for event in log:
        try:
            apply(state, event)
        except StoreError:
            continue
        if event.event_type in ("step_completed", "step_failed"):
            terminal_steps[event.correlation_id or ""] = (
                terminal_steps.get(event.correlation_id or "", 0) + 1
            )
        if event.event_type in ("run_completed", "run_failed"):
            run_ends += 1
        if event.event_type == "run_rerun":
            run_ends = 0
    assert all(count == 1 for count in terminal_steps.values())
    assert run_ends <= 1
    if state.run is not None and state.run.status.terminal:
        assert all(h.status != "active" for h in state.hooks.values())
        assert all(w.status != "waiting" for w in state.waits.values())
    for step in state.steps.values():
        assert step.status is not StepStatus.RUNNING or step.attempt >= 1


def test_unknown_run_and_simple_history() -> None:
    def make(i: int, data: ev.EventData, corr: str | None = None) -> Event:
        return Event(f"evnt_{i}", RUN, ev.event_type_of(data), corr, data, T0)

    state = RunState()
    try:
        apply(state, make(0, ev.RunStarted()))
    except RunNotFoundError:
        pass
    else:
        raise AssertionError("run_started on a missing run was accepted")
    fold(
        [
            make(1, ev.RunCreated(workflow_name="w", input=b"")),
            make(2, ev.RunStarted()),
            make(3, ev.StepCreated(step_name="s", input=b"", position=0), "s1"),
            make(4, ev.StepStarted(), "s1"),
            make(5, ev.StepCompleted(result=b"r"), "s1"),
            make(6, ev.RunCompleted(output=b"o")),
        ],
        state,
    )
    assert state.run is not None and state.run.status is RunStatus.COMPLETED
    assert state.run.event_count == 6 and state.run.last_event_id == "evnt_6"
    assert state.steps["s1"].output == b"r"
