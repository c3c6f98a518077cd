"""The effective history of a run: its log as the current rerun generation sees it.

``run_rerun(from_position=k)`` keeps the durable calls before position ``k`` (and their
results) and makes everything from ``k`` on happen again. Replaying the raw log would feed
the workflow results of calls it is about to make again, so the replay is fed this history
instead: the events of superseded calls, the run's earlier ending and the rerun markers are
left out. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import events as ev
from .events import Event

_CREATES = (ev.StepCreated, ev.WaitCreated, ev.HookCreated, ev.HookConflict)


def effective_history(events: Sequence[Event]) -> tuple[list[Event], set[str]]:
    """The events a replay of the current generation is fed, and the call ids still current."""
    if not any(e.event_type == "run_rerun" for e in events):
        return list(events), {e.correlation_id for e in events if e.correlation_id}
    position: dict[str, int] = {}
    superseded: set[str] = set()
    kept: list[Event] = []
    for event in events:
        data = event.data
        corr = event.correlation_id
        if isinstance(data, ev.RunRerun):
            cut = data.from_position
            for index in range(len(kept) - 1, -1, -1):
                old = kept[index]
                if old.event_type in ev.TERMINAL_RUN_EVENTS:
                    del kept[index]
                elif old.correlation_id is not None and position.get(old.correlation_id, -1) >= cut:
                    superseded.add(old.correlation_id)
                    del kept[index]
            continue
        if corr is not None:
            if isinstance(data, _CREATES):
                position[corr] = data.position
            elif corr in superseded:
                continue
        kept.append(event)
    current = {e.correlation_id for e in kept if e.correlation_id}
    return kept, current
