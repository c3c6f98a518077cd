"""Leases: which runs this worker executes when many workers share a store (PostgreSQL).

A worker claims the runs nobody holds (new from clients, released by a worker that left, or
whose worker stopped renewing), renews its leases every fifth of a lease, and stops the runs
whose lease it lost. Single-process stores (SQLite, memory) do not use leases: their one
worker takes every run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence

import anyio

from persistence import Store

log = logging.getLogger("actorflow.runtime")

_CLAIM_PAGE = 500


class Leases:
    """The leases of one worker; ``spawn``, ``drop`` and ``wake`` act on its run actors."""

    def __init__(
        self,
        store: Store,
        worker_id: str,
        lease_seconds: float,
        spawn: Callable[[str], None],
        drop: Callable[[str], None],
        wake: Callable[[str], None],
    ) -> None:
        self._store = store
        self._owner = worker_id
        self._seconds = lease_seconds
        self._spawn = spawn
        self._drop = drop
        self._wake = wake
        self.owned: set[str] = set()

    def holds(self, run_id: str) -> bool:
        return run_id in self.owned

    async def claim_lapsed(self) -> None:
        """Take the runs nobody holds and start them here."""
        while True:
            claimed = await self._store.claim_runs(self._owner, self._seconds, _CLAIM_PAGE)
            for run_id in claimed:
                self.owned.add(run_id)
                self._spawn(run_id)
            if len(claimed) < _CLAIM_PAGE:
                return

    async def claim(self, run_id: str) -> bool:
        """Hold one run (one this worker is about to start); False if another worker does."""
        if await self._store.claim_run(self._owner, run_id, self._seconds):
            self.owned.add(run_id)
            return True
        return False

    async def take(self, run_id: str) -> None:
        """Try to take a run that has not ended (a client started it, a payload came)."""
        if run_id in self.owned or (await self._store.get_run(run_id)).status.terminal:
            return
        if await self.claim(run_id):
            self._wake(run_id)

    async def release(self, run_ids: Sequence[str]) -> None:
        """Give these runs up (they ended, or the worker leaves); errors are not fatal."""
        for run_id in run_ids:
            self.owned.discard(run_id)
        with contextlib.suppress(Exception):  # they lapse on their own otherwise
            await self._store.release_leases(self._owner, list(run_ids))

    async def keep(self) -> None:
        """Renew every fifth of a lease; drop the runs lost; take over lapsed ones."""
        while True:
            await anyio.sleep(self._seconds / 5)
            try:
                held = await self._store.renew_leases(self._owner, self._seconds)
                for run_id in self.owned - held:
                    log.warning("lost the lease on run %s; another worker has it", run_id)
                    self.owned.discard(run_id)
                    self._drop(run_id)
                await self.claim_lapsed()
            except Exception as error:  # keep renewing: leases lapse only if this persists
                log.warning("could not renew leases: %s", error)
