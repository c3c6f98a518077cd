"""Driving a run's program: feeding it events and taking what it asks for.

The program runs user code, which may raise anything. Whatever escapes it (a
``ProgramError`` such as non-determinism, or any other exception) is not a crash of the
worker: it becomes the run's outcome (``run_failed``), written in the same batch as the events
fed before it, so a step whose completion the program saw is never run again. After that
the program is dropped; only the outcome is left to write.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from persistence import Event, NewAnnotation, NewEvent, Run
from persistence import events as ev
from persistence.batch import Request
from persistence.state import Hook

from .program import Failed, Outcome, Program, ProgramError, error_info
from .requests import annotation_request, command_requests, outcome_requests


class Driver:
    """The program of one run, guarded; see the module docstring."""

    __slots__ = ("forced", "program", "run_id")

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.program: Program | None = None
        self.forced: Outcome | None = None

    @property
    def live(self) -> bool:
        """A program runs and has not failed."""
        return self.program is not None and self.forced is None

    def start(self, program: Program | None, failure: BaseException | None = None) -> None:
        """Drive ``program`` (or, if it could not be built, fail the run with ``failure``)."""
        self.drop()
        self.program = program
        if failure is not None:
            code = failure.code if isinstance(failure, ProgramError) else "RUNTIME_ERROR"
            self._force(failure, code)

    def feed(self, event: Event) -> None:
        """Give the program an event (it runs to quiescence); what it raises is the outcome."""
        if self.program is None or self.forced is not None:
            return
        try:
            self.program.feed(event)
        except ProgramError as error:
            self._force(error, error.code)
        except Exception as error:
            self._force(error, "RUNTIME_ERROR")

    def speculate(
        self,
        data: ev.EventData,
        corr: str | None,
        now: datetime,
        annotations: tuple[NewAnnotation, ...] = (),
    ) -> NewEvent:
        """An event about to be written, fed to the program first."""
        request = NewEvent(self.run_id, data, corr, annotations=annotations, created_at=now)
        self.feed(Event("", self.run_id, request.event_type, corr, data, now))
        return request

    def take(
        self, run: Run, hooks: dict[str, Hook], start_steps: bool, now: datetime
    ) -> list[Request]:
        """What the program asks for: new durable calls, annotations, the outcome."""
        forced, self.forced = self.forced, None
        if forced is not None:
            return outcome_requests(run, forced, now)
        program = self.program
        if program is None:
            return []
        try:
            commands = program.take_commands()
            notes = program.take_annotations()
            outcome = program.take_outcome()
        except Exception as error:
            self._force(error, "RUNTIME_ERROR")
            return self.take(run, hooks, start_steps, now)
        requests = command_requests(self.run_id, commands, run.generation, hooks, start_steps)
        requests += annotation_request(self.run_id, notes)
        if outcome is not None:
            requests += outcome_requests(run, outcome, now)
        return requests

    def drop(self) -> None:
        """Close the program (passivation, a replay, the end of the run)."""
        program, self.program = self.program, None
        if program is not None:
            with contextlib.suppress(Exception):  # closing user code may raise; it is dropped
                program.close()

    def forget(self) -> None:
        """Drop the program and any outcome not yet taken (what it saw was not the log)."""
        self.drop()
        self.forced = None

    def _force(self, error: BaseException, code: str) -> None:
        self.forced = Failed(error_info(error, code))
        self.drop()
