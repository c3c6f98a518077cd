"""The actor primitive: mailboxes, one message at a time, supervision, stopping."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest

from actors.actor import STOP, Actor, ActorSystem, _Stop

pytestmark = pytest.mark.anyio


class Recorder(Actor[int]):
    def __init__(self, seen: list[list[int]], active: list[int]) -> None:
        self.seen = seen
        self.active = active

    async def handle(self, messages: Sequence[int]) -> _Stop | None:
        self.active.append(1)
        assert len(self.active) == 1, "two batches handled at once"
        await anyio.sleep(0.001)
        self.seen.append(list(messages))
        self.active.pop()
        return STOP if -1 in messages else None


async def test_messages_arrive_in_order_one_batch_at_a_time() -> None:
    seen: list[list[int]] = []
    async with anyio.create_task_group() as tg:
        system = ActorSystem(tg)
        ref = system.spawn("a", lambda: Recorder(seen, []))
        for i in range(100):
            assert ref.tell(i)
            if i % 10 == 0:
                await anyio.sleep(0)
        ref.tell(-1)
        with anyio.fail_after(5):
            while system.lookup("a") is not None:
                await anyio.sleep(0.001)
    flat = [m for batch in seen for m in batch]
    assert flat == [*range(100), -1]
    assert len(seen) < 101, "waiting messages are handed over together"
    assert not ref.tell(5), "a stopped actor refuses messages"


async def test_stop_waits_for_an_empty_mailbox() -> None:
    seen: list[list[int]] = []

    class StopsAtOnce(Recorder):
        async def handle(self, messages: Sequence[int]) -> _Stop | None:
            self.seen.append(list(messages))
            if len(self.seen) == 1:
                ref.tell(7)  # arrives while the actor decides to stop
            return STOP

    async with anyio.create_task_group() as tg:
        system = ActorSystem(tg)
        ref = system.spawn("b", lambda: StopsAtOnce(seen, []))
        ref.tell(1)
        with anyio.fail_after(5):
            while system.lookup("b") is not None:
                await anyio.sleep(0.001)
    assert seen == [[1], [7]]


async def test_crashing_actor_is_restarted_with_its_messages_then_given_up() -> None:
    made: list[int] = []
    handled: list[list[int]] = []
    gave_up: list[tuple[str, list[int]]] = []

    class Crashy(Actor[int]):
        def __init__(self) -> None:
            made.append(1)

        async def handle(self, messages: Sequence[int]) -> _Stop | None:
            handled.append(list(messages))
            if 13 in messages:
                raise ValueError("unlucky")
            return None

        async def give_up(self, error: BaseException, messages: Sequence[int]) -> None:
            gave_up.append((str(error), list(messages)))

    async with anyio.create_task_group() as tg:
        system = ActorSystem(tg, max_restarts=2)
        ref = system.spawn("c", Crashy)
        ref.tell(1)
        await anyio.sleep(0.01)
        ref.tell(13)
        with anyio.fail_after(5):
            while system.lookup("c") is not None:
                await anyio.sleep(0.001)
    assert len(made) == 3  # the first actor and two restarts
    assert handled == [[1], [13], [13], [13]]  # the failing batch is handed to each new actor
    assert gave_up == [("unlucky", [13])]


async def test_spawn_lookup_stop() -> None:
    stopped: list[str] = []

    class Idle(Actor[int]):
        async def handle(self, messages: Sequence[int]) -> _Stop | None:
            return None

        async def stopped(self) -> None:
            stopped.append("yes")

    async with anyio.create_task_group() as tg:
        system = ActorSystem(tg)
        system.spawn("d", Idle)
        with pytest.raises(ValueError, match="already running"):
            system.spawn("d", Idle)
        assert system.lookup("d") is not None and len(system) == 1
        system.stop("d")
        with anyio.fail_after(5):
            while system.lookup("d") is not None:
                await anyio.sleep(0.001)
        system.spawn("e", Idle)
        system.stop_all()
    assert stopped == ["yes", "yes"] and len(system) == 0
