"""``actorflow worker MODULE``: host the workflows of a module until stopped.

The worker imports ``MODULE`` with the current directory first on ``sys.path`` (as
``python -m`` does) and hosts exactly the ``@workflow`` functions among the module's
attributes (those it defines or imports), not every workflow the process happens to know.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from typing import Any

from .registry import WorkflowFunction
from .runtime import Runtime


class NothingToHostError(LookupError):
    """The worker's module defines (or imports) no ``@workflow`` function."""


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


async def serve(store: str | None, module_name: str) -> int:
    """Host the workflows of ``module_name`` on ``store`` until the process is stopped."""
    workflows = module_workflows(module_name)
    async with Runtime(store, workflows=workflows) as rt:
        hosted = ", ".join(rt.registry.names())
        print(f"actorflow worker {rt.worker_id} on {rt.store.url}: hosting {hosted}", flush=True)
        await asyncio.Event().wait()
    return 0


def _is_prefix(name: str, module_name: str) -> bool:
    """Whether ``name`` is ``module_name`` or one of the packages it is in."""
    return module_name == name or module_name.startswith(name + ".")
