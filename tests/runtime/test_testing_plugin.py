"""The pytest plugin: the ``workflow_runtime`` fixture, run by pytest itself (pytester).

The plugin is loaded by name (``-p runtime.testing_plugin``) with the entry point blocked
(``-p no:actorflow``), so these tests pass whether or not the installed package declares it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PLUGIN = ("-p", "no:actorflow", "-p", "runtime.testing_plugin", "-p", "no:cacheprovider")

WORKFLOWS = """
from datetime import UTC, datetime

import pytest

from runtime import now, sleep, step, workflow
from runtime.testing_plugin import assert_steps, assert_waits

held = []


@step
async def charge(order_id: str) -> str:
    return "r-" + order_id


@step
async def ship(order_id: str) -> None: ...


@workflow
async def {name}(order_id: str) -> str:
    receipt = await charge(order_id)
    await sleep("3d")
    await ship(order_id)
    return receipt
"""


def test_the_fixture_runs_a_workflow_on_the_virtual_clock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_orders=WORKFLOWS.format(name="flow")
        + """

@pytest.mark.workflows([flow], start=datetime(2026, 1, 1, tzinfo=UTC))
async def test_order(workflow_runtime):
    rt = workflow_runtime
    held.append(rt)
    assert rt.now() == datetime(2026, 1, 1, tzinfo=UTC)
    run = await rt.start(flow, "o-1")
    await rt.wait_for_sleep(run.id)
    await rt.advance("3d")
    assert await run.result(timeout=5) == "r-o-1"
    await assert_steps(run, ["charge", "ship"])
    await assert_waits(run, ["3d"])


def test_the_runtime_was_closed_after_the_test():
    with pytest.raises(RuntimeError, match="not running"):
        held[0].store


async def test_without_a_marker_every_workflow_is_hosted(workflow_runtime):
    run = await workflow_runtime.start(flow, "o-2")
    await workflow_runtime.advance("3d")
    assert await run.result(timeout=5) == "r-o-2"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_backend_chosen_by_the_test_is_kept(workflow_runtime, anyio_backend):
    assert anyio_backend == "asyncio"
"""
    )
    result = pytester.runpytest(*PLUGIN, "-v")
    result.assert_outcomes(passed=4)  # once each: on asyncio, though trio may be installed
    assert "[trio]" not in result.stdout.str()


def test_a_failed_helper_says_what_the_run_did(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_failing=WORKFLOWS.format(name="other_flow")
        + """

@pytest.mark.workflows([other_flow])
async def test_order(workflow_runtime):
    run = await workflow_runtime.start(other_flow, "o-1")
    await workflow_runtime.advance("3d")
    await assert_steps(run, ["ship", "charge"])
"""
    )
    result = pytester.runpytest(*PLUGIN, "-q")
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines(
        [r".*called steps \['charge', 'ship'\], expected \['ship', 'charge'\]"]
    )
    assert "asserts.py" not in result.stdout.str()  # the helpers' frames are hidden


def test_the_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*PLUGIN, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.workflows([[]workflow, ...[]], **options):*"])


def test_the_package_declares_the_plugin_as_a_pytest_entry_point() -> None:
    root = Path(__file__).parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    assert config["project"]["entry-points"]["pytest11"] == {"actorflow": "runtime.testing_plugin"}
    packages = {  # every package is shipped, runtime.testing and the benchmarks among them
        ".".join(init.parent.relative_to(root).parts)
        for top in ("actorflow", "runtime", "actors", "persistence", "conventions", "benchmarks")
        for init in (root / top).rglob("__init__.py")
        if not any(part.startswith(".") for part in init.relative_to(root).parts)  # .peers venvs
    }
    assert set(config["tool"]["setuptools"]["packages"]) == packages


def test_the_readme_example_passes(pytester: pytest.Pytester) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    start = readme.index("```python\n# test_orders.py\n") + len("```python\n")
    example = readme[start : readme.index("```", start)]
    pytester.makepyfile(test_readme_orders=example)  # its own module: its own step names
    result = pytester.runpytest(*PLUGIN, "-q")
    result.assert_outcomes(passed=2)
