"""Which runs only wait: a worker that takes them over arms their timers, replaying nothing.

A worker that claims a run normally loads its log and replays its program. For a run that is
only sleeping or waiting on a hook, that work buys nothing until the wait ends, and a worker
that takes over thousands of such runs spends seconds on it. A run is *dormant* when all of
these hold, so nothing has happened that its program has not answered:

* it is running (not pending: a pending run's program has not begun);
* its last event is ``wait_created`` or ``hook_created``: the program's own request was the
  last thing written, so no payload, wake-up or step result arrived after it;
* no step of it is pending or running, and no stream of it is left open;
* it has at least one waiting sleep or active hook (something can wake it).

For a dormant run the worker arms a timer for each waiting sleep and notes its hooks; the
first message that reaches the run (a due timer, a payload, another writer's commit) loads
and replays it as if it had been passivated here. Every other run is loaded at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import msgspec

from .state import Hook, Wait

WAKE_REQUESTS = frozenset({"wait_created", "hook_created"})
"""The event types that, last in a log, mean the program's own request came last."""


class Dormant(msgspec.Struct, frozen=True, gc=False):
    """A run that only waits: its waiting sleeps (id, when due) and active hooks (id, token)."""

    run_id: str
    waits: tuple[tuple[str, datetime], ...] = ()
    hooks: tuple[tuple[str, str], ...] = ()


def judge(
    last_types: Mapping[str, str],
    busy: Iterable[str],
    waits: Iterable[Wait],
    hooks: Iterable[Hook],
) -> dict[str, Dormant]:
    """The dormant runs, from facts a store reads in bulk.

    ``last_types``: the type of the last event of each *running* run asked about; ``busy``:
    runs with a pending or running step or an open stream; ``waits``/``hooks``: the waiting
    sleeps and active hooks of the runs asked about.
    """
    candidates = {r for r, kind in last_types.items() if kind in WAKE_REQUESTS}
    candidates.difference_update(busy)
    sleeps: dict[str, list[tuple[str, datetime]]] = {}
    for wait in waits:
        if wait.run_id in candidates:
            sleeps.setdefault(wait.run_id, []).append((wait.wait_id, wait.resume_at))
    tokens: dict[str, list[tuple[str, str]]] = {}
    for hook in hooks:
        if hook.run_id in candidates:
            tokens.setdefault(hook.run_id, []).append((hook.hook_id, hook.token))
    return {
        run_id: Dormant(run_id, tuple(sleeps.get(run_id, ())), tuple(tokens.get(run_id, ())))
        for run_id in sorted(candidates)
        if run_id in sleeps or run_id in tokens
    }


__all__ = ["WAKE_REQUESTS", "Dormant", "judge"]
