"""Across processes: a stream reader and a hook resumer in another process.

On PostgreSQL the other process is woken by LISTEN/NOTIFY: both sides poll only every
30 s here, so a test that passes in seconds did not rely on polling.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from runtime import HookNotFoundError, Runtime, create_hook, get_writable, step, workflow

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CLIENT = textwrap.dedent(
    """
    import asyncio, json, sys
    from runtime import Runtime

    async def main():
        url, action, target = sys.argv[1], sys.argv[2], sys.argv[3]
        async with Runtime(url, role="client", poll_interval=30) as rt:
            if action == "read":
                print("ready", flush=True)
                async for chunk in rt.get_run(target).stream("out"):
                    print(json.dumps(chunk), flush=True)
            else:
                print(await rt.resume_hook(target, {"from": "another process"}), flush=True)

    asyncio.run(main())
    """
)


@step
async def emit(count: int) -> int:
    async with get_writable("out") as writer:
        for i in range(count):
            await writer.write({"i": i})
    return count


@workflow
async def gated_emitter(token: str) -> int:
    await create_hook(token=token)
    return await emit(3)


@workflow
async def waits_for_payload(token: str) -> object:
    return await create_hook(token=token)


def client(url: str, tmp_path: Path, action: str, target: str) -> subprocess.Popen[str]:
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen(
        [sys.executable, str(script), url, action, target],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def until_hook(rt: Runtime, token: str) -> None:
    with anyio.fail_after(10):
        while True:
            try:
                await rt.get_hook(token)
                return
            except HookNotFoundError:
                await anyio.sleep(0.01)


@pytest.mark.parametrize("store_kind", ["postgres"])
async def test_a_reader_in_another_process(store_url: str, tmp_path: Path) -> None:
    async with Runtime(store_url, workflows=[gated_emitter], poll_interval=30) as rt:
        run = await rt.start(gated_emitter, "t-proc-read")
        reader = client(store_url, tmp_path, "read", run.id)
        try:
            assert reader.stdout is not None
            line = await anyio.to_thread.run_sync(reader.stdout.readline)
            assert line.strip() == "ready", reader.stderr.read() if reader.stderr else ""
            await until_hook(rt, "t-proc-read")
            await anyio.sleep(0.3)  # the reader is waiting on an empty stream by now
            await rt.resume_hook("t-proc-read", "go")
            assert await run.result(timeout=10) == 3
            out, err = await anyio.to_thread.run_sync(lambda: reader.communicate(timeout=10))
        finally:
            if reader.poll() is None:
                reader.kill()
    assert reader.returncode == 0, err
    assert [json.loads(x) for x in out.splitlines()] == [{"i": 0}, {"i": 1}, {"i": 2}]


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
async def test_a_hook_resumed_from_another_process(store_url: str, tmp_path: Path) -> None:
    poll = 30 if store_url.startswith("postgres") else 0.1
    async with Runtime(store_url, workflows=[waits_for_payload], poll_interval=poll) as rt:
        run = await rt.start(waits_for_payload, "t-proc-hook")
        await until_hook(rt, "t-proc-hook")
        resumer = client(store_url, tmp_path, "resume", "t-proc-hook")
        out, err = await anyio.to_thread.run_sync(lambda: resumer.communicate(timeout=30))
        assert resumer.returncode == 0, err
        assert out.strip() == run.id
        with anyio.fail_after(10):
            assert await run.result(timeout=10) == {"from": "another process"}


PLAIN_ASYNCIO = textwrap.dedent(
    """
    import asyncio, sys
    from runtime import Runtime, RetryableError, create_hook, sleep, step, step_metadata, workflow

    @step(retry_delay=0.05)
    async def flaky() -> int:
        if step_metadata().attempt < 3:
            raise RetryableError("not yet", retry_after=0.05)
        return step_metadata().attempt

    @workflow(name="plain:napper")
    async def napper() -> list[object]:
        await sleep(0.2)  # passivated at once, woken by its timer
        attempts = await flaky()  # retried by timers
        payload = await create_hook(token="plain-hook")  # passivated, woken by a payload
        await asyncio.sleep(0.1)
        return [attempts, payload]

    async def main() -> None:
        async with Runtime(sys.argv[1], workflows=[napper], passivate_after=0) as rt:
            run = await rt.start(napper)
            while True:
                try:
                    await rt.get_hook("plain-hook")
                    break
                except Exception:
                    await asyncio.sleep(0.02)
            await rt.resume_hook("plain-hook", "payload")
            print(await run.result(timeout=20))

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
def test_timers_and_payloads_wake_passivated_runs_under_plain_asyncio(
    store_url: str, tmp_path: Path
) -> None:
    """Outside the test runner's event loop (a plain ``asyncio.run``), a timer's callback
    runs with no task: waking a passivated run from it must still work."""
    from ..scripts import run

    script = tmp_path / "plain.py"
    script.write_text(PLAIN_ASYNCIO)
    assert run(script, store_url).stdout.strip() == "[3, 'payload']"
