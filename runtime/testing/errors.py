"""What the test runtime raises when a test waits for something that does not come."""

from __future__ import annotations


class NotIdleError(TimeoutError):
    """The runtime did not settle within the timeout (real seconds): something kept running.

    The message names what was busy (the step bodies still running, for instance)."""


class StuckError(AssertionError):
    """Every run is waiting (on a timer, a hook or a retry delay) or done, and what the test
    waited for has not happened: it cannot happen until the test advances the clock or sends
    a payload. The message lists what each run waits for."""
