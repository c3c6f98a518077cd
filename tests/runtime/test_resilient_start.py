"""Resilient start: transient store errors are retried under the same run id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import pytest

from persistence import (
    RunStatus,
    Store,
    StoreConfigurationError,
    StoreError,
    StoreFullError,
    StoreUnavailableError,
)
from persistence.batch import Request
from persistence.records import BatchResult
from runtime import Runtime

from . import workflows as wf

pytestmark = pytest.mark.anyio


class Flaky:
    """A store that fails its next writes: before writing, or after (a lost reply)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.fail_before = 0
        self.fail_after = 0
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def create_batch(self, requests: Sequence[Request]) -> BatchResult:
        if self.fail_before:
            self.fail_before -= 1
            self.failures += 1
            raise StoreUnavailableError("connection refused (test)")
        result = await self._store.create_batch(requests)
        if self.fail_after:
            self.fail_after -= 1
            self.failures += 1
            raise StoreUnavailableError("connection lost after commit (test)")
        return result


async def test_start_retries_while_the_store_is_briefly_unavailable(shared_store: Store) -> None:
    store = Flaky(shared_store)
    async with Runtime(store, workflows=[wf.sequential]) as rt:  # type: ignore[arg-type]
        store.fail_before = 3
        run = await rt.start(wf.sequential, 4, run_id="resilient-1")
        assert await run.result(timeout=10) == 6
    assert store.failures == 3
    runs = (await shared_store.list_runs()).items
    assert [r.run_id for r in runs].count("resilient-1") == 1


async def test_a_lost_reply_does_not_make_a_second_run(shared_store: Store) -> None:
    store = Flaky(shared_store)
    async with Runtime(store, workflows=[wf.sequential]) as rt:  # type: ignore[arg-type]
        store.fail_after = 1
        run = await rt.start(wf.sequential, 3)
        assert await run.result(timeout=10) == 3
        created = [e for e in await run.events() if e.event_type == "run_created"]
        assert len(created) == 1
        assert (await run.info()).status is RunStatus.COMPLETED


async def test_a_store_that_stays_down_fails_the_start_clearly(shared_store: Store) -> None:
    store = Flaky(shared_store)
    async with Runtime(store, workflows=[wf.sequential]) as rt:  # type: ignore[arg-type]
        store.fail_before = 100
        with pytest.raises(StoreUnavailableError, match="connection refused"):
            await rt.start(wf.sequential, 1, run_id="never")
        store.fail_before = 0
    assert "never" not in [r.run_id for r in (await shared_store.list_runs()).items]


class Broken(Flaky):
    """A store whose writes fail for a reason retrying cannot fix."""

    async def create_batch(self, requests: Sequence[Request]) -> BatchResult:
        self.failures += 1
        raise StoreError("the database refused the write: permission denied (test)")


async def test_a_permanent_error_raises_at_once_and_stores_nothing(shared_store: Store) -> None:
    store = Broken(shared_store)
    async with Runtime(store, workflows=[wf.sequential]) as rt:  # type: ignore[arg-type]
        with pytest.raises(StoreError, match="permission denied"):
            await rt.start(wf.sequential, 1, run_id="refused")
    assert store.failures == 1
    assert "refused" not in [r.run_id for r in (await shared_store.list_runs()).items]


class Failing(Flaky):
    """A store whose writes fail with an error retrying cannot fix: full, or misconfigured."""

    def __init__(self, store: Store, error: StoreError) -> None:
        super().__init__(store)
        self.error = error

    async def create_batch(self, requests: Sequence[Request]) -> BatchResult:
        self.failures += 1
        raise self.error


@pytest.mark.parametrize("role", ["worker", "client"])
@pytest.mark.parametrize(
    "error",
    [
        StoreFullError("database or disk is full (test)"),
        StoreConfigurationError("attempt to write a readonly database (test)"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_a_full_or_misconfigured_store_fails_the_start_at_once(
    shared_store: Store, role: Literal["worker", "client"], error: StoreError
) -> None:
    store = Failing(shared_store, error)
    async with Runtime(store, workflows=[wf.sequential], role=role) as rt:  # type: ignore[arg-type]
        with pytest.raises(type(error)) as caught:
            await rt.start(wf.sequential, 1, run_id="not-stored")
    assert caught.value is error
    assert store.failures == 1  # not retried
    assert "not-stored" not in [r.run_id for r in (await shared_store.list_runs()).items]
