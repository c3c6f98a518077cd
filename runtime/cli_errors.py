"""How the command line reports an error, and the exit status it gives it.

Exit status 0 is success; 1 is something not found (a run, a step, a hook, a module) or a
command that failed (the store is missing or down, the run had ended); 2 is a usage error (a
command or option missing or malformed, a worker module without workflows). An error is one
line on stderr, ``actorflow: <type>: <message>`` (usage errors add the command's usage), or
with ``--json`` one JSON object on stdout: ``{"error": ..., "type": ..., "kind": ...}``, the
kind being ``usage``, ``not_found`` or ``failed``.
"""

from __future__ import annotations

import json
import sys
from typing import Final

from persistence.errors import EntityNotFoundError

OK: Final = 0
FAILED: Final = 1
USAGE: Final = 2


class UsageError(Exception):
    """The command line was given something it cannot use: exit status 2."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.usage = usage


def kind_of(error: BaseException) -> str:
    """``usage``, ``not_found`` or ``failed``: what went wrong, for scripts."""
    if isinstance(error, UsageError):
        return "usage"
    if isinstance(error, EntityNotFoundError | ModuleNotFoundError):
        return "not_found"
    return "failed"


def exit_status(error: BaseException) -> int:
    """The exit status of a command that raised ``error``."""
    return USAGE if isinstance(error, UsageError) else FAILED


def report(error: BaseException, as_json: bool) -> int:
    """Report ``error`` (on stderr, or as JSON on stdout); its exit status."""
    kind = type(error).__name__
    message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    if as_json:
        print(json.dumps({"error": message or kind, "type": kind, "kind": kind_of(error)}))
    else:
        print(f"actorflow: {kind}: {message}" if message else f"actorflow: {kind}", file=sys.stderr)
        usage = getattr(error, "usage", "")
        if usage:
            print(usage.rstrip("\n"), file=sys.stderr)
    return exit_status(error)
