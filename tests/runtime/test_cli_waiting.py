"""``runs list`` and ``runs show`` say when a run waits for a worker hosting its workflow."""

from __future__ import annotations

import json
import re
from functools import partial
from typing import Any

import anyio
import pytest

from persistence import Store
from runtime import HookNotFoundError, Runtime, create_hook, workflow

from ..scripts import run_cli

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])]

NOTE = "waiting for a worker hosting waits:gated"
SHOWN = "waiting:   for a worker hosting waits:gated (no live worker hosts it)"


@workflow(name="waits:gated")
async def gated(token: str) -> object:
    return await create_hook(token=token)


@workflow(name="waits:other")
async def other() -> None:
    return None


async def cli(url: str, *args: str) -> str:
    """``actorflow --store URL ARGS``'s stdout (it must succeed)."""
    done = await anyio.to_thread.run_sync(partial(run_cli, "--store", url, *args))
    assert done.returncode == 0, done.stderr
    return done.stdout


async def listed(url: str) -> tuple[list[str], dict[str, Any]]:
    """``runs list`` as text (its lines) and as JSON (its one run)."""
    lines = (await cli(url, "runs", "list")).splitlines()
    (item,) = json.loads(await cli(url, "--json", "runs", "list"))
    return lines, item


async def shown(url: str, run_id: str) -> tuple[str, dict[str, Any]]:
    """``runs show`` as text and as JSON."""
    text = await cli(url, "runs", "show", run_id)
    return text, json.loads(await cli(url, "--json", "runs", "show", run_id))


async def until_hook(rt: Runtime, token: str) -> None:
    with anyio.fail_after(15):
        while True:
            try:
                await rt.get_hook(token)
                return
            except HookNotFoundError:
                await anyio.sleep(0.05)


async def test_a_run_no_live_worker_hosts_is_shown_waiting_until_one_does(
    store_url: str, shared_store: Store
) -> None:
    async with Runtime(shared_store, role="client") as client:
        run = await client.start(gated, "the-gate")
    async with Runtime(store_url, workflows=[other], lease_seconds=30):  # hosts another one
        assert [w.workflows for w in await shared_store.list_workers()] == [("waits:other",)]
        lines, item = await listed(store_url)
        assert re.split(r"\s{2,}", lines[0]) == ["RUN ID", "STATUS", "WORKFLOW", "CREATED", "NOTE"]
        assert len(lines) == 2 and lines[1].startswith(f"{run.id}  pending  ")
        assert lines[1].endswith(f"  {NOTE}")
        assert item["run_id"] == run.id and item["status"] == "pending"
        assert item["workflow_name"] == "waits:gated" and item["waiting_for_worker"] is True
        assert {"created_at", "started_at", "completed_at", "error"} <= set(item)
        text, info = await shown(store_url, run.id)
        assert SHOWN in text.splitlines() and "status:    pending" in text
        assert info["run_id"] == run.id and info["waiting_for_worker"] is True
        assert info["workflow_name"] == "waits:gated"

    async with Runtime(store_url, workflows=[gated], lease_seconds=30) as worker:
        await until_hook(worker, "the-gate")  # the worker runs it: it waits on its hook
        lines, item = await listed(store_url)
        assert lines[1].startswith(f"{run.id}  running  ") and "waiting" not in lines[1]
        assert item["status"] == "running" and item["waiting_for_worker"] is False
        text, info = await shown(store_url, run.id)
        assert "waiting" not in text and "status:    running" in text
        assert info["waiting_for_worker"] is False
        await worker.resume_hook("the-gate", "open")
        assert await worker.get_run(run.id).result(timeout=15) == "open"
    lines, item = await listed(store_url)  # an ended run waits for nothing, worker or not
    assert item["status"] == "completed" and item["waiting_for_worker"] is False
    assert "waiting" not in lines[1]
