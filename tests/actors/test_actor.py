"""The actor primitive: mailboxes, one message at a time, supervision, stopping."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar

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


# -- parking: an idle actor holds no task ------------------------------------------------------


class Counter(Actor[int]):
    def __init__(self, seen: list[int], made: list[int], stops: list[int]) -> None:
        self.seen, self.stops = seen, stops
        made.append(1)

    async def handle(self, messages: Sequence[int]) -> _Stop | None:
        await anyio.sleep(0)
        self.seen.extend(messages)
        return STOP if -1 in messages else None

    async def stopped(self) -> None:
        self.stops.append(1)


async def _until(check: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not check():
            await anyio.sleep(0.001)


async def test_an_idle_actor_parks_and_the_next_message_wakes_the_same_actor() -> None:
    seen: list[int] = []
    made: list[int] = []
    stops: list[int] = []
    async with anyio.create_task_group() as tg:
        system = ActorSystem(tg)
        ref = system.spawn("p", lambda: Counter(seen, made, stops))
        ref.tell(1)
        await _until(lambda: seen == [1] and system.running() == 0)
        assert system.lookup("p") is not None and system.idle()
        for i in (2, 3, 4):  # each wakes it, or joins the batch of a woken one
            assert ref.tell(i)
        await _until(lambda: seen == [1, 2, 3, 4] and system.running() == 0)
        ref.tell(-1)
        await _until(lambda: system.lookup("p") is None)
    assert made == [1], "parking keeps the actor: its state lives on between messages"
    assert stops == [1] and not ref.tell(5)


async def test_stopping_a_parked_actor_runs_its_stopped_and_removes_it() -> None:
    stops: list[int] = []
    async with anyio.create_task_group() as tg:
        system = ActorSystem(tg)
        ref = system.spawn("q", lambda: Counter([], [], stops))
        ref.tell(1)
        await _until(lambda: system.running() == 0)
        system.stop("q")
        await _until(lambda: system.lookup("q") is None)
        assert stops == [1] and len(system) == 0 and not ref.tell(2)


async def test_cancelling_the_group_stops_parked_actors_too() -> None:
    stops: list[int] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            system = ActorSystem(tg)
            for name in ("x", "y"):
                system.spawn(name, lambda: Counter([], [], stops)).tell(1)
            await _until(lambda: system.running() == 0)
            assert len(system) == 2, "parked actors stay, and hold the group open"
            tg.cancel_scope.cancel()
    assert stops == [1, 1] and len(system) == 0


CALLER: ContextVar[str] = ContextVar("caller", default="nobody")


async def test_a_woken_actor_runs_in_its_spawners_context_not_its_senders() -> None:
    seen: list[str] = []

    class Reader(Actor[int]):
        async def handle(self, messages: Sequence[int]) -> _Stop | None:
            seen.append(CALLER.get())
            return None

    async with anyio.create_task_group() as tg:
        system = ActorSystem(tg)
        CALLER.set("spawner")
        ref = system.spawn("r", Reader)
        ref.tell(1)
        await _until(lambda: len(seen) == 1 and system.running() == 0)

        async def sender() -> None:
            CALLER.set("sender")
            ref.tell(2)

        tg.start_soon(sender)
        await _until(lambda: len(seen) == 2)
        system.stop_all()
    assert seen == ["spawner", "spawner"]


async def test_a_crash_after_parking_restarts_with_the_batch_in_hand() -> None:
    handled: list[list[int]] = []
    made: list[int] = []

    class FailsOnce(Actor[int]):
        def __init__(self) -> None:
            made.append(1)

        async def handle(self, messages: Sequence[int]) -> _Stop | None:
            handled.append(list(messages))
            if messages == [13] and len(made) == 1:
                raise ValueError("once")
            return None

    async with anyio.create_task_group() as tg:
        system = ActorSystem(tg, backoff=(0.001, 0.001))
        ref = system.spawn("s", FailsOnce)
        ref.tell(1)
        await _until(lambda: system.running() == 0)
        ref.tell(13)
        await _until(lambda: len(handled) == 3 and system.running() == 0)
        assert system.lookup("s") is not None
        system.stop_all()
    assert handled == [[1], [13], [13]] and len(made) == 2
