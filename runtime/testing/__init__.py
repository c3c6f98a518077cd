"""Testing workflows: a runtime on a virtual clock, and replaying saved histories.

- :class:`TestRuntime`: the real runtime on a memory store and a :class:`VirtualClock`;
  ``await rt.advance("3d")`` fires every durable timer due by then, in time order.
- The pytest plugin (``runtime.testing_plugin``, registered as an entry point) gives the
  ``workflow_runtime`` fixture; ``assert_steps``, ``assert_attempts``, ``assert_waits``,
  ``assert_hooks`` and ``assert_annotations`` check what a run did.
- :func:`check_replay`: replays a history saved from a run (``actorflow runs events RUN_ID
  --json``) against the current code, raising at the first divergence.
"""

from __future__ import annotations

from .asserts import (
    assert_annotations,
    assert_attempts,
    assert_hooks,
    assert_steps,
    assert_waits,
)
from .clock import VirtualClock
from .errors import NotIdleError, StuckError
from .harness import TestRuntime
from .replay import ReplayDivergedError, check_replay, load_history

__all__ = [
    "NotIdleError",
    "ReplayDivergedError",
    "StuckError",
    "TestRuntime",
    "VirtualClock",
    "assert_annotations",
    "assert_attempts",
    "assert_hooks",
    "assert_steps",
    "assert_waits",
    "check_replay",
    "load_history",
]
