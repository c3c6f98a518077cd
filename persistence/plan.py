"""The plan of a batch: what a store writes for it in one transaction, and what it tells.

:func:`persistence.batch.plan_batch` decides a batch and fills a :class:`BatchPlan`: the
outcome of each request, the events and annotation rows to insert, the final state of each
run and entity it changed, the hooks and waits released, the lease fences and claims. A
store writes the plan, then reads from it the topics to notify and the result to return.
The small records the planner takes or makes (a token's owner, a lease held or claimed, a
release) are here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from .events import Event
from .ids import EVENT, new_id
from .notify import EVENTS_TOPIC, end_topic, run_topic
from .records import AnnotationRecord, BatchResult
from .state import Hook, Run, Step, Wait


def new_event_id() -> str:
    """A fresh event id (for plans made without a batch's id block)."""
    return new_id(EVENT)


class TokenOwner(NamedTuple):
    """The live hook that holds a token."""

    run_id: str
    hook_id: str
    position: int


@dataclass
class Release:
    """A run released its hooks and waits from ``from_position`` on (end or rerun)."""

    run_id: str
    from_position: int
    at: datetime


class Held(NamedTuple):
    """A lease as a store holds it, for a run a batch claims."""

    owner: str
    expires_at: datetime
    epoch: int


class Claimed(NamedTuple):
    """A lease a batch takes: ``owner`` until ``now + seconds``, at ``epoch``."""

    owner: str
    seconds: float
    epoch: int


@dataclass
class BatchPlan:
    """What to write: accepted events, final entities, releases and annotation rows."""

    outcomes: list[Event | BaseException | None] = field(default_factory=list)
    annotations: list[list[AnnotationRecord]] = field(default_factory=list)
    emitted: list[list[Event]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    runs: dict[str, Run] = field(default_factory=dict)
    new_runs: set[str] = field(default_factory=set)
    expected: dict[str, str | None] = field(default_factory=dict)
    steps: dict[tuple[str, str], Step] = field(default_factory=dict)
    waits: dict[tuple[str, str], Wait] = field(default_factory=dict)
    hooks: dict[tuple[str, str], Hook] = field(default_factory=dict)
    releases: list[Release] = field(default_factory=list)
    fences: dict[str, int] = field(default_factory=dict)
    """Runs written under a lease fence, and the epoch they were written under."""
    claims: dict[str, Claimed] = field(default_factory=dict)
    """Leases the batch takes with the runs it creates (see ``NewEvent.claim``)."""
    next_id: Callable[[], str] = field(default=new_event_id, repr=False)

    def result(self) -> BatchResult:
        return BatchResult(
            outcomes=self.outcomes,
            annotations=self.annotations,
            emitted=self.emitted,
            leases={run_id: c.epoch for run_id, c in self.claims.items()},
        )

    def topics(self) -> list[str]:
        """The notifier topics this plan changes once committed (empty if it wrote nothing)."""
        if not self.events and not any(self.annotations):
            return []
        topics = [run_topic(run_id) for run_id in self.runs]
        topics += [end_topic(r.run_id) for r in self.runs.values() if r.status.terminal]
        topics.append(EVENTS_TOPIC)
        return topics

    @property
    def ended(self) -> list[str]:
        """The runs this plan leaves ended: their leases lapse in the same transaction (an
        ended run is nobody's to execute; a rerun claims it again, at the next epoch if
        another worker takes it)."""
        return sorted(run_id for run_id, run in self.runs.items() if run.status.terminal)

    @property
    def unclaimed(self) -> list[str]:
        """The runs this plan creates without a claim (a client's start; a starter that
        claimed first): no worker executes them until one claims them."""
        return sorted(self.new_runs - self.claims.keys())

    @property
    def revived(self) -> list[str]:
        """The runs this plan reran and leaves not ended: executable again."""
        reran = {release.run_id for release in self.releases}
        return sorted(r for r in reran if not self.runs[r].status.terminal)

    @property
    def annotation_rows(self) -> Iterable[AnnotationRecord]:
        for rows in self.annotations:
            yield from rows
