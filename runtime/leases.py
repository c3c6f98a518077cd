"""Leases: which runs this worker executes, on every store that several processes can open.

A worker executes a run only while it holds the run's lease. It claims runs nobody holds
(new from clients, released by a worker that left, whose lease lapsed, or whose worker's
process is known to be gone: on this host a dead process is seen at once), but only runs of
workflows it hosts. It renews its leases every fifth of a lease, announces itself (and what it
hosts) with each renewal, and stops the runs whose lease it lost. Each lease has an epoch that
moves when the lease passes to another owner; the worker's writes to a run are fenced with the
epoch it holds, so a stale owner's writes are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Sequence, Set
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio

from persistence import Dormant, Store, StoreError, WorkerInfo

from .errors import RuntimeClosedError

log = logging.getLogger("actorflow.runtime")

_CLAIM_PAGE = 500


class Leases:
    """The leases of one worker; ``adopt`` and ``lost`` act on its run actors."""

    def __init__(
        self,
        store: Store,
        worker_id: str,
        lease_seconds: float,
        hosted: Callable[[], Sequence[str]],
        adopt: Callable[[str, Dormant | None], None],
        lost: Callable[[str], None],
        max_runs: int | None = None,
    ) -> None:
        self._store = store
        self.worker_id = worker_id
        self._seconds = lease_seconds
        self._hosted = hosted
        self._adopt = adopt
        self._lost = lost
        self._max_runs = max_runs
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.owned: dict[str, int] = {}
        """Run id -> the lease epoch this worker holds it at."""
        self._starting: dict[str, int] = {}  # run id -> first writes out that claim it
        self._wanted = asyncio.Event()
        self._claims: dict[str, asyncio.Future[int | None]] = {}  # asked, not sent yet
        self._asked: dict[str, asyncio.Future[int | None]] = {}  # sent, not answered yet
        self._claimer: asyncio.Task[None] | None = None
        self._releasing: dict[str, None] = {}
        self._releaser: asyncio.Task[None] | None = None
        self._sent: dict[str, int] = {}  # run id -> releases of it out at the store
        self._sweeps = 0  # claim sweeps out: runs they took may not be in ``owned`` yet
        self._closed = False  # leaving: no more runs are taken
        self._told: set[tuple[str, int]] = set()  # other processes seen with this worker id
        self._quiet = asyncio.Event()  # set when the last sweep or claim out came back

    @property
    def seconds(self) -> float:
        """How long a lease lasts unless renewed."""
        return self._seconds

    def holds(self, run_id: str) -> bool:
        return run_id in self.owned or run_id in self._starting

    def starting(self, run_id: str) -> None:
        """This worker is writing ``run_id``'s first events with its lease in them (a store
        that takes claims in writes): its actor may run until that write is answered."""
        self._starting[run_id] = self._starting.get(run_id, 0) + 1

    def started(self, run_id: str) -> None:
        """That first write was answered (:meth:`took` said if the lease came with it)."""
        count = self._starting.pop(run_id, 1) - 1
        if count > 0:
            self._starting[run_id] = count

    def took(self, run_id: str, epoch: int) -> None:
        """A run's first write took its lease at ``epoch``."""
        self.owned[run_id] = epoch

    def epoch(self, run_id: str) -> int | None:
        """The epoch this worker's writes to ``run_id`` are fenced with (None: not held)."""
        return self.owned.get(run_id)

    async def claim_lapsed(self) -> None:
        """Take the runs nobody holds (of workflows hosted here) and start them here."""
        if self._closed:
            return
        self._sweeps += 1
        try:
            await self._claim_pages()
        finally:
            self._sweeps -= 1
            self._quiet_now()

    def close(self) -> None:
        """Take no more runs: the runtime is leaving. A sweep out stops after its page."""
        self._closed = True

    async def settle(self) -> None:
        """Wait until no sweep, no claim and no release is out: the runs they took are then
        in ``owned`` (or given back, if their callers left), to be released with the rest,
        and the runs given back are released; cut off, their leases would outlive this
        worker, unanswered."""
        while self._busy():
            self._quiet.clear()
            await self._quiet.wait()

    def _busy(self) -> bool:
        return bool(self._sweeps or self._asked or self._releaser is not None)

    def _quiet_now(self) -> None:
        """Wake :meth:`settle` if no sweep, no claim and no release is out any more."""
        if not self._busy():
            self._quiet.set()

    async def _claim_pages(self) -> None:
        dead = await self._dead_owners()
        after = ""
        while not self._closed:
            room = _CLAIM_PAGE
            if self._max_runs is not None:
                room = min(room, self._max_runs - len(self.owned))
                if room <= 0:
                    return
            claimed = await self._store.claim_runs(
                self.worker_id,
                self._seconds,
                room,
                workflows=list(self._hosted()),
                dead=dead,
                after=after,
            )
            for lease in claimed:
                self.owned[lease.run_id] = lease.epoch
            if self._closed:  # leaving: they are released with the rest, not started
                return
            await self._take_over([lease.run_id for lease in claimed])
            if len(claimed) < room:
                return
            after = max(lease.run_id for lease in claimed)

    async def _take_over(self, run_ids: list[str]) -> None:
        """Hand claimed runs to the router: the dormant ones (only waiting) with what wakes
        them, to be loaded when it does; the others to be loaded now."""
        if not run_ids:
            return
        try:
            dormant = await self._store.dormant_runs(run_ids)
        except StoreError as error:  # they are loaded instead: slower, never wrong
            log.warning("worker %s could not read which runs only wait: %s", self.worker_id, error)
            dormant = {}
        for run_id in run_ids:
            if run_id in self.owned:  # (not lost while the read was out)
                self._adopt(run_id, dormant.get(run_id))

    async def claim(self, run_id: str) -> int | None:
        """Hold one run (one this worker is about to start); its epoch, or None if another
        worker holds it. Claims asked for while one is out go to the store together."""
        loop = asyncio.get_running_loop()
        claim = self._claims.get(run_id)
        if claim is None or claim.done():
            claim = self._claims[run_id] = loop.create_future()
        if self._claimer is None:
            self._claimer = loop.create_task(self._claim_waiting())
        return await claim

    async def _claim_waiting(self) -> None:
        """Claim what is asked, a batch at a time, until nothing is asked."""
        try:
            while self._claims:
                asked = {r: claim for r, claim in self._claims.items() if not claim.done()}
                self._claims, self._asked = {}, asked
                try:
                    if asked:
                        await self._claim_asked(asked)
                finally:
                    self._asked = {}
                    self._quiet_now()
        finally:
            self._claimer = None

    async def _claim_asked(self, asked: dict[str, asyncio.Future[int | None]]) -> None:
        try:
            leases = await self._store.claim_each(self.worker_id, list(asked), self._seconds)
        except Exception as error:
            for claim in asked.values():
                if not claim.done():
                    claim.set_exception(error)
            return
        epochs = {lease.run_id: lease.epoch for lease in leases}
        for run_id, claim in asked.items():
            epoch = epochs.get(run_id)
            if claim.done():  # its caller left: the run is not started here
                if epoch is not None:
                    self.release_soon(run_id)
                continue
            if epoch is not None:
                self.owned[run_id] = epoch
            claim.set_result(epoch)

    def want(self) -> None:
        """Runs this worker does not hold changed (a client started one, a rerun revived
        one): claim what is claimable soon, in one sweep for all of them."""
        self._wanted.set()

    async def sweep(self) -> None:
        """Claim what is claimable each time :meth:`want` was called (run it as a task)."""
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            try:
                await self.claim_lapsed()
            except Exception as error:  # the next want or renewal tries again
                log.warning("worker %s could not claim runs: %s", self.worker_id, error)

    async def release(self, run_ids: Sequence[str]) -> None:
        """Give these runs up (and those let go but not released yet); a store error is
        told, not raised (their leases lapse). The runtime leaving releases, with its own,
        the runs of a release still out (cut off when the runtime closes, it would leave their
        leases to lapse)."""
        for run_id in run_ids:
            self.owned.pop(run_id, None)
        every = list(dict.fromkeys([*run_ids, *self._releasing]))
        if self._closed:
            every = list(dict.fromkeys([*every, *self._sent]))
        self._releasing.clear()
        if not every:
            return
        for run_id in every:
            self._sent[run_id] = self._sent.get(run_id, 0) + 1
        try:
            await self._store.release_leases(self.worker_id, every)
        except Exception as error:  # they lapse on their own
            log.warning(
                "worker %s could not release the leases of %d run(s) (such as %s): %s; they "
                "lapse within %s s, then another worker takes them",
                self.worker_id,
                len(every),
                every[0],
                error,
                self._seconds,
            )
        finally:
            for run_id in every:
                count = self._sent.pop(run_id) - 1
                if count > 0:
                    self._sent[run_id] = count

    async def stop(self) -> None:
        """End the claims and releases still out (the runtime is closing): a start waiting
        on its claim gets ``RuntimeClosedError``."""
        waiting = [*self._claims.values(), *self._asked.values()]
        self._claims = {}
        for task in (self._claimer, self._releaser):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        for claim in waiting:
            if not claim.done():
                claim.set_exception(
                    RuntimeClosedError("the runtime closed while the run was being claimed")
                )
                claim.exception()  # a caller that left is not reported as an unread error

    def release_soon(self, run_id: str) -> None:
        """Give a run up (its actor let it go): runs let go meanwhile are released with it."""
        self.owned.pop(run_id, None)
        self._releasing[run_id] = None
        if self._releaser is None:
            self._releaser = asyncio.get_running_loop().create_task(self._release_waiting())

    async def _release_waiting(self) -> None:
        try:
            while self._releasing:
                run_ids = [r for r in self._releasing if r not in self.owned]
                self._releasing.clear()
                await self.release(run_ids)
        finally:
            self._releaser = None
            self._quiet_now()

    def forget(self, run_id: str) -> None:
        """Stop renewing a run's lease (it ended: the write that ended it let it lapse)."""
        self.owned.pop(run_id, None)

    async def beat(self) -> None:
        """Announce this worker (and what it hosts) until a lease from now."""
        now = datetime.now(UTC)
        await self._store.beat(
            WorkerInfo(
                worker_id=self.worker_id,
                host=self.host,
                pid=self.pid,
                workflows=tuple(self._hosted()),
                seen_at=now,
                expires_at=now + timedelta(seconds=self._seconds),
            )
        )

    async def leave(self) -> None:
        """This worker leaves: it is no longer listed."""
        with contextlib.suppress(Exception):
            await self._store.remove_worker(self.worker_id)

    async def keep(self) -> None:
        """Every fifth of a lease: announce, renew, stop the runs lost, take lapsed ones."""
        while True:
            await anyio.sleep(self._seconds / 5)
            try:
                await self.renew()
                await self.claim_lapsed()
            except Exception as error:  # keep trying: leases lapse only if this persists
                log.warning("could not renew the leases of worker %s: %s", self.worker_id, error)

    async def renew(self) -> None:
        """Renew every lease held; the runs whose lease was not renewed are lost."""
        await self.beat()
        asked = dict(self.owned)  # runs claimed while the renewal is out are not judged
        held = await self._store.renew_leases(self.worker_id, self._seconds)
        for run_id, epoch in asked.items():
            if run_id not in held and self.owned.get(run_id) == epoch:
                log.warning("worker %s lost the lease of run %s", self.worker_id, run_id)
                del self.owned[run_id]
                self._lost(run_id)
        strays = self._strays(held - asked.keys())  # (a run let go meanwhile is no stray)
        if strays:
            await self._give_back(strays)

    async def _give_back(self, strays: list[str]) -> None:
        """Release the leases of runs this worker does not execute and sweep for them. If the
        store fails, they are still renewed as this worker's: the next renewal finds them again
        (or finds them released, if the release was stored and only its answer lost)."""
        such = f"{len(strays)} run(s) it does not execute (such as {strays[0]})"
        try:
            await self._store.release_leases(self.worker_id, strays)
        except Exception as error:
            log.warning(
                "worker %s could not give back the leases of %s: %s; the next renewal tries again",
                self.worker_id,
                such,
                error,
            )
        else:
            log.warning(
                "worker %s held the leases of %s: given back, to be claimed again",
                self.worker_id,
                such,
            )
        self.want()

    def _strays(self, held: Set[str]) -> list[str]:
        """The runs whose leases the store has under this worker's id but this worker does
        not execute: taken by an earlier process with the same id, or by a claim whose answer
        was lost (the store failed after committing it). Renewed with the others, they would
        stay leased to nobody for good. None while a claim is out: its runs are not in hand
        yet."""
        if self._sweeps or self._claims or self._asked:
            return []
        busy = self.owned.keys() | self._starting.keys() | self._releasing.keys()
        return sorted(held - busy)

    async def _dead_owners(self) -> list[str]:
        """Workers of this host whose process is gone: their runs are claimable at once."""
        dead = []
        for worker in await self._store.list_workers():
            here = worker.host == self.host and worker.pid not in (0, self.pid)
            if here and not _alive(worker.pid):  # (this id, too, if an earlier process had it)
                dead.append(worker.worker_id)
                await self._store.remove_worker(worker.worker_id)
            elif worker.worker_id == self.worker_id:
                self._shared_id(worker)
        return dead

    def _shared_id(self, worker: WorkerInfo) -> None:
        """The store lists this worker's id as announced by another process (it beat after
        this one did): two live workers with one id renew, and take for strays, each other's
        leases. Said once per other process that announces it; an entry left by a process that
        is gone passes when it expires."""
        other = (worker.host, worker.pid)
        if other == (self.host, self.pid) or other in self._told:
            return
        self._told.add(other)
        log.error(
            "worker id %s is also announced by %s:%s (until %s): two live workers must not "
            "share an id; give each its own (if that process is gone, this passes when its "
            "entry expires)",
            self.worker_id,
            worker.host,
            worker.pid,
            worker.expires_at.isoformat(),
        )


def _alive(pid: int) -> bool:
    """Whether a process of this host with ``pid`` exists and has not died (a killed process
    its parent has not reaped yet is a zombie: dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc here: it exists
    state = stat.rpartition(")")[2].split()[:1]
    return state not in (["Z"], ["X"])
