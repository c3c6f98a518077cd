"""The workflow the hooks benchmark runs (module level, so it registers by name).

``hook_then_step`` waits on a hook, then calls a step. It stamps both clocks twice, by the
run's key: in workflow code right after ``await hook`` returns (``RESUMED``; a side effect
in workflow code, harmless here because a benchmark run is never replayed, and only the
first stamp is kept if it were) and first thing in the step's body (``STEP_ENTERED``).
Each stamp is ``(time.perf_counter(), time.time())``: the first for this process, the
second to compare with a client in another process.
"""

from __future__ import annotations

import time
from typing import Any

from runtime import WorkflowFunction, create_hook, step, workflow

Stamp = tuple[float, float]
"""``(time.perf_counter(), time.time())`` at one moment."""

RESUMED: dict[str, Stamp] = {}
"""When workflow code ran again after ``await hook``, by the run's key."""
STEP_ENTERED: dict[str, Stamp] = {}
"""When the body of the step after the hook was entered, by the run's key."""


def stamp() -> Stamp:
    """Both clocks now."""
    return time.perf_counter(), time.time()


def take_stamps(key: str) -> tuple[Stamp, Stamp]:
    """The run's (workflow resumed, step entered) stamps, forgetting them."""
    return RESUMED.pop(key), STEP_ENTERED.pop(key)


@step
async def after_hook(key: str) -> int:
    """A no-op step whose first line records when its body was entered."""
    STEP_ENTERED.setdefault(key, stamp())
    return 0


@workflow
async def hook_then_step(key: str, token: str) -> Any:
    """Wait for a payload on the hook ``token``, then run one step; returns the payload."""
    payload = await create_hook(token=token)
    RESUMED.setdefault(key, stamp())
    await after_hook(key)
    return payload


HOOK_WORKFLOWS: list[WorkflowFunction[Any, Any]] = [hook_then_step]
"""Every workflow the hooks benchmark hosts."""
