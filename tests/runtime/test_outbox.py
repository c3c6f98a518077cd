"""The event log as an outbox: subscribers with durable cursors, at least once."""

from __future__ import annotations

import anyio
import pytest

from persistence import Event, Store
from runtime import Runtime

from . import workflows as wf

pytestmark = pytest.mark.anyio


async def take(rt: Runtime, name: str, count: int, types: list[str] | None = None) -> list[Event]:
    got: list[Event] = []
    with anyio.fail_after(10):
        async for event in rt.subscribe(name, types=types):
            got.append(event)
            if len(got) == count:
                break
    return got


async def test_a_subscriber_resumes_after_what_it_acknowledged(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[wf.sequential]) as rt:
        run = await rt.start(wf.sequential, 3)
        await run.result(timeout=10)
        log = await run.events()
        first = await take(rt, "mailer", 4)
        assert [e.event_id for e in first] == [e.event_id for e in log[:4]]
        # the 4th was handed out but not acknowledged (the loop broke before asking again)
        again = await take(rt, "mailer", 3)
        assert [e.event_id for e in again] == [e.event_id for e in log[3:6]]
        other = await take(rt, "audit", 2, types=["step_completed"])
        assert [e.event_type for e in other] == ["step_completed"] * 2


async def test_a_subscriber_follows_new_commits(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[wf.sequential]) as rt:
        got: list[str] = []

        async def follow() -> None:
            async for event in rt.subscribe("live", types=["run_completed"]):
                got.append(event.run_id)
                return

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            await anyio.sleep(0.05)
            run = await rt.start(wf.sequential, 2)
            await run.result(timeout=10)
        assert got == [run.id]


async def test_subscriber_arguments_are_checked(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[wf.sequential]) as rt:
        with pytest.raises(ValueError, match="name"):
            await take(rt, "", 1)
        with pytest.raises(ValueError, match="unknown event types"):
            await take(rt, "x", 1, types=["step_done"])
