"""Hooks: payloads in order, conflicts, disposal, resume from any runtime."""

from __future__ import annotations

import anyio
import pytest

from persistence import Store
from runtime import (
    HookConflictError,
    HookNotFoundError,
    RunFailedError,
    Runtime,
    SerializationError,
    create_hook,
    sleep,
    workflow,
)
from tests.conftest import BOTH_SQLITE_WRITERS

pytestmark = pytest.mark.anyio


@pytest.fixture(params=BOTH_SQLITE_WRITERS)
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every store kind, and the SQLite store with its writer on the event loop's thread."""
    kind: str = request.param
    return kind


@workflow
async def collect(token: str, count: int) -> list[object]:
    seen: list[object] = []
    hook = create_hook(token=token, metadata={"purpose": "test"})
    async for payload in hook:
        seen.append(payload)
        if len(seen) == count:
            break
    return seen


@workflow
async def late_awaiter(token: str) -> list[object]:
    hook = create_hook(token=token)
    await sleep(0.3)
    return [await hook, await hook]


@workflow
async def holds(token: str, seconds: float) -> str:
    hook = create_hook(token=token)
    try:
        return str(await hook)
    except HookConflictError as error:
        return f"conflict with {error.conflicting_run_id}"


@workflow
async def holds_uncaught(token: str) -> object:
    return await create_hook(token=token)


@workflow
async def dispose_then_sleep(token: str) -> str:
    with create_hook(token=token) as hook:
        first = await hook
    await sleep(3600)
    return str(first)


async def until_hook(rt: Runtime, token: str) -> None:
    with anyio.fail_after(10):
        while True:
            try:
                await rt.get_hook(token)
                return
            except HookNotFoundError:
                await anyio.sleep(0.01)


async def test_three_payloads_through_async_for(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[collect]) as rt:
        run = await rt.start(collect, "t-three", 3)
        await until_hook(rt, "t-three")
        info = await rt.get_hook("t-three")
        assert info.run_id == run.id and info.metadata == {"purpose": "test"}
        for payload in ({"n": 1}, [2], "three"):
            assert await rt.resume_hook("t-three", payload) == run.id
        assert await run.result(timeout=10) == [{"n": 1}, [2], "three"]
        with pytest.raises(HookNotFoundError):
            await rt.get_hook("t-three")  # released when the run ended
        with pytest.raises(HookNotFoundError):
            await rt.resume_hook("t-three", 4)


async def test_payloads_before_await_are_kept_in_order(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[late_awaiter]) as rt:
        run = await rt.start(late_awaiter, "t-early")
        await until_hook(rt, "t-early")
        await rt.resume_hook("t-early", "a")
        await rt.resume_hook("t-early", "b")
        assert await run.result(timeout=10) == ["a", "b"]


async def test_conflict_between_live_runs_then_reuse(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[holds, holds_uncaught]) as rt:
        first = await rt.start(holds, "t-shared", 0)
        await until_hook(rt, "t-shared")
        second = await rt.start(holds, "t-shared", 0)
        assert await second.result(timeout=10) == f"conflict with {first.id}"
        third = await rt.start(holds_uncaught, "t-shared")
        with pytest.raises(RunFailedError, match="already in use") as failure:
            await third.result(timeout=10)
        assert failure.value.cause is not None and failure.value.cause.type == "HookConflictError"
        await rt.resume_hook("t-shared", "done")
        assert await first.result(timeout=10) == "done"
        reuse = await rt.start(holds, "t-shared", 0)
        await until_hook(rt, "t-shared")
        assert (await rt.get_hook("t-shared")).run_id == reuse.id
        await rt.resume_hook("t-shared", "again")
        assert await reuse.result(timeout=10) == "again"


async def test_dispose_frees_the_token_while_the_run_sleeps(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[dispose_then_sleep, holds]) as rt:
        sleeper = await rt.start(dispose_then_sleep, "t-free")
        await until_hook(rt, "t-free")
        await rt.resume_hook("t-free", "x")
        with anyio.fail_after(10):
            while True:
                try:
                    await rt.get_hook("t-free")
                except HookNotFoundError:
                    break
                await anyio.sleep(0.01)
        other = await rt.start(holds, "t-free", 0)
        await until_hook(rt, "t-free")
        assert (await rt.get_hook("t-free")).run_id == other.id
        assert await sleeper.status() == "running"
        await rt.resume_hook("t-free", "mine")
        assert await other.result(timeout=10) == "mine"


async def test_resume_from_another_runtime_and_bad_payloads(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[collect]) as rt:
        run = await rt.start(collect, "t-client", 2)
        await until_hook(rt, "t-client")
        async with Runtime(shared_store, role="client") as client:
            assert await client.resume_hook("t-client", 1) == run.id
            with pytest.raises(SerializationError, match="payload"):
                await client.resume_hook("t-client", object())
            with pytest.raises(HookNotFoundError, match="no-such-token"):
                await client.resume_hook("no-such-token", 1)
            await client.resume_hook("t-client", 2)
        assert await run.result(timeout=10) == [1, 2]
        received = [e for e in await run.events() if e.event_type == "hook_received"]
        assert len(received) == 2


async def test_passivated_run_wakes_for_a_payload(shared_store: Store) -> None:
    async with Runtime(shared_store, workflows=[collect], passivate_after=0) as rt:
        run = await rt.start(collect, "t-passive", 1)
        await until_hook(rt, "t-passive")
        with anyio.fail_after(5):
            while rt.stats()["live_runs"]:
                await anyio.sleep(0.01)
        await rt.resume_hook("t-passive", "wake")
        assert await run.result(timeout=10) == ["wake"]


@workflow
async def default_token() -> dict[str, object]:
    hook = create_hook()
    payload = await hook
    return {"token": hook.token, "payload": payload}


async def hook_of(rt: Runtime, run_id: str) -> str:
    with anyio.fail_after(10):
        while True:
            hooks = await rt.store.list_hooks(run_id)
            if hooks:
                return hooks[0].token
            await anyio.sleep(0.01)


async def test_default_tokens_cannot_be_computed_from_the_run_id(
    shared_store: Store, store_url: str
) -> None:
    """A default token is a capability: 130 bits keyed by a secret drawn when the run was
    made, not by its (public) id; the same client-chosen id gives another token elsewhere."""
    import random as stdlib_random

    tokens = []
    for store in (shared_store, "memory://"):
        async with Runtime(store, workflows=[default_token], passivate_after=0) as rt:
            run = await rt.start(default_token, run_id="order-42")
            token = await hook_of(rt, run.id)
            tokens.append(token)
            assert len(token) == 26 and token.isalnum() and token == token.lower()
            forged = "".join(
                stdlib_random.Random("order-42").choice("abcdefghijklmnopqrstuvwxyz0123456789")
                for _ in range(24)
            )
            assert token != forged
            with pytest.raises(HookNotFoundError):
                await rt.resume_hook(forged, "forged")
            # the run was passivated (passivate_after=0): its replay derives the same token
            assert await rt.resume_hook(token, "real") == run.id
            assert await run.result(timeout=10) == {"token": token, "payload": "real"}
    assert tokens[0] != tokens[1]


async def test_a_payload_retried_with_its_key_is_recorded_once(shared_store: Store) -> None:
    """An approval retried after its reply was lost: the same key records it once, from the
    owning runtime, from a client elsewhere, and after the hook was released."""
    async with Runtime(shared_store, workflows=[collect, dispose_then_sleep]) as rt:
        run = await rt.start(collect, "keyed", 3)
        await eventually_hook(rt, "keyed")
        assert await rt.resume_hook("keyed", "a", idempotency_key="k-a") == run.id
        assert await rt.resume_hook("keyed", "a again", idempotency_key="k-a") == run.id
        async with Runtime(shared_store, role="client") as client:
            assert await client.resume_hook("keyed", "a once more", idempotency_key="k-a") == run.id
            assert await client.resume_hook("keyed", "b", idempotency_key="k-b") == run.id
            assert await client.resume_hook("keyed", "b again", idempotency_key="k-b") == run.id
        await rt.resume_hook("keyed", "c")
        assert await run.result(timeout=10) == ["a", "b", "c"]
        # the run has ended and its hook is released: a retry still gets the same answer
        assert await rt.resume_hook("keyed", "a late", idempotency_key="k-a") == run.id
        with pytest.raises(HookNotFoundError):
            await rt.resume_hook("keyed", "new", idempotency_key="k-new")
        received = [e for e in await run.events() if e.event_type == "hook_received"]
    assert len(received) == 3


async def eventually_hook(rt: Runtime, token: str) -> None:
    with anyio.fail_after(10):
        while True:
            try:
                await rt.get_hook(token)
                return
            except HookNotFoundError:
                await anyio.sleep(0.01)


async def test_signals_during_an_outage_raise_store_unavailable_in_bounded_time(
    shared_store: Store,
) -> None:
    import time

    from persistence import StoreUnavailableError

    from ..faults import FaultyStore

    store = FaultyStore(shared_store)
    async with Runtime(store, workflows=[collect], shutdown_grace=0.1) as rt:  # type: ignore[arg-type]
        run = await rt.start(collect, "down", 1)
        await eventually_hook(rt, "down")
        store.down()
        began = time.monotonic()
        with pytest.raises(StoreUnavailableError, match=r"within 0\.5 s"):
            await rt.resume_hook("down", "late", idempotency_key="k", timeout=0.5)
        with pytest.raises(StoreUnavailableError):
            await rt.cancel(run.id, timeout=0.5)
        assert time.monotonic() - began < 3
        store.up()
        assert await rt.resume_hook("down", "late", idempotency_key="k") == run.id
        assert await run.result(timeout=10) == ["late"]  # recorded once, whoever wrote it
