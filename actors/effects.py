"""What the run core asks its shell to do (effects), and what the shell reports back (results).

The core (``actors.core``) never performs I/O. It emits effects; the shell (``RunActor``)
executes them in order. Three effects are I/O whose result the shell feeds back before it
takes the next effects: :class:`Read` (answered by :class:`Loaded` or :class:`IOFailed`),
:class:`Write` (:class:`Written` or :class:`IOFailed`) and :class:`Backoff` (:class:`Retry`).
The core emits at most one of them at a time, always last. Every other effect is done at once
and reports nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from persistence import Event, Run
from persistence.batch import Request

from .messages import StepWork

# -- I/O ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Read:
    """Read the run's log: all of it (``after`` None) or the events after ``after``; with
    ``claim``, take (or keep) the run's lease first (a new run whose first write, which
    would have taken it, was refused or its outcome is unknown)."""

    after: str | None
    claim: bool = False


@dataclass(frozen=True, slots=True)
class Write:
    """Write these requests in one batch (the run's own are conditional on its last event)."""

    requests: Sequence[Request]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Wait ``seconds`` (the store failed), then report :class:`Retry`."""

    seconds: float


# -- results fed back -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Loaded:
    """The answer to a :class:`Read`; ``running`` maps the run's step ids to the attempts whose
    bodies run in this process (a restarted core learns of them here)."""

    events: Sequence[Event]
    running: Mapping[str, int] = field(default_factory=dict)
    fence: int | None = None
    """The lease epoch this worker holds the run at (its writes are fenced with it); None if
    it does not hold the run."""


@dataclass(frozen=True, slots=True)
class Written:
    """The answer to a :class:`Write`: per request, the event (None for annotations only) or
    the refusal, and the ``annotation_created`` events written with it."""

    outcomes: Sequence[object]
    emitted: Sequence[Sequence[Event]]
    leases: Mapping[str, int] = field(default_factory=dict)
    """Leases the write took with the runs it created: run id -> epoch."""


@dataclass(frozen=True, slots=True)
class IOFailed:
    """A :class:`Read` or :class:`Write` failed (the store is down, busy, full or
    misconfigured): nothing was written, or the write's fate is unknown."""

    error: BaseException
    transient: bool = True
    """False when the store says retrying will not help until its configuration is fixed."""


@dataclass(frozen=True, slots=True)
class Retry:
    """A :class:`Backoff` is over."""


Result = Loaded | Written | IOFailed | Retry

# -- done at once ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartBody:
    """Run one attempt of a step body."""

    work: StepWork


@dataclass(frozen=True, slots=True)
class Acknowledge:
    """The run has the end of this attempt in hand; the executor may forget it."""

    step_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class Arm:
    """Deliver ``message`` to the run at ``at`` (a timer keyed ``key``; arming twice is one)."""

    key: str
    at: datetime
    message: object


@dataclass(frozen=True, slots=True)
class Claimed:
    """The run's first write took its lease at ``epoch``: this worker holds the run."""

    epoch: int


@dataclass(frozen=True, slots=True)
class Disarm:
    """Cancel the run's timer ``key``."""

    key: str


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer a caller: ``reply`` (an opaque handle the message carried) gets ``value``, or
    ``error`` raised if it is set."""

    reply: object
    value: object = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class HookLive:
    """Payloads for ``token`` go to this run's hook ``hook_id``."""

    token: str
    hook_id: str


@dataclass(frozen=True, slots=True)
class HookGone:
    """The hook ``hook_id`` no longer takes payloads through ``token``."""

    token: str
    hook_id: str


@dataclass(frozen=True, slots=True)
class Notify:
    """This run's write changed another run's log (a child told its parent): wake that run."""

    run_id: str


@dataclass(frozen=True, slots=True)
class CloseStreams:
    """Close these streams of the run (the steps that closed them have completed)."""

    namespaces: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Committed:
    """These events of the run are facts now (written by this core, or learnt of)."""

    run: Run
    events: Sequence[Event]


@dataclass(frozen=True, slots=True)
class SegmentStarted:
    """This worker took the run (``resumed``: it had started before)."""

    run: Run
    resumed: bool


@dataclass(frozen=True, slots=True)
class SegmentEnded:
    """This worker stopped holding the run: ``completed``, ``failed``, ``cancelled``,
    ``passivated``, ``stopped`` or ``abandoned``."""

    run: Run | None
    reason: str


@dataclass(frozen=True, slots=True)
class Ended:
    """The run has ended: release everything held for it (timers, hooks, lease, ...)."""

    run: Run


@dataclass(frozen=True, slots=True)
class Released:
    """This worker lets the run go without ending it (another worker has it, or this one does
    not host its workflow): release what is held for it here."""

    run_id: str
    why: str


@dataclass(frozen=True, slots=True)
class Stop:
    """The actor may stop: the run ended, was passivated, released or drained."""


Effect = (
    Read
    | Write
    | Backoff
    | StartBody
    | Acknowledge
    | Arm
    | Claimed
    | Disarm
    | Reply
    | HookLive
    | HookGone
    | Notify
    | CloseStreams
    | Committed
    | SegmentStarted
    | SegmentEnded
    | Ended
    | Released
    | Stop
)
