"""What the SQLite writer keeps between transactions: run states and lease epochs (pure).

A write transaction plans a batch on the states of its runs. Reading and folding them from
their rows again in every transaction costs more than the plan itself, so the writer keeps
the whole state (every step, wait and hook) of each run it wrote or loaded lately, and the
lease epochs it read or wrote, and trusts them only while they are exact:

- Several connections (other processes, other stores) may write the file. SQLite's
  ``PRAGMA data_version`` on the writer's connection changes when another connection
  commits, never for the connection's own commits. Read inside ``BEGIN IMMEDIATE`` (nobody
  else commits until this transaction ends), it tells whether the file is exactly as this
  writer left it. :meth:`RunCache.begin` takes it: if it moved, every cached state must be
  checked against its run row's ``last_event_id`` before use (every write of a run's
  entities appends an event, so an unchanged last event means unchanged entities), and the
  lease epochs are dropped.
- The planner updates the states it is given in place, before the commit: the writer
  :meth:`~RunCache.forget`\\ s a batch's runs if anything fails, and :meth:`~RunCache.remember`\\ s
  them only once ``COMMIT`` returned.
- Leases taken by this connection outside a batch (``claim_runs``, ``claim_each``) are
  recorded with :meth:`~RunCache.took`; renewing or releasing a lease keeps its epoch.

The cache holds runs of about :data:`CACHE_EVENTS` events in all, least recently written
dropped first; an ended run leaves it (it is rarely written again), and the writer does not
keep a run its batch left waiting on a sleep or a hook (see ``_sqlite_jobs``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from .state import Run, RunState

CACHE_EVENTS: Final = 10_000
"""The cached runs hold at most about this many events in all."""

FULL_LOAD_EVENTS: Final = 1000
"""A run missing from the cache is loaded whole (and cached) if it has at most this many
events; a longer one is loaded in part, as its batch needs, and not cached."""


@dataclass(slots=True)
class _Entry:
    state: RunState
    weight: int
    round: int
    """The :attr:`RunCache.round` in which the state was last known to be the file's."""


class RunCache:
    """The writer's run states and lease epochs, trusted only while the file is unchanged by
    others (see the module docstring). Used by the writer thread alone."""

    def __init__(self, limit: int = CACHE_EVENTS) -> None:
        self._limit = limit
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._weight = 0
        self._epochs: dict[str, int] = {}
        self._version: int | None = None
        self.round = 0
        """Bumped each time another connection was found to have written the file."""

    def __len__(self) -> int:
        return len(self._entries)

    def begin(self, version: int) -> None:
        """In a write transaction: the file's ``data_version`` as this connection sees it."""
        if version != self._version:
            self.round += 1
            self._epochs.clear()
            self._version = version

    def lookup(self, run_ids: Iterable[str]) -> tuple[dict[str, RunState], list[str], list[str]]:
        """Of these runs: the cached states known exact, the cached runs to check first
        (:meth:`confirm`), and the runs not cached."""
        exact: dict[str, RunState] = {}
        unchecked: list[str] = []
        missing: list[str] = []
        for run_id in run_ids:
            entry = self._entries.get(run_id)
            if entry is None:
                missing.append(run_id)
            elif entry.round == self.round:
                exact[run_id] = entry.state
            else:
                unchecked.append(run_id)
        return exact, unchecked, missing

    def confirm(self, run_id: str, stored: Run | None) -> RunState | None:
        """The cached state of a run whose row now holds ``stored``, if the run has not moved
        since it was cached (same last event); otherwise it is dropped and None returned."""
        entry = self._entries.get(run_id)
        if entry is None:
            return None
        cached = entry.state.run
        if stored is None or cached is None or cached.last_event_id != stored.last_event_id:
            self.forget([run_id])
            return None
        entry.round = self.round
        return entry.state

    def epochs(self, run_ids: Iterable[str]) -> tuple[dict[str, int], list[str]]:
        """Of these runs: the lease epochs known, and the runs whose epoch must be read."""
        known: dict[str, int] = {}
        unknown: list[str] = []
        for run_id in run_ids:
            epoch = self._epochs.get(run_id)
            if epoch is None:
                unknown.append(run_id)
            else:
                known[run_id] = epoch
        return known, unknown

    def took(self, epochs: Mapping[str, int]) -> None:
        """This connection committed these leases at these epochs."""
        if len(self._epochs) + len(epochs) > self._limit:
            self._epochs.clear()  # read again when needed
        self._epochs.update(epochs)

    def remember(
        self, states: Mapping[str, RunState], whole: Iterable[str], epochs: Mapping[str, int]
    ) -> None:
        """After a commit: ``states`` are the committed states of the batch's runs, whole
        (every entity) for the runs in ``whole``; ``epochs`` the leases as committed."""
        self.took(epochs)
        complete = set(whole)
        for run_id, state in states.items():
            run = state.run
            if run_id not in complete or run is None or run.status.terminal:
                self.forget([run_id])
                continue
            entry = self._entries.get(run_id)
            if entry is None:
                self._entries[run_id] = _Entry(state, run.event_count, self.round)
                self._weight += run.event_count
            else:
                self._weight += run.event_count - entry.weight
                entry.state, entry.weight, entry.round = state, run.event_count, self.round
                self._entries.move_to_end(run_id)
        while self._weight > self._limit and self._entries:
            self.forget([next(iter(self._entries))])

    def forget(self, run_ids: Iterable[str]) -> None:
        """Drop these runs' states and lease epochs (they may not be what the file holds)."""
        for run_id in run_ids:
            self._epochs.pop(run_id, None)
            entry = self._entries.pop(run_id, None)
            if entry is not None:
                self._weight -= entry.weight
