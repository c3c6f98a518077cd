"""Taking over runs that only wait: their timers and hooks are armed, their logs not read.

A worker that claims a run nobody holds asks the store which of the claimed runs are dormant
(running, the program's own request last in the log, nothing open but sleeps and hooks). Those
get their timers and hooks at once and are loaded only when one of them comes, as a
passivated run is; every other run is loaded at once. Each test counts step bodies, so a
replay that re-ran a step would show.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest

from persistence import Dormant, Store, StoreUnavailableError
from runtime import Runtime, create_hook, sleep, step, workflow

pytestmark = pytest.mark.anyio

CALLS: list[str] = []


@step
async def counted(key: str) -> str:
    """A step that notes each time its body runs."""
    CALLS.append(key)
    return key


@workflow
async def nap_then(key: str, seconds: float) -> str:
    await counted(key)
    await sleep(seconds)
    return await counted(f"{key}!")


@workflow
async def hook_then(key: str) -> object:
    await counted(key)
    payload: object = await create_hook(token=f"tok-{key}")
    return payload


async def until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.01)


async def sleeping_then_closed(store: Store, key: str, seconds: float) -> str:
    """Start ``nap_then`` in one runtime, let it reach its sleep, close that runtime."""
    async with Runtime(store, workflows=[nap_then, hook_then]) as rt:
        run = await rt.start(nap_then, key, seconds)
        await until(lambda: rt.stats()["timers"] == 1 and key in CALLS)
        return run.id


async def test_a_sleeping_run_taken_over_is_armed_and_loaded_only_when_due(
    shared_store: Store,
) -> None:
    CALLS.clear()
    run_id = await sleeping_then_closed(shared_store, "nap", 1.5)
    async with Runtime(shared_store, workflows=[nap_then, hook_then]) as rt:
        await until(lambda: rt.stats()["timers"] == 1)
        assert rt.stats()["live_runs"] == 0  # armed, not loaded
        assert await rt.get_run(run_id).result(timeout=10) == "nap!"
    assert CALLS == ["nap", "nap!"]  # the first step was not run again


async def test_a_hook_waiting_run_taken_over_takes_its_payload(shared_store: Store) -> None:
    CALLS.clear()
    async with Runtime(shared_store, workflows=[nap_then, hook_then]) as rt:
        run = await rt.start(hook_then, "h1")
        await until(lambda: rt.stats()["hooks"] == 1 and "h1" in CALLS)
    async with Runtime(shared_store, workflows=[nap_then, hook_then]) as rt:
        await until(lambda: rt.stats()["hooks"] == 1)
        assert rt.stats()["live_runs"] == 0
        await rt.resume_hook("tok-h1", {"ok": True})
        assert await rt.get_run(run.id).result(timeout=10) == {"ok": True}
    assert CALLS == ["h1"]


async def test_a_run_whose_payload_came_while_nobody_held_it_is_loaded_at_once(
    shared_store: Store,
) -> None:
    CALLS.clear()
    async with Runtime(shared_store, workflows=[nap_then, hook_then]) as rt:
        run = await rt.start(hook_then, "h2")
        await until(lambda: rt.stats()["hooks"] == 1 and "h2" in CALLS)
    async with Runtime(shared_store, role="client") as client:
        await client.resume_hook("tok-h2", "late")
    async with Runtime(shared_store, workflows=[nap_then, hook_then]) as rt:
        assert await rt.get_run(run.id).result(timeout=10) == "late"
    assert CALLS == ["h2"]


class NoDormantReads:
    """Wraps a store whose ``dormant_runs`` fails, as a store that is briefly down does."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.asked = 0

    async def dormant_runs(self, run_ids: Sequence[str]) -> dict[str, Dormant]:
        self.asked += 1
        raise StoreUnavailableError("down for a moment")

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


async def test_when_the_store_cannot_say_which_runs_only_wait_all_are_loaded(
    shared_store: Store,
) -> None:
    CALLS.clear()
    run_id = await sleeping_then_closed(shared_store, "nap2", 1.0)
    failing = NoDormantReads(shared_store)
    async with Runtime(failing, workflows=[nap_then, hook_then]) as rt:  # type: ignore[arg-type]
        await until(lambda: rt.stats()["timers"] == 1)
        assert failing.asked >= 1
        assert await rt.get_run(run_id).result(timeout=10) == "nap2!"
    assert CALLS == ["nap2", "nap2!"]
