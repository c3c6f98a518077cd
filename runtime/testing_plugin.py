"""The pytest plugin of actorflow: the ``workflow_runtime`` fixture.

Installed with the package (entry point ``pytest11``), so any test of a project that has
actorflow installed can ask for it::

    @pytest.mark.workflows([order_flow])        # the workflows it hosts (default: all)
    async def test_order(workflow_runtime):     # a runtime.testing.TestRuntime
        run = await workflow_runtime.start(order_flow, "o-1")
        await workflow_runtime.advance("1h")
        await assert_steps(run, ["charge", "ship"])

The fixture is entered before the test and closed after it. It runs on anyio's pytest plugin
(installed with anyio), on asyncio: an ``async def`` test that takes the fixture needs no
marker of its own, and runs once, on asyncio, even where trio is installed too.
The marker takes a list of workflows (a single workflow function alone would be taken by
pytest for the function to mark); its keyword arguments are options of ``TestRuntime``
(``start=``, ``idle_timeout=``, ...). The assertion helpers are in ``runtime.testing`` and
re-exported here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from .testing import (
    TestRuntime,
    assert_annotations,
    assert_attempts,
    assert_hooks,
    assert_steps,
    assert_waits,
)

MARKER = "workflows"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``workflows`` marker."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}([workflow, ...], **options): the workflows (and TestRuntime options) of "
        "the workflow_runtime fixture",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes ``workflow_runtime`` runs on asyncio only (the runtime is asyncio's),
    unless it chose its ``anyio_backend`` itself."""
    if "workflow_runtime" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        if "anyio_backend" in (
            names.replace(" ", "").split(",") if isinstance(names, str) else names
        ):
            return
    metafunc.definition.add_marker(pytest.mark.parametrize("anyio_backend", ["asyncio"]))


@pytest.fixture
async def workflow_runtime(
    request: pytest.FixtureRequest, anyio_backend: Any
) -> AsyncIterator[TestRuntime]:
    """A :class:`runtime.testing.TestRuntime` (memory store, virtual clock) for one test,
    hosting the workflows of the ``@pytest.mark.workflows(...)`` marker (all if none)."""
    marker = request.node.get_closest_marker(MARKER)
    workflows = _workflows(marker.args) if marker is not None and marker.args else None
    options = dict(marker.kwargs) if marker is not None else {}
    async with TestRuntime(workflows=workflows, **options) as rt:
        yield rt


def _workflows(args: tuple[Any, ...]) -> list[Any]:
    """The marker's workflows: lists of them (or workflows given one by one)."""
    found: list[Any] = []
    for arg in args:
        found.extend(arg if isinstance(arg, list | tuple) else [arg])
    return found


__all__ = [
    "assert_annotations",
    "assert_attempts",
    "assert_hooks",
    "assert_steps",
    "assert_waits",
    "workflow_runtime",
]
