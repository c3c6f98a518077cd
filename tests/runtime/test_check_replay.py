"""check_replay: a history saved from a run, replayed against the current code.

The workflow lives in a module written to a temporary directory; a "code change" rewrites
that module and reloads it (same name, same definition site), as a deploy would.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import uuid
from pathlib import Path
from types import ModuleType

import msgspec
import pytest

from persistence import Event
from runtime import NonDeterminismError, workflow
from runtime.cli import main
from runtime.testing import ReplayDivergedError, TestRuntime, check_replay, load_history

SOURCE = """
from runtime import sleep, step, workflow


@step
async def charge(order_id: str) -> str:
    return "r-" + order_id


@step
async def ship(order_id: str) -> str:
    return "s-" + order_id


@step
async def notify(order_id: str) -> None: ...


@workflow(name="{name}")
async def flow(order_id: str) -> str:
{body}
"""

V1 = """
    receipt = await charge(order_id)
    await sleep("1d")
    label = await ship(order_id)
    return receipt + label
"""
SWAPPED = """
    label = await ship(order_id)
    await sleep("1d")
    receipt = await charge(order_id)
    return receipt + label
"""
REMOVED = """
    receipt = await charge(order_id)
    await sleep("1d")
    return receipt
"""
ADDED = """
    receipt = await charge(order_id)
    await sleep("1d")
    label = await ship(order_id)
    await notify(order_id)
    return receipt + label
"""
FAILS = """
    receipt = await charge(order_id)
    await sleep("1d")
    label = await ship(order_id)
    raise ValueError("no label " + label)
"""
RENAMED_SLEEP = """
    receipt = await charge(order_id)
    await notify(order_id)
    label = await ship(order_id)
    return receipt + label
"""


class Versions:
    """One module of workflow code whose body changes between versions."""

    def __init__(self, root: Path) -> None:
        self.name = f"replayed_{uuid.uuid4().hex[:8]}"
        self.path = root / f"{self.name}.py"
        self.module: ModuleType | None = None

    def load(self, body: str) -> ModuleType:
        self.path.write_text(SOURCE.format(name=f"{self.name}.flow", body=body.strip("\n")))
        if self.module is None:
            self.module = importlib.import_module(self.name)
        else:
            self.module = importlib.reload(self.module)
        return self.module


@pytest.fixture
def versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Versions:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # a reload reads the new source
    return Versions(tmp_path)


def record(module: ModuleType, url: str, finish: bool = True) -> str:
    """Run the workflow on a SQLite store (on the virtual clock); the run id."""

    async def go() -> str:
        from persistence import open_store

        store = await open_store(url)
        try:
            async with TestRuntime(workflows=[module.flow], store=store) as rt:
                run = await rt.start(module.flow, "o-1")
                if finish:
                    await rt.advance("1d")
                    await rt.wait_for_status(run.id, "completed")
                else:
                    await rt.wait_for_sleep(run.id)
                return run.id
        finally:
            await store.close()

    return asyncio.run(go())


def saved_history(
    versions: Versions, tmp_path: Path, capsys: pytest.CaptureFixture[str], finish: bool = True
) -> str:
    """The output of `actorflow runs events RUN_ID --json` for a run of version 1."""
    url = f"sqlite:///{tmp_path / 'prod.db'}"
    run_id = record(versions.load(V1), url, finish)
    capsys.readouterr()
    assert main(["--store", url, "--json", "runs", "events", run_id]) == 0
    return capsys.readouterr().out


def test_a_history_replays_against_the_code_that_made_it(
    versions: Versions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = saved_history(versions, tmp_path, capsys)
    module = versions.load(V1)
    check_replay(history, module.flow)
    (tmp_path / "history.json").write_text(history)
    check_replay(tmp_path / "history.json", module.flow)  # a saved file
    events = load_history(history)
    assert all(isinstance(e, Event) for e in events)
    check_replay(events, module.flow)  # persistence Events
    check_replay({"events": json.loads(history)}, module.flow)  # as `actorflow demo --json`


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            SWAPPED,
            r"event #2 \(step_created, evnt_\w+\): the history has a call of step "
            r"'replayed_\w+:charge', the workflow code made a call of step 'replayed_\w+:ship' "
            r"\(durable call #0\)",
        ),
        (
            REMOVED,
            r"\(step_created, evnt_\w+\): the history has a call of step 'replayed_\w+:ship', "
            r"the workflow code made no durable call at that position \(durable call #2\)",
        ),
        (
            RENAMED_SLEEP,
            r"\(wait_created, evnt_\w+\): the history has a sleep, the workflow code made a "
            r"call of step 'replayed_\w+:notify'",
        ),
        (
            ADDED,
            r"\(run_completed, evnt_\w+\): the history has the run completing, the workflow "
            r"code made a call of step 'replayed_\w+:notify' \(durable call #3\)",
        ),
        (
            FAILS,
            r"\(run_completed, evnt_\w+\): the history has the run completing, the workflow "
            r"code made it fail \(ValueError: no label s-o-1\)",
        ),
    ],
    ids=["steps-swapped", "step-removed", "sleep-replaced", "step-added", "now-fails"],
)
def test_a_changed_workflow_diverges_at_the_first_difference(
    versions: Versions,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    body: str,
    expected: str,
) -> None:
    history = saved_history(versions, tmp_path, capsys)
    changed = versions.load(body)
    with pytest.raises(ReplayDivergedError, match=expected) as caught:
        check_replay(history, changed.flow)
    assert isinstance(caught.value, NonDeterminismError)
    assert caught.value.event.event_id in history


def test_a_run_in_progress_may_go_on_differently_after_its_history(
    versions: Versions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = saved_history(versions, tmp_path, capsys, finish=False)  # asleep for a day
    check_replay(history, versions.load(ADDED).flow)  # what comes after the sleep is new
    with pytest.raises(ReplayDivergedError, match="history has a sleep"):
        check_replay(history, versions.load(RENAMED_SLEEP).flow)


def test_bad_histories_are_refused_clearly(
    versions: Versions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = saved_history(versions, tmp_path, capsys)
    flow = versions.load(V1).flow
    events = load_history(history)
    with pytest.raises(ValueError, match="cannot read the history: expected the JSON list"):
        check_replay("not json", flow)
    with pytest.raises(ValueError, match="the history is empty"):
        check_replay("[]", flow)
    with pytest.raises(TypeError, match=r"a list of persistence\.Event, got dict"):
        check_replay([{"event_type": "run_created"}], flow)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="starts with run_started"):
        check_replay(events[1:], flow)
    other = msgspec.structs.replace(events[-1], run_id="wrun_other")
    with pytest.raises(ValueError, match="has runs"):
        check_replay([*events[:-1], other], flow)
    with pytest.raises(ValueError, match=r"is a run of workflow 'replayed_\w+\.flow', not"):
        check_replay(history, flow_elsewhere)


@workflow
async def flow_elsewhere(order_id: str) -> str:
    return order_id
