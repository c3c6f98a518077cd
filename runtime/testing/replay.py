"""``check_replay``: does the current code of a workflow replay a history saved from a run?

A history is what ``actorflow runs events RUN_ID --json`` prints (or a list of
``persistence.Event``). It is fed to the workflow exactly as a worker that recovers the run
feeds it (``WorkflowProgram.feed``, in log order, on the effective history of the run's
current rerun generation): the code must make the same durable calls at the same positions,
and, where the history records how the workflow code ended the run, end it the same way.
The first divergence raises :class:`ReplayDivergedError`, a ``NonDeterminismError`` naming
the event and what the code did instead. No step runs and nothing is written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from actors.program import Completed, Failed, ProgramError
from persistence import Event
from persistence import events as ev
from persistence.history import effective_history
from persistence.rules import fold

from ..cli_events import recorded
from ..commands import describe
from ..errors import USER_ERROR, NonDeterminismError
from ..program import WorkflowProgram
from ..registry import WorkflowFunction

History = str | bytes | os.PathLike[str] | Sequence[Event] | Mapping[str, Any]
"""JSON text or bytes (``runs events --json``), a file holding it, or the events."""


class ReplayDivergedError(NonDeterminismError):
    """Replaying a saved history with the current code diverged at ``event``."""

    def __init__(
        self, run_id: str, index: int, event: Event, position: int, expected: str, did: str
    ) -> None:
        super().__init__(position, expected, did)
        self.run_id = run_id
        self.index = index
        self.event = event
        self.args = (
            f"replaying run {run_id} diverged at event #{index} ({event.event_type}, "
            f"{event.event_id}): the history has {expected}, the workflow code made {did} "
            f"(durable call #{position})",
        )


def check_replay(history: History, workflow: WorkflowFunction[Any, Any]) -> None:
    """Replay ``history`` against ``workflow``'s current code; raise at the first divergence.

    Raises :class:`ReplayDivergedError` (a ``NonDeterminismError``) where the code makes a
    different durable call than the history records (another step, a step fewer or more, a
    sleep for a step, another hook token), or ends differently than the history's
    ``run_completed`` / ``run_failed`` of the workflow's own making. ``ValueError`` if the
    history is not one run's log or is of another workflow.
    """
    events = load_history(history)
    first = events[0]
    run_ids = {e.run_id for e in events}
    if len(run_ids) != 1:
        raise ValueError(f"a history is the log of one run; this one has runs {sorted(run_ids)}")
    if not isinstance(first.data, ev.RunCreated):
        raise ValueError(
            f"a history starts with run_created; this one starts with {first.event_type}"
        )
    try:
        run = fold(events).run
    except Exception as error:
        raise ValueError(f"the history is not a valid log of a run: {error}") from error
    assert run is not None
    name = getattr(workflow, "name", None)
    if run.workflow_name != name:
        raise ValueError(f"the history is a run of workflow {run.workflow_name!r}, not {name!r}")
    _replay(run.run_id, effective_history(events)[0], WorkflowProgram(run, workflow))


def load_history(history: History) -> list[Event]:
    """The events of a saved history (see :data:`History`)."""
    if isinstance(history, os.PathLike):
        history = Path(history).read_bytes()
    if isinstance(history, Mapping):
        history = msgspec.json.encode(history.get("events", history))
    if isinstance(history, str | bytes):
        try:
            decoded = msgspec.json.decode(history)
            if isinstance(decoded, Mapping) and "events" in decoded:  # `runs show --json`-like
                decoded = decoded["events"]
            if isinstance(decoded, list):  # the CLI shows recorded values decoded
                decoded = [recorded(item) for item in decoded]
            events = msgspec.convert(decoded, list[Event], strict=False)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise ValueError(
                "cannot read the history: expected the JSON list of events that "
                f"`actorflow runs events RUN_ID --json` prints ({error})"
            ) from error
    else:
        events = list(history)
        wrong = [type(e).__name__ for e in events if not isinstance(e, Event)]
        if wrong:
            raise TypeError(f"a history is a list of persistence.Event, got {wrong[0]}")
    if not events:
        raise ValueError("the history is empty: it holds no event")
    return events


def _replay(run_id: str, history: list[Event], program: WorkflowProgram) -> None:
    try:
        for index, event in enumerate(history):
            try:
                program.feed(event)
            except NonDeterminismError as error:
                raise ReplayDivergedError(
                    run_id, index, event, error.position, error.expected, error.actual
                ) from None
            except ProgramError:  # an event about a call the code never made
                what = f"{event.event_type} of {event.correlation_id}"
                raise ReplayDivergedError(
                    run_id, index, event, program.next_position, what, "no such call"
                ) from None
        _check_end(run_id, history, program)
    finally:
        program.close()


def _check_end(run_id: str, history: list[Event], program: WorkflowProgram) -> None:
    """Where the workflow code ended the run, the code must end it the same way."""
    index, end = next(
        ((i, e) for i, e in reversed(list(enumerate(history))) if _code_ended(e)), (-1, None)
    )
    if end is None:
        return  # not ended by its code (running, cancelled, failed by the runtime)
    outcome = program.take_outcome()
    commands = program.take_commands()
    completed = isinstance(end.data, ev.RunCompleted)
    expected = "the run completing" if completed else "the run failing"
    if commands:
        command = commands[0]
        position = getattr(command, "position", program.next_position)
        raise ReplayDivergedError(run_id, index, end, position, expected, describe(command))
    if isinstance(outcome, Failed) and completed:
        did = f"it fail ({outcome.error.type}: {outcome.error.message})"
        raise ReplayDivergedError(run_id, index, end, program.next_position, expected, did)
    if isinstance(outcome, Completed) and not completed:
        did = "it complete"
        raise ReplayDivergedError(run_id, index, end, program.next_position, expected, did)
    if outcome is None:
        did = "no end of it (it still waits for a durable call)"
        raise ReplayDivergedError(run_id, index, end, program.next_position, expected, did)


def _code_ended(event: Event) -> bool:
    data = event.data
    if isinstance(data, ev.RunCompleted):
        return True
    return isinstance(data, ev.RunFailed) and data.error.code in (None, USER_ERROR)
