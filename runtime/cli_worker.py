"""``actorflow worker MODULE``: host the workflows of a module until SIGTERM or SIGINT.

The worker imports ``MODULE`` with the current directory first on ``sys.path`` (as
``python -m`` does) and hosts exactly the ``@workflow`` functions among the module's
attributes (those it defines or imports), not every workflow the process happens to know.
SIGTERM or SIGINT drains it: it leaves its runtime, so it claims nothing more, lets running
step bodies finish within the grace (and records what they return), cancels the rest and
releases its leases; another worker continues its runs at once. A second signal stops it at
once, as a kill would (its runs then wait out their leases).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import sys
from typing import Any

from .cli_errors import UsageError
from .registry import WorkflowFunction
from .runtime import Runtime

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class NothingToHostError(UsageError, LookupError):
    """The worker's module defines (or imports) no ``@workflow`` function: a usage error."""


def module_workflows(module_name: str) -> list[WorkflowFunction[Any, Any]]:
    """Import ``module_name`` (the current directory first on the path) and return the
    ``@workflow`` functions among its attributes, by name; ``NothingToHostError`` if none."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is None or not _is_prefix(error.name, module_name):
            raise  # the module is there; something it imports is missing
        raise ModuleNotFoundError(
            f"no module named {error.name!r} in the current directory ({here}) or on the "
            "Python path: start the worker in the directory that holds it, or add that "
            "directory to PYTHONPATH",
            name=error.name,
        ) from None
    found = {id(v): v for v in vars(module).values() if isinstance(v, WorkflowFunction)}
    if not found:
        where = getattr(module, "__file__", None) or "a namespace package"
        raise NothingToHostError(
            f"module {module_name!r} defines no @workflow function to host (it is {where}): "
            "name the module that defines or imports the workflows this worker should run"
        )
    return sorted(found.values(), key=lambda w: w.name)


async def serve(
    store: str | None, module_name: str, *, concurrency: int | None, grace: float
) -> int:
    """Host the workflows of ``module_name`` on ``store`` until SIGTERM or SIGINT, then drain.

    At most ``concurrency`` runs at once (None: no limit); running step bodies get ``grace``
    seconds to finish when the worker drains. Prints a line once it hosts, and one once it
    has drained; returns the exit status (0).
    """
    workflows = module_workflows(module_name)
    rt = Runtime(store, workflows=workflows, max_runs=concurrency, shutdown_grace=grace)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def drain(name: str) -> None:
        stop.set()
        _restore(loop)  # a second signal stops the worker at once
        print(f"actorflow worker {rt.worker_id}: {name}: draining (grace {grace:g} s)", flush=True)

    for sig in SIGNALS:
        with contextlib.suppress(NotImplementedError):  # no signal handlers on this platform
            loop.add_signal_handler(sig, drain, sig.name)
    try:
        async with rt:
            hosted = ", ".join(rt.registry.names())
            print(
                f"actorflow worker {rt.worker_id} on {rt.store.url}: hosting {hosted}", flush=True
            )
            await stop.wait()
    finally:
        _restore(loop)
    print(f"actorflow worker {rt.worker_id}: drained", flush=True)
    return 0


def _is_prefix(name: str, module_name: str) -> bool:
    """Whether ``name`` is ``module_name`` or one of the packages it is in."""
    return module_name == name or module_name.startswith(name + ".")


def _restore(loop: asyncio.AbstractEventLoop) -> None:
    """Give SIGTERM and SIGINT back their default handling."""
    for sig in SIGNALS:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(sig)
