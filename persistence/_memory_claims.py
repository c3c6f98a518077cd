"""The memory store's index of the runs a claim sweep may take (pure: times are passed in).

A sweep must not walk every active run: with 100,000 runs all leased live by the sweeping
worker it has nothing to take. The index keeps, as writes happen, the only places a
claimable run can be: the active runs with no lease, the active runs whose lease was seen to
lapse, and, per owner, the active runs whose lease it holds (for owners known dead). Leases
that are live are kept in a heap by expiry and move to the lapsed set when a sweep finds
their time passed; a renewal, which extends every live lease of its owner to one time, is one
entry for all of them, so neither a renewal nor a sweep costs a heap operation per lease.

:meth:`ClaimIndex.candidates` gives a superset of the claimable runs, in run id order; the
store checks each candidate with the rules of ``Store.claim_runs``.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import NamedTuple


class Holding(NamedTuple):
    """A lease as the index sees it: who holds it, until when."""

    owner: str
    expires_at: datetime


class _Due(NamedTuple):
    """A heap entry: these runs' leases by ``owner`` lapse at ``expires_at`` unless changed
    since (the owner renewed: ``generation`` moved; or the run's lease is another now)."""

    expires_at: datetime
    seq: int
    owner: str
    generation: int
    runs: tuple[str, ...]


class _SortedSet:
    """A set read in sorted order from a point on: a removal costs no re-sort (the sorted
    list keeps the item until it is rebuilt), an addition re-sorts once, at the next read."""

    def __init__(self) -> None:
        self.items: set[str] = set()
        self._sorted: list[str] = []
        self._fresh = True  # every item is in the sorted list

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, item: str) -> None:
        if item not in self.items:
            self.items.add(item)
            self._fresh = False

    def discard(self, item: str) -> None:
        self.items.discard(item)

    def after(self, after: str) -> Iterator[str]:
        """The items greater than ``after``, in order (as the set is when each is reached)."""
        if not self._fresh or len(self._sorted) > 2 * len(self.items) + 64:
            self._sorted = sorted(self.items)
            self._fresh = True
        ordered, items = self._sorted, self.items
        for index in range(bisect.bisect_right(ordered, after), len(ordered)):
            if ordered[index] in items:
                yield ordered[index]


class ClaimIndex:
    """Where the claimable runs of a memory store are (see the module docstring).

    The store calls :meth:`track` after every change of a run's activity (created, ended,
    rerun) or lease, and :meth:`renewed` after a renewal.
    """

    def __init__(self) -> None:
        self._active: dict[str, Holding | None] = {}  # active run -> its lease (None: none)
        self._unleased = _SortedSet()
        self._lapsed = _SortedSet()
        self._holding: dict[str, _SortedSet] = {}  # owner -> active runs it holds a lease of
        self._due: list[_Due] = []
        self._generation: dict[str, int] = {}
        self._seq = itertools.count()

    def track(self, run_id: str, active: bool, lease: Holding | None) -> None:
        """Note that ``run_id`` is (or is not) active and holds ``lease`` now."""
        if not active:
            if run_id in self._active:
                self._leave(run_id, self._active.pop(run_id))
            return
        if run_id in self._active:
            before = self._active[run_id]
            if before == lease:
                return
            self._leave(run_id, before)
        self._active[run_id] = lease
        if lease is None:
            self._unleased.add(run_id)
            return
        self._holding.setdefault(lease.owner, _SortedSet()).add(run_id)
        self._push(lease.expires_at, lease.owner, (run_id,))

    def renewed(self, owner: str, run_ids: Iterable[str], until: datetime) -> None:
        """``owner`` renewed the leases of ``run_ids`` (every lease of its that was live)
        to ``until``: its other active runs' leases had lapsed."""
        held = self._holding.get(owner)
        mine = held.items if held is not None else set()
        renewed = tuple(mine.intersection(run_ids))
        if len(renewed) < len(mine):
            for run_id in mine.difference(renewed):
                self._lapsed.add(run_id)
        self._active.update(dict.fromkeys(renewed, Holding(owner, until)))
        self._generation[owner] = self._generation.get(owner, 0) + 1
        if renewed:
            self._push(until, owner, renewed)

    def candidates(self, now: datetime, after: str, dead: Iterable[str]) -> Iterator[str]:
        """In run id order, once each, after ``after``: every active run that may be
        claimable at ``now`` (with no lease, with a lapsed one, or held by a ``dead`` owner)."""
        self._advance(now)
        held = [self._holding[owner].after(after) for owner in set(dead) if owner in self._holding]
        merged = heapq.merge(self._unleased.after(after), self._lapsed.after(after), *held)
        last = None
        for run_id in merged:
            if run_id != last:
                yield run_id
                last = run_id

    def _advance(self, now: datetime) -> None:
        """Move the runs whose lease lapsed before ``now`` to the lapsed set."""
        due = self._due
        while due and due[0].expires_at < now:
            entry = heapq.heappop(due)
            if entry.generation != self._generation.get(entry.owner, 0):
                continue  # renewed since: the renewal's own entry stands for its runs
            expected = Holding(entry.owner, entry.expires_at)
            for run_id in entry.runs:
                if self._active.get(run_id) == expected:
                    self._lapsed.add(run_id)

    def _push(self, expires_at: datetime, owner: str, runs: tuple[str, ...]) -> None:
        generation = self._generation.get(owner, 0)
        heapq.heappush(self._due, _Due(expires_at, next(self._seq), owner, generation, runs))

    def _leave(self, run_id: str, lease: Holding | None) -> None:
        """Forget where ``run_id`` was (its heap entries are skipped when they come due)."""
        self._unleased.discard(run_id)
        self._lapsed.discard(run_id)
        if lease is not None:
            held = self._holding.get(lease.owner)
            if held is not None:
                held.discard(run_id)
                if not held:
                    del self._holding[lease.owner]
