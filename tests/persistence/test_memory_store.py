"""The memory store's indexes answer as a scan of every run would: its claims, in random
histories of runs, leases and time (the store's clock frozen and moved by the test), and its
listings of runs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from persistence import Lease, LeaseClaim, MemoryStore, RunStatus
from persistence import events as ev
from persistence import memory as memory_module
from persistence.events import NewEvent

from .helpers import completed, created, started

START = datetime(2030, 1, 1, tzinfo=UTC)
RUNS = [f"wrun_{i:02d}" for i in range(6)]
OWNERS = ["a", "b", "c"]


class _Clock:
    now = START


class _FrozenDatetime(datetime):
    """``datetime`` whose ``now`` is the test's clock (the store reads the time this way)."""

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return _Clock.now


@pytest.fixture(autouse=True)
def frozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(memory_module, "datetime", _FrozenDatetime)
    _Clock.now = START
    yield


def scan(
    store: MemoryStore,
    lease_seconds: float,
    limit: int,
    workflows: list[str] | None,
    dead: list[str],
    after: str,
) -> list[str]:
    """The runs a claim takes, by the rules of ``Store.claim_runs`` over every run in id
    order (what the memory store did before it kept an index)."""
    now = _Clock.now
    found: list[str] = []
    for run_id, state in sorted(store._states.items()):
        run = state.run
        if len(found) >= limit or run is None or run_id <= after or run.status.terminal:
            continue
        if workflows is not None and run.workflow_name not in workflows:
            continue
        held = store._leases.get(run_id)
        if held is None:
            young = run.created_at > now - timedelta(seconds=lease_seconds)
            if run.status is not RunStatus.PENDING and young:
                continue
        elif held.expires_at >= now and held.owner not in dead:
            continue
        found.append(run_id)
    return found


run_ids = st.sampled_from(RUNS)
owners = st.sampled_from(OWNERS)
seconds = st.sampled_from([0.0, 1.0, 5.0, 30.0])
operations = st.one_of(
    st.tuples(st.just("create"), run_ids, st.booleans(), st.sampled_from(["wf", "other"])),
    st.tuples(st.just("start_claimed"), run_ids, owners, seconds),
    st.tuples(st.just("end"), run_ids),
    st.tuples(st.just("rerun"), run_ids),
    st.tuples(st.just("claim_each"), st.lists(run_ids, max_size=3), owners, seconds),
    st.tuples(st.just("release"), owners, st.lists(run_ids, max_size=3)),
    st.tuples(st.just("renew"), owners, seconds),
    st.tuples(st.just("tick"), st.sampled_from([0.5, 1.0, 3.0, 10.0, 40.0])),
    st.tuples(
        st.just("claim"),
        owners,
        seconds,
        st.integers(1, 5),
        st.sampled_from([None, ["wf"], ["other"], []]),
        st.lists(owners, max_size=2),
        st.sampled_from(["", *RUNS]),
    ),
)


async def play(store: MemoryStore, steps: list[tuple[Any, ...]]) -> None:
    generations: dict[str, int] = {}
    for step in steps:
        kind = step[0]
        if kind == "create":
            _, run, running, workflow = step
            batch = [created(run, workflow)] + ([started(run)] if running else [])
            await store.create_batch(batch)
        elif kind == "start_claimed":
            _, run, owner, lease = step
            first = NewEvent(run, created(run).data, claim=LeaseClaim(owner, lease))
            await store.create_batch([first, started(run)])
        elif kind == "end":
            await store.create_batch([completed(step[1])])
        elif kind == "rerun":
            run = step[1]
            generation = generations.get(run, 0) + 1
            result = await store.create_batch(
                [NewEvent(run, ev.RunRerun(generation=generation, from_position=0))]
            )
            if result.accepted(0):
                generations[run] = generation
        elif kind == "claim_each":
            _, runs, owner, lease = step
            await store.claim_each(owner, runs, lease)
        elif kind == "release":
            _, owner, runs = step
            await store.release_leases(owner, runs)
        elif kind == "renew":
            _, owner, lease = step
            await store.renew_leases(owner, lease)
        elif kind == "tick":
            _Clock.now += timedelta(seconds=step[1])
        else:
            _, owner, lease, limit, workflows, dead, after = step
            expected = scan(store, lease, limit, workflows, dead, after)
            taken = await store.claim_runs(
                owner, lease, limit, workflows=workflows, dead=dead, after=after
            )
            assert [lease.run_id for lease in taken] == expected
            assert all(isinstance(lease, Lease) for lease in taken)


@settings(max_examples=400, deadline=None)
@example(  # a renewed lease lapses at the renewal's time, and is claimable then
    [
        ("start_claimed", RUNS[0], "a", 1.0),
        ("renew", "a", 5.0),
        ("claim", "b", 5.0, 5, None, [], ""),
        ("tick", 3.0),
        ("claim", "b", 5.0, 5, None, [], ""),
        ("tick", 3.0),
        ("claim", "b", 5.0, 5, None, [], ""),
    ]
)
@given(st.lists(operations, max_size=50))
@example(  # a lease that lapsed before its owner's renewal is not renewed, and is claimable
    [
        ("start_claimed", RUNS[0], "a", 1.0),
        ("tick", 3.0),
        ("renew", "a", 5.0),
        ("claim", "b", 5.0, 5, None, [], ""),
    ]
)
def test_claims_match_a_scan_of_every_run(steps: list[tuple[Any, ...]]) -> None:
    _Clock.now = START
    asyncio.run(play(MemoryStore(), steps))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(RUNS), st.booleans(), st.sampled_from(["wf", "other"])),
        max_size=12,
    ),
    st.lists(st.sampled_from(RUNS), max_size=4),
    st.sampled_from([None, RunStatus.PENDING, [RunStatus.RUNNING, RunStatus.COMPLETED]]),
    st.sampled_from([None, "wf"]),
    st.integers(1, 4),
)
def test_runs_are_listed_as_a_sort_of_every_run_lists_them(
    made: list[tuple[str, bool, str]],
    ended: list[str],
    status: Any,
    workflow: str | None,
    limit: int,
) -> None:
    async def scenario() -> None:
        store = MemoryStore()
        for run, running, name in made:
            await store.create_batch([created(run, name)] + ([started(run)] if running else []))
        for run in ended:
            await store.create_batch([completed(run)])
        every = sorted((s.run for s in store._states.values() if s.run), key=lambda r: r.run_id)
        wanted = {status} if isinstance(status, str) else set(status or RunStatus)
        expected = [
            r.run_id
            for r in reversed(every)
            if r.status in wanted and workflow in (None, r.workflow_name)
        ]
        listed: list[str] = []
        cursor = None
        while True:
            page = await store.list_runs(
                status=status, workflow_name=workflow, limit=limit, cursor=cursor
            )
            assert len(page.items) <= limit
            listed += [run.run_id for run in page.items]
            cursor = page.cursor
            if cursor is None:
                break
        assert listed == expected

    asyncio.run(scenario())
