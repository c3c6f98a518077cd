"""Assertions on what a run did: its steps, their attempts, its sleeps, hooks, annotations.

Each reads the run's store and raises ``AssertionError`` saying what the run did instead.
A step is named by its registered name (``"orders:charge"``), the part after the colon
(``"charge"``) or the ``@step`` function itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from persistence import Step, Store

from ..durations import Duration, resolve_instant

if TYPE_CHECKING:
    from ..registry import StepFunction
    from ..run import Run


async def assert_steps(run: Run, expected: Sequence[str | StepFunction[Any, Any]]) -> None:
    """The run called exactly these steps, in this order (retries are one call)."""
    __tracebackhide__ = True
    steps = await _steps(run)
    wanted = [_name(e) for e in expected]
    if len(steps) != len(wanted) or not all(
        _matches(s.step_name, w) for s, w in zip(steps, wanted, strict=False)
    ):
        made = [_short(s.step_name, wanted) for s in steps]
        raise AssertionError(f"run {run.id} called steps {made}, expected {wanted}")


async def assert_attempts(
    run: Run, step: str | StepFunction[Any, Any], expected: int | Sequence[int]
) -> None:
    """The calls of ``step`` took these attempts: an int for a step called once, else a list
    with one count per call, in call order."""
    __tracebackhide__ = True
    name = _name(step)
    calls = [s.attempt for s in await _steps(run) if _matches(s.step_name, name)]
    if isinstance(expected, int):
        if len(calls) != 1:
            raise AssertionError(
                f"run {run.id} called step {name!r} {len(calls)} time(s) (attempts {calls}); "
                "give one count per call as a list"
            )
        wanted = [expected]
    else:
        wanted = list(expected)
    if calls != wanted:
        raise AssertionError(f"step {name!r} of run {run.id} took attempts {calls}, not {wanted}")


async def assert_waits(run: Run, expected: Sequence[Duration]) -> None:
    """The run slept these durations (``"1h"``, seconds, a timedelta; a datetime is the
    instant a sleep ends), in order."""
    __tracebackhide__ = True
    waits = sorted(await _store(run).list_waits(run.id), key=lambda w: (w.generation, w.position))
    made = [w.resume_at - w.created_at for w in waits]
    ok = len(waits) == len(expected)
    for wait, want in zip(waits, expected, strict=False):
        if isinstance(want, datetime):
            ok = ok and wait.resume_at == resolve_instant(want, wait.created_at)
        else:
            ok = ok and wait.resume_at - wait.created_at == _delta(want)
    if not ok:
        raise AssertionError(
            f"run {run.id} slept {[_text(d) for d in made]}, expected {list(map(str, expected))}"
        )


async def assert_hooks(run: Run, tokens: Sequence[str]) -> None:
    """The run created hooks with these tokens, in order."""
    __tracebackhide__ = True
    hooks = sorted(await _store(run).list_hooks(run.id), key=lambda h: (h.generation, h.position))
    made = [h.token for h in hooks]
    if made != list(tokens):
        raise AssertionError(f"run {run.id} created hooks {made}, expected {list(tokens)}")


async def assert_annotations(run: Run, expected: Mapping[Any, Any], **filters: Any) -> None:
    """The run has annotations with these values (keys are strings or typed keys); where a
    key has several rows, the latest counts. ``filters`` are those of ``annotations.list``
    (``scope="step"``, ``attempt=0``, ...)."""
    __tracebackhide__ = True
    rows = await run._runtime.annotations.list(run.id, **filters)
    latest = {row.key: row.value for row in rows}
    wrong = {}
    for key, value in expected.items():
        name = getattr(key, "key", key)
        if name not in latest or latest[name] != value:
            wrong[name] = latest.get(name, "<missing>")
    if wrong:
        raise AssertionError(
            f"run {run.id} annotations differ: expected {dict(_keyed(expected))}, found "
            f"{wrong} (all: {latest})"
        )


def _store(run: Run) -> Store:
    return run._runtime.store


async def _steps(run: Run) -> list[Step]:
    steps = await _store(run).list_steps(run.id)
    return sorted(steps, key=lambda s: (s.generation, s.position))


def _name(step: Any) -> str:
    name = getattr(step, "name", step)
    if not isinstance(name, str) or not name:
        raise TypeError(f"name a step by its name or its @step function, not {step!r}")
    return name


def _matches(full: str, wanted: str) -> bool:
    return full == wanted or (":" not in wanted and full.rpartition(":")[2] == wanted)


def _short(full: str, wanted: Sequence[str]) -> str:
    """A step's name as the expectation spells names (short if it uses short ones)."""
    if wanted and all(":" not in w for w in wanted):
        return full.rpartition(":")[2]
    return full


def _delta(value: Duration) -> timedelta:
    origin = datetime(2000, 1, 1, tzinfo=UTC)
    return resolve_instant(value, origin) - origin


def _text(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:g}s"


def _keyed(expected: Mapping[Any, Any]) -> list[tuple[str, Any]]:
    return [(getattr(k, "key", k), v) for k, v in expected.items()]
