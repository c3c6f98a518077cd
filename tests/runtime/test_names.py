"""A workflow's default name does not depend on how its module was loaded.

``python orders.py``, ``python -m orders`` and ``actorflow worker orders`` (which imports
``orders``) all name the workflow ``orders:order_flow`` (and its step ``orders:charge``), so a
worker finishes a run that the script started. Each runs in a process of its own.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import anyio
import pytest

from runtime import Runtime

from ..scripts import script_env, start_cli

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ORDERS = textwrap.dedent(
    """
    import asyncio
    import sys

    from runtime import Runtime, create_hook, step, workflow


    @step
    async def charge(order_id: str) -> str:
        return f"receipt-{order_id}"


    @workflow
    async def order_flow(order_id: str) -> str:
        receipt = await charge(order_id)
        approval = await create_hook(token=f"go:{order_id}")
        return f"{receipt} {approval}"


    async def main(url: str, order_id: str) -> None:
        async with Runtime(url, workflows=[order_flow]) as rt:
            await rt.start(order_flow, order_id, run_id=order_id)
            while True:  # until the run waits on its hook: then leave it to a worker
                try:
                    await rt.get_hook(f"go:{order_id}")
                    break
                except Exception:
                    await asyncio.sleep(0.02)
        print(order_flow.name, charge.name)


    if __name__ == "__main__":
        asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


@pytest.fixture
def here(tmp_path: Path) -> Path:
    (tmp_path / "orders.py").write_text(ORDERS)
    return tmp_path


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'names.db'}"


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def python(here: Path, *args: str) -> str:
    """Run ``python ARGS`` in ``here`` (it must succeed); its stdout."""
    done = subprocess.run(
        [sys.executable, *args],
        cwd=here,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_script_run_either_way_and_a_worker_of_its_module_agree_on_names(
    here: Path, url: str, processes: list[subprocess.Popen[str]]
) -> None:
    as_script = await anyio.to_thread.run_sync(python, here, "orders.py", url, "o-1")
    as_module = await anyio.to_thread.run_sync(python, here, "-m", "orders", url, "o-2")
    assert as_script == as_module == "orders:order_flow orders:charge\n"

    worker = start_cli("--store", url, "worker", "orders", cwd=here)
    processes.append(worker)
    assert worker.stdout is not None
    with anyio.fail_after(30):
        hosting = await anyio.to_thread.run_sync(worker.stdout.readline, abandon_on_cancel=True)
    assert hosting.endswith(": hosting orders:order_flow\n"), hosting

    async with Runtime(url, role="client") as client:
        for order_id in ("o-1", "o-2"):
            info = await client.get_run(order_id).info()
            assert info.workflow_name == "orders:order_flow"
            steps = [
                getattr(e.data, "step_name", None)
                for e in await client.get_run(order_id).events()
                if e.event_type == "step_created"
            ]
            assert steps == ["orders:charge"]
            await client.resume_hook(f"go:{order_id}", "approved")
            result = await client.get_run(order_id).result(timeout=30)
            assert result == f"receipt-{order_id} approved"  # the worker replayed and finished
    worker.terminate()
    _, err = await anyio.to_thread.run_sync(partial(worker.communicate, timeout=30))
    assert worker.returncode == 0, err


def test_python_c_keeps_the_main_module_name(tmp_path: Path) -> None:
    code = (
        "from runtime import workflow\n@workflow\nasync def flow() -> None: ...\nprint(flow.name)\n"
    )
    assert python(tmp_path, "-c", code) == "__main__:flow\n"


def test_python_m_of_a_package_names_its_main_module(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    (tmp_path / "shop" / "__main__.py").write_text(
        "from runtime import workflow\n\n\n@workflow\nasync def flow() -> None: ...\n\n\n"
        "print(flow.name)\n"
    )
    assert python(tmp_path, "-m", "shop") == "shop.__main__:flow\n"
