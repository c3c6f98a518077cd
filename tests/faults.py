"""A fault-injecting store wrapper, for testing every failure path against every store.

``FaultyStore(store)`` passes everything through to ``store`` until told otherwise:

- ``down()`` / ``up()``: every I/O call raises ``StoreUnavailableError`` meanwhile;
- ``fail_next(n, methods, error=..., after=False)``: the next ``n`` calls of those methods
  raise ``error`` (by default ``StoreUnavailableError``), before doing anything, or after
  doing it (``after=True``: a write that was stored but whose reply was lost);
- ``refuse_next(n)``: the next ``n`` batches are refused (each request gets a
  ``ConcurrentWriteError``, nothing is written), as if another writer had moved every run;
- ``delay = seconds``: every call waits that long first;
- ``calls`` counts calls per method, ``batches`` keeps every batch's requests.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from persistence import Store
from persistence.batch import Request
from persistence.errors import ConcurrentWriteError, StoreUnavailableError
from persistence.records import BatchResult

LEASE_METHODS = frozenset(
    {
        "claim_runs",
        "claim_each",
        "claim_run",
        "renew_leases",
        "release_leases",
        "beat",
        "list_workers",
        "remove_worker",
    }
)
"""The store calls that take, keep, give up or list leases and workers."""

IO_METHODS = LEASE_METHODS | frozenset(
    {
        "create_batch",
        "append_chunks",
        "save_cursor",
        "list_events",
        "get_run",
        "list_runs",
        "get_step",
        "list_steps",
        "list_waits",
        "due_waits",
        "get_hook",
        "resolve_hook",
        "list_hooks",
        "find_payload",
        "read_chunks",
        "stream_info",
        "list_annotations",
        "read_committed",
        "get_cursor",
        "last_position",
        "dormant_runs",
    }
)


@dataclass
class _Plan:
    count: int
    methods: frozenset[str]
    error: Callable[[], BaseException]
    after: bool


class FaultyStore:
    """A store wrapper that fails on demand; see the module docstring."""

    def __init__(self, inner: Store, claims_in_write: bool | None = None) -> None:
        self.inner = inner
        if claims_in_write is not None:  # a store that claims apart from its writes
            self.claims_in_write = claims_in_write
        self.is_down = False
        self.delay = 0.0
        self.refusing = 0
        self.calls: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.batches: list[list[Request]] = []
        self._plans: list[_Plan] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in IO_METHODS:
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._call(name, attr, args, kwargs)

        return call

    async def __aenter__(self) -> FaultyStore:
        await self.inner.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.inner.close()

    # -- controls ---------------------------------------------------------------------

    def down(self) -> None:
        self.is_down = True

    def up(self) -> None:
        self.is_down = False

    def fail_next(
        self,
        count: int = 1,
        methods: Sequence[str] = ("create_batch",),
        error: Callable[[], BaseException] = lambda: StoreUnavailableError("injected outage"),
        after: bool = False,
    ) -> None:
        self._plans.append(_Plan(count, frozenset(methods), error, after))

    def refuse_next(self, count: int = 1) -> None:
        self.refusing += count

    # -- the calls ----------------------------------------------------------------------

    async def create_batch(self, requests: Sequence[Request]) -> BatchResult:
        self.batches.append(list(requests))
        if self.refusing and not self.is_down:
            self.refusing -= 1
            self.calls["create_batch"] += 1
            refusal = ConcurrentWriteError("injected: another writer moved the run")
            return BatchResult([refusal] * len(requests), [[] for _ in requests])
        result: BatchResult = await self._call(
            "create_batch", self.inner.create_batch, (requests,), {}
        )
        return result

    async def _call(self, name: str, method: Any, args: Any, kwargs: Any) -> Any:
        self.calls[name] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.is_down:
            self.failures[name] += 1
            raise StoreUnavailableError(f"injected outage ({name})")
        plan = next((p for p in self._plans if name in p.methods and p.count > 0), None)
        if plan is not None and not plan.after:
            plan.count -= 1
            self.failures[name] += 1
            raise plan.error()
        result = await method(*args, **kwargs)
        if plan is not None:
            plan.count -= 1
            self.failures[name] += 1
            raise plan.error()
        return result
