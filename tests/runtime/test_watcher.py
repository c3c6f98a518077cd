"""Following the log for other writers' events (the log watcher)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import pytest

from persistence import CommittedEvent, MemoryStore
from persistence.notify import FOREIGN_TOPIC
from runtime.router import Router
from runtime.watcher import LogWatcher
from tests.persistence import helpers as h

pytestmark = pytest.mark.anyio


class CountingStore(MemoryStore):
    """A memory store that counts the events its committed-log reads scan."""

    def __init__(self) -> None:
        super().__init__()
        self.scanned = 0

    async def read_committed(
        self, after: int, limit: int = 1000, types: Sequence[str] | None = None
    ) -> list[CommittedEvent]:
        self.scanned += len(self._log) - after
        return await super().read_committed(after, limit, types)


class Routes:
    """Stands in for the router: records the runs it is told about."""

    def __init__(self, known: dict[str, str]) -> None:
        self.known = known
        self.told: list[str] = []

    def knows(self, run_id: str, event_id: str) -> bool:
        return self.known.get(run_id, "") >= event_id

    def notify(self, run_id: str) -> None:
        self.told.append(run_id)


async def steps_of_one_run(store: MemoryStore, count: int) -> str:
    run = h.run_id()
    await store.create_batch([h.created(run), h.started(run)])
    for index in range(count):
        step = f"step_{index:04d}"
        await store.create_batch([h.step_created(run, step, index), h.step_started(run, step)])
        await store.create_batch([h.step_completed(run, step)])
    return run


async def test_the_position_passes_events_of_unwatched_types() -> None:
    store = CountingStore()
    await steps_of_one_run(store, 200)
    watcher = LogWatcher(store, cast(Router, Routes({})), lambda: 1.0)
    position = await watcher._route(0)
    assert position == await store.last_position()  # not the run_created near the start
    before = store.scanned
    assert await watcher._route(position) == position
    assert store.scanned == before  # a wake-up with nothing new reads nothing old


async def test_other_writers_events_are_routed_and_this_workers_own_are_not() -> None:
    store = CountingStore()
    mine = await steps_of_one_run(store, 2)
    theirs = h.run_id()
    await store.create_batch([h.created(theirs)])
    last_mine = (await store.list_events(mine)).items[-1].event_id
    routes = Routes({mine: last_mine})
    watcher = LogWatcher(store, cast(Router, routes), lambda: 1.0)
    position = await watcher._route(0)
    assert routes.told == [theirs]
    await store.create_batch([h.cancelled(mine)])  # another writer cancels a run held here
    await watcher._route(position)
    assert routes.told == [theirs, mine]


async def test_step_commits_on_a_memory_store_wake_no_watcher_but_a_cancel_does() -> None:
    store = CountingStore()
    run = await steps_of_one_run(store, 1)  # run_created wakes watchers (another may claim it)
    seen = store.notifier.version(FOREIGN_TOPIC)
    await steps_of_one_run_more(store, run, 50)
    assert store.notifier.version(FOREIGN_TOPIC) == seen  # no other runtime needs these
    await store.create_batch([h.cancelled(run)])
    assert store.notifier.version(FOREIGN_TOPIC) != seen


async def steps_of_one_run_more(store: MemoryStore, run: str, count: int) -> None:
    for index in range(1, count + 1):
        step = f"step_{index:04d}"
        await store.create_batch([h.step_created(run, step, index), h.step_started(run, step)])
        await store.create_batch([h.step_completed(run, step)])
