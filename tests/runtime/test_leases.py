"""A worker's leases on every store: claims of new runs taken together, leases of ended runs
let go by the write that ends them, and claims whose caller left given back."""

from __future__ import annotations

import asyncio
import uuid

import anyio
import pytest

from persistence import (
    RunNotFoundError,
    Store,
    StoreConfigurationError,
    StoreError,
    StoreUnavailableError,
)
from runtime import Runtime, RuntimeClosedError, step, workflow

from ..faults import FaultyStore

pytestmark = pytest.mark.anyio


@step(name="lease-test:echo")
async def echo(value: str) -> str:
    return value


@workflow(name="lease-test:one")
async def one_step(value: str) -> str:
    return await echo(value)


async def test_runs_started_together_share_claims_and_end_without_releases(
    shared_store: Store,
) -> None:
    store = FaultyStore(shared_store)
    tag = uuid.uuid4().hex
    async with Runtime(store, workflows=[one_step], worker_id=f"w-{tag}") as rt:  # type: ignore[arg-type]
        with anyio.fail_after(60):
            runs = await asyncio.gather(*(rt.start(one_step, f"{tag}-{i}") for i in range(300)))
            results = await asyncio.gather(*(run.result() for run in runs))
        assert results == [f"{tag}-{i}" for i in range(300)]
        assert store.calls["claim_each"] <= 30, store.calls  # not one claim per start
        assert store.calls["release_leases"] == 0  # the ending writes let the leases lapse
        assert await shared_store.renew_leases(f"w-{tag}", 30) == set()


@pytest.mark.parametrize("folded", [True, False], ids=["claim-in-write", "claim-apart"])
async def test_a_new_runs_first_write_takes_its_lease_where_the_store_can(
    shared_store: Store, folded: bool
) -> None:
    """Every built-in store takes a new run's lease in its first write; a store that cannot
    (``claims_in_write`` false) gets one ``claim_each`` first."""
    assert shared_store.claims_in_write  # memory, SQLite and PostgreSQL take it in the write
    store = FaultyStore(shared_store, claims_in_write=None if folded else False)
    tag = uuid.uuid4().hex
    async with Runtime(store, workflows=[one_step], worker_id=f"w-{tag}") as rt:  # type: ignore[arg-type]
        before = dict(store.calls)
        run = await rt.start(one_step, "x")
        assert await run.result(timeout=10) == "x"
        claims = store.calls["claim_each"] - before.get("claim_each", 0)
        writes = store.calls["create_batch"] - before.get("create_batch", 0)
        assert (claims, writes) == ((0 if folded else 1), 2)  # start + first step; end
        second = await rt.start(one_step, "y")  # a run still running holds its lease here
        assert await second.result(timeout=10) == "y"
    assert await shared_store.renew_leases(f"w-{tag}", 30) == set()  # ended: lapsed


@pytest.mark.parametrize("folded", [True, False], ids=["claim-in-write", "claim-apart"])
async def test_a_claim_that_fails_fails_its_start_and_stores_nothing(
    shared_store: Store, folded: bool
) -> None:
    store = FaultyStore(shared_store, claims_in_write=None if folded else False)
    run_id = f"lease-test-failed-claim-{uuid.uuid4().hex}"
    async with Runtime(store, workflows=[one_step]) as rt:  # type: ignore[arg-type]
        if folded:  # the lease is taken by the first write
            store.fail_next(1, error=lambda: StoreConfigurationError("injected: read-only"))
            expected: type[StoreError] = StoreConfigurationError
        else:
            store.fail_next(1, methods=["claim_each"])
            expected = StoreUnavailableError
        with pytest.raises(expected):
            await rt.start(one_step, "x", run_id=run_id)
        with pytest.raises(RunNotFoundError):
            await shared_store.get_run(run_id)
        run = await rt.start(one_step, "y", run_id=run_id)  # tried again
        assert await run.result(timeout=10) == "y"


async def test_a_claim_whose_caller_left_is_given_back(shared_store: Store) -> None:
    store = FaultyStore(shared_store)
    tag = uuid.uuid4().hex
    async with Runtime(store, workflows=[one_step], worker_id=f"w-{tag}") as rt:  # type: ignore[arg-type]
        store.delay = 0.3
        with anyio.move_on_after(0.1):  # the caller gives up while the claim is out
            await rt.start(one_step, "x", run_id=f"left-{tag}")
        store.delay = 0
        with anyio.fail_after(10):
            while await shared_store.renew_leases(f"w-{tag}", 30):
                await anyio.sleep(0.05)
        with pytest.raises(RunNotFoundError):
            await shared_store.get_run(f"left-{tag}")
        assert await shared_store.claim_run("other", f"left-{tag}", 30) is not None


async def test_a_second_start_of_an_id_goes_on_when_the_first_caller_leaves(
    shared_store: Store,
) -> None:
    store = FaultyStore(shared_store)
    tag = uuid.uuid4().hex
    async with Runtime(store, workflows=[one_step]) as rt:  # type: ignore[arg-type]
        store.delay = 0.3
        first = asyncio.ensure_future(rt.start(one_step, "a", run_id=f"twice-{tag}"))
        await anyio.sleep(0.05)
        second = asyncio.ensure_future(rt.start(one_step, "a", run_id=f"twice-{tag}"))
        await anyio.sleep(0.05)
        first.cancel()  # while its claim is out: the second start must not inherit that
        store.delay = 0
        with anyio.fail_after(10):
            run = await second
            assert await run.result() == "a"
        with pytest.raises(asyncio.CancelledError):
            await first


async def test_a_start_waiting_on_its_claim_when_the_runtime_closes_is_told(
    shared_store: Store,
) -> None:
    store = FaultyStore(shared_store)
    outcome: list[BaseException | str] = []
    async with Runtime(store, workflows=[one_step], shutdown_grace=0.1) as rt:  # type: ignore[arg-type]

        async def start() -> None:
            try:
                outcome.append((await rt.start(one_step, "x")).id)
            except BaseException as error:
                outcome.append(error)

        store.delay = 5.0  # the claim is out when the runtime leaves
        task = asyncio.ensure_future(start())
        await anyio.sleep(0.1)
    with anyio.fail_after(10):
        await task
    assert len(outcome) == 1 and isinstance(outcome[0], RuntimeClosedError), outcome
