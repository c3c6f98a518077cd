"""``runs wake``, ``hooks resume`` and ``runs show`` against a worker that runs the workflow.

The command line runs in a thread of the test's process (``main`` has an event loop of its
own there), on the store the worker uses, as another process would.
"""

from __future__ import annotations

import json
from functools import partial

import anyio
import pytest

from persistence import Store
from runtime import (
    HookNotFoundError,
    Runtime,
    create_hook,
    sleep,
    step,
    step_metadata,
    workflow,
)
from runtime.cli import main

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])]


@step(name="cli-runs:charge", retry_delay=0.05)
async def charge(order_id: str) -> str:
    if step_metadata().attempt == 1:
        raise ConnectionError("gateway timed out")
    return f"receipt-{order_id}"


@workflow(name="cli-runs:approval")
async def approval(order_id: str) -> dict[str, object]:
    receipt = await charge(order_id)
    await sleep("1h")
    decision = await create_hook(token=f"approve:{order_id}")
    if decision.get("reject"):
        raise ValueError("rejected by the approver")
    return {"receipt": receipt, "decision": decision}


async def cli(capsys: pytest.CaptureFixture[str], url: str, *args: str, status: int = 0) -> str:
    """``actorflow ARGS --store URL``: its exit status must be ``status``; its stdout."""
    done = await anyio.to_thread.run_sync(partial(main, [*args, "--store", url]))
    out, err = capsys.readouterr()
    assert done == status, err or out
    return out


async def until_sleeping(rt: Runtime, run_id: str) -> None:
    with anyio.fail_after(15):
        while "wait_created" not in [e.event_type for e in await rt.get_run(run_id).events()]:
            await anyio.sleep(0.02)


async def until_hook(rt: Runtime, token: str) -> None:
    with anyio.fail_after(15):
        while True:
            try:
                await rt.get_hook(token)
                return
            except HookNotFoundError:
                await anyio.sleep(0.02)


async def test_wake_a_sleep_and_resume_a_hook_from_the_command_line(
    store_url: str, shared_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    async with Runtime(shared_store, workflows=[approval]) as rt:
        run = await rt.start(approval, "o-1")
        await until_sleeping(rt, run.id)
        assert (
            await cli(capsys, store_url, "runs", "wake", run.id) == f"run {run.id}: woke 1 sleep\n"
        )
        await until_hook(rt, "approve:o-1")  # the hour-long sleep is over
        resumed = await cli(
            capsys,
            store_url,
            "hooks",
            "resume",
            "approve:o-1",
            "--payload",
            '{"ok": true, "by": "carol"}',
            "--idempotency-key",
            "k1",
            "--json",
        )
        assert json.loads(resumed) == {"token": "approve:o-1", "run_id": run.id}
        assert await run.result(timeout=15) == {
            "receipt": "receipt-o-1",
            "decision": {"ok": True, "by": "carol"},
        }
        again = await cli(  # a retry of the same key: the hook is released, the key is known
            capsys,
            store_url,
            "hooks",
            "resume",
            "approve:o-1",
            "--payload",
            "1",
            "--idempotency-key",
            "k1",
        )
        assert again == f"hook approve:o-1 of run {run.id} resumed\n"
        payloads = [e for e in await run.events() if e.event_type == "hook_received"]
        assert len(payloads) == 1

        woken = await cli(capsys, store_url, "runs", "wake", run.id, "--json")
        assert json.loads(woken) == {"run_id": run.id, "woken": 0}  # it has ended

        shown = await cli(capsys, store_url, "runs", "show", run.id)
    rows = {
        line.split("|")[0].strip(): line.split("|")[1:]
        for line in shown.splitlines()
        if line.count("|") == 2
    }
    assert set(rows) == {"cli-runs:charge", "sleep", "hook approve:o-1"}
    assert "x" in rows["cli-runs:charge"][0] and "#" in rows["cli-runs:charge"][0]
    assert "-" in rows["sleep"][0] and rows["sleep"][1].strip().endswith(" ms")
    assert "*" in rows["hook approve:o-1"][0] and rows["hook approve:o-1"][1].strip() == "1 payload"
    assert "steps:     1 step, 2 attempts (1 failed)" in shown
    assert "  cli-runs:charge attempt 1: ConnectionError: gateway timed out (retried after" in shown


async def test_bad_hook_and_wake_requests_exit_with_their_status(
    store_url: str, shared_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    async with Runtime(shared_store, role="client") as rt:
        run = await rt.start(approval, "o-3")
    out = await cli(
        capsys, store_url, "hooks", "resume", "nope", "--payload", "{}", "--json", status=1
    )
    report = json.loads(out)
    assert report["type"] == "HookNotFoundError" and report["kind"] == "not_found"
    assert "nope" in report["error"]
    out = await cli(capsys, store_url, "runs", "wake", "wrun_missing", "--json", status=1)
    assert json.loads(out)["type"] == "RunNotFoundError"
    out = await cli(
        capsys, store_url, "hooks", "resume", "t", "--payload", "{oops", "--json", status=2
    )
    report = json.loads(out)
    assert (
        report["kind"] == "usage"
        and "argument --payload: expected a JSON value" in (report["error"])
    )
    out = await cli(capsys, store_url, "hooks", "resume", "t", "--json", status=2)
    assert json.loads(out)["error"] == "the following arguments are required: --payload"
    assert await cli(capsys, store_url, "runs", "wake", run.id) == (
        f"run {run.id}: no sleep to wake\n"  # pending: no worker has run it yet
    )


async def test_runs_show_gives_the_error_of_a_failed_run(
    store_url: str, shared_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    async with Runtime(shared_store, workflows=[approval]) as rt:
        run = await rt.start(approval, "o-2")
        await until_sleeping(rt, run.id)
        await rt.wake_up(run.id)
        await until_hook(rt, "approve:o-2")
        await rt.resume_hook("approve:o-2", {"reject": True})
        with pytest.raises(Exception, match="rejected by the approver"):
            await run.result(timeout=15)
        shown = await cli(capsys, store_url, "runs", "show", run.id)
        as_json = json.loads(await cli(capsys, store_url, "runs", "show", run.id, "--json"))
    assert "status:    failed" in shown
    assert "error:     [USER_ERROR] ValueError: rejected by the approver" in shown
    assert "result:" not in shown
    assert as_json["result"] is None and as_json["error"]["type"] == "ValueError"
    assert [lane["kind"] for lane in as_json["timeline"]] == ["step", "sleep", "hook"]
