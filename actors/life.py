"""A run's stay in one worker: the state a run core keeps, and how the stay ends.

A run core (``actors.core``) holds the run's view and program, an inbox, and at most one
I/O in flight. This base holds that state and the ways a stay ends: the run ends (one path
releases all it held, however the end was learnt), another worker takes it, the worker
drains, or the run only waits and is unloaded (passivated) until a timer or payload wakes it.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from persistence import Run

from . import effects as fx
from .asks import Pending, answer_gone
from .driver import Driver
from .messages import Idle, Message
from .program import ProgramFactory
from .view import RunView


@dataclass(frozen=True)
class CoreConfig:
    """How a run core behaves; one per runtime."""

    worker_id: str | None = None
    """Recorded in ``run_started``."""
    passivate_after: float = 60.0
    """Seconds of only waiting (no step open, no sleep due sooner) before the run unloads."""
    start_attempts: int = 6
    """Failed writes of a new run before its caller is told (the write goes on)."""
    backoff_base: float = 0.05
    """The first delay after a failed read or write; it doubles up to ``backoff_cap``."""
    backoff_cap: float = 5.0
    rng: random.Random = field(default_factory=random.Random, compare=False)
    """Jitter of backoff delays."""


class Phase(enum.Enum):
    FRESH = "fresh"  # the run's state is not known: read the log first
    READY = "ready"  # state and program are current
    PASSIVE = "passive"  # unloaded; the next message loads it again
    DONE = "done"  # ended, missing, released or drained: the actor stops for good


class RunLife:
    """The state of a run core and the end of its stay; see the module docstring."""

    __slots__ = (
        "_effects",
        "announced",
        "claiming",
        "config",
        "draining",
        "driver",
        "failures",
        "fence",
        "gone",
        "hosted",
        "idle_marker",
        "in_segment",
        "inbox",
        "io",
        "now",
        "pending",
        "phase",
        "programs",
        "run_id",
        "unsure",
        "view",
    )

    def __init__(self, run_id: str, programs: ProgramFactory, config: CoreConfig) -> None:
        self.run_id = run_id
        self.programs = programs
        self.config = config
        self.phase = Phase.FRESH
        self.gone = ""  # why the phase is DONE: ended, missing, released or drained
        self.view = RunView()
        self.driver = Driver(run_id)
        self.hosted = True
        self.draining = False
        self.inbox: list[Message] = []  # short: a list is smaller than a deque
        self.io: fx.Read | fx.Write | None = None
        self.pending: Pending | None = None
        self.unsure: Pending | None = None  # a refused write, settled after the next read
        self.failures = 0
        self.in_segment = False
        self.announced: Run | None = None  # a new run, until its first write is stored
        self.fence: int | None = None  # the lease epoch this worker's writes are fenced with
        self.claiming = False  # a new run's first write takes its lease; until it is known
        self.idle_marker = 0
        self.now = datetime.min
        self._effects: list[fx.Effect] | None = None  # None while none wait: idle runs are many

    @property
    def stopped(self) -> bool:
        """Whether the actor may stop: the run ended, was passivated, released or drained."""
        return self.phase in (Phase.PASSIVE, Phase.DONE) and self.io is None

    @property
    def run(self) -> Run | None:
        return self.view.run or self.announced

    @property
    def ended(self) -> bool:
        return self.gone == "ended"

    def abandon(self) -> None:
        """The actor is stopped from outside (the runtime leaves): end the segment."""
        self.driver.drop()
        self._segment_end("stopped")

    def _emit(self, *effects: fx.Effect) -> None:
        if self._effects is None:
            self._effects = list(effects)
        else:
            self._effects.extend(effects)

    # -- ending, passivation, release -------------------------------------------------------

    def _end(self) -> None:
        """The one end-of-run path: whoever ended the run, everything held is released."""
        if self.ended:
            return
        run = self.view.run
        assert run is not None
        self.driver.drop()
        self._segment_end(run.status.value)
        self.view.live_hooks.clear()
        self.view.bodies.clear()
        self._emit(fx.Ended(run))
        self._done("ended")

    def _release(self, why: str, batch: Sequence[Message]) -> None:
        """Let the run go without ending it (another worker has it)."""
        self.driver.drop()
        self._segment_end("stopped")
        self._emit(fx.Released(self.run_id, why))
        self._done("released")
        self._emit(*answer_gone(batch, self.gone, self.run_id))

    def _done(self, why: str) -> None:
        self.phase, self.gone = Phase.DONE, why
        self._emit(fx.Stop())

    def _settle(self) -> None:
        """Nothing to handle: release, stop, passivate, or note when the run went idle."""
        if not self.hosted:
            self._release("this worker does not host its workflow", ())
        elif self.draining:
            if not self.view.bodies:
                self.driver.drop()
                self._segment_end("stopped")
                self._done("drained")
        elif self._waiting_only():
            # Asleep past the horizon, the run would be passivated before it wakes anyway.
            if self.config.passivate_after <= 0 or self.view.asleep():
                self._passivate()
                return
            self.idle_marker += 1
            at = self.now + timedelta(seconds=self.config.passivate_after)
            self._emit(fx.Disarm("idle"), fx.Arm("idle", at, Idle(self.idle_marker)))

    def _idle(self, marker: int) -> None:
        if marker == self.idle_marker and self._waiting_only():
            self._passivate()

    def _waiting_only(self) -> bool:
        if self.phase is not Phase.READY or not self.driver.live:
            return False
        return self.view.waiting_only(self.now, self.config.passivate_after)

    def _passivate(self) -> None:
        self.driver.drop()
        self._segment_end("passivated")
        self.phase = Phase.PASSIVE
        self.view.forget()
        self._emit(fx.Stop())

    # -- telemetry segments and the program ---------------------------------------------------

    def _segment_start(self, run: Run, resumed: bool) -> None:
        if not self.in_segment:
            self.in_segment = True
            self._emit(fx.SegmentStarted(run, resumed))

    def _segment_end(self, reason: str) -> None:
        if self.in_segment:
            self.in_segment = False
            self._emit(fx.SegmentEnded(self.run, reason))
