"""The OpenTelemetry SDK is optional: the runtime needs the API only, and only its public names."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import tomllib

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider

from runtime.telemetry import metrics_enabled
from tests.scripts import ROOT, script_env

PACKAGES = ("actorflow", "runtime", "actors", "persistence", "conventions")

WITHOUT_SDK = textwrap.dedent(
    """
    import asyncio, sys
    sys.modules["opentelemetry.sdk"] = None  # any import of the SDK now fails

    from actorflow import MemoryStore, Runtime, sleep, step, workflow

    @step
    async def double(n: int) -> int:
        return 2 * n

    @workflow
    async def flow(n: int) -> int:
        await sleep(0.01)
        return await double(n)

    async def main() -> None:
        async with Runtime(MemoryStore(), workflows=[flow]) as rt:
            assert rt.telemetry is not None and not rt.telemetry.active
            run = await rt.start(flow, 21)
            print(await run.result(timeout=10))
        try:
            import opentelemetry.sdk.trace  # noqa: F401
        except ImportError:
            print("no sdk")

    asyncio.run(main())
    """
)


def test_a_workflow_runs_with_the_sdk_absent() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_SDK],
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["42", "no", "sdk"]


def test_the_sdk_is_an_extra_not_a_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [requirement.split(">")[0] for requirement in project["dependencies"]]
    assert "opentelemetry-api" in names
    assert "opentelemetry-sdk" not in names
    for extra in ("otel", "dev"):
        extras = project["optional-dependencies"][extra]
        assert any(r.startswith("opentelemetry-sdk") for r in extras), extra


def test_no_private_opentelemetry_module_is_imported() -> None:
    private = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom):
                    modules = [node.module or ""]
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                    names = []
                else:
                    continue
                for module in modules:
                    if module.split(".")[0] != "opentelemetry":
                        continue
                    parts = module.split(".") + names
                    if any(part.startswith("_") for part in parts):
                        private.append(f"{path.relative_to(ROOT)}:{node.lineno}: {module}")
    assert not private


def test_only_an_implementation_of_the_meter_provider_turns_metrics_on() -> None:
    assert not metrics_enabled(metrics.NoOpMeterProvider())
    assert metrics_enabled(MeterProvider())
    # The proxy the API returns while no provider is set: asked in a fresh process.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from opentelemetry import metrics; from runtime.telemetry import metrics_enabled;"
            "print(metrics_enabled(metrics.get_meter_provider()))",
        ],
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.strip() == "False", done.stderr
