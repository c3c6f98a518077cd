"""The step profile (``python -m benchmarks.step_profile``): its parts, and that it leaves
the store as it found it."""

from __future__ import annotations

import pytest

from benchmarks import step_profile
from benchmarks.step_profile import StepProfile, _Calls, profile_steps, summarize
from persistence import _sqlite_jobs as sqlite_jobs

from ..conftest import postgres_base_url

pytestmark = pytest.mark.anyio

STEPS = step_profile.WARM_STEPS + 40


async def test_a_memory_step_splits_into_loop_and_store() -> None:
    profile = await profile_steps("memory", STEPS)
    assert profile.steps == STEPS and profile.gap > 0 and profile.store > 0
    assert 0 < profile.loop < profile.gap
    assert profile.parts == {}


async def test_a_sqlite_step_shows_the_writer_and_its_statements() -> None:
    write_batch = sqlite_jobs.write_batch
    profile = await profile_steps("sqlite", STEPS)
    assert sqlite_jobs.write_batch is write_batch  # restored
    parts = profile.parts
    assert list(parts) == [
        "to writer",
        "writer",
        "to loop",
        "  writer: begin",
        "  writer: commit",
        "  writer: sql",
        "  writer: python",
    ]
    assert all(value > 0 for value in parts.values())
    assert parts["writer"] < profile.store < profile.gap
    assert parts["  writer: commit"] < parts["writer"]
    table = "\n".join(profile.lines())
    assert "| sqlite: part of a step | µs | share |" in table and "writer: commit" in table


async def test_a_postgresql_step() -> None:
    profile = await profile_steps("postgres", STEPS, postgres_base_url())
    assert 0 < profile.store < profile.gap and profile.parts == {}


def test_too_few_steps_are_refused() -> None:
    with pytest.raises(ValueError, match="too few steps to profile: 50"):
        summarize("memory", [float(i) for i in range(50)], _Calls([[0.0, 1.0]] * 50))
    with pytest.raises(ValueError, match="149 gaps but 40 writes inside them"):
        summarize("memory", [float(i) for i in range(250)], _Calls([[0.0, 1.0]] * 141))
    with pytest.raises(SystemExit) as exit_:
        step_profile.main(["--steps", "10"])
    assert exit_.value.code == 2


def test_the_table_gives_each_part_a_share_of_the_gap() -> None:
    profile = StepProfile("memory", 500, gap=200.0, loop=150.0, store=50.0)
    assert profile.lines()[2:] == [
        "| gap between two step bodies | 200 | 100% |",
        "| loop | 150 | 75% |",
        "| store (`create_batch` awaited) | 50 | 25% |",
    ]
