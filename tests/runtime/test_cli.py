"""The actorflow command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.cli import main


def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_demo_prints_a_timeline_and_lists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = store(tmp_path)
    assert main(["--store", url, "demo"]) == 0
    out = capsys.readouterr().out
    assert "demo.order_flow" in out and "step_retrying" in out and "run_completed" in out
    assert '"receipt": "receipt-o-1001-4200"' in out
    run_id = out.split()[1]
    assert main(["--store", url, "--json", "runs", "list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in listed] == [run_id] and listed[0]["status"] == "completed"
    assert main(["--store", url, "runs", "show", run_id]) == 0
    shown = capsys.readouterr().out
    assert "status:    completed" in shown and "receipt-o-1001-4200" in shown
    assert main(["--store", url, "--json", "runs", "events", run_id]) == 0
    events = json.loads(capsys.readouterr().out)
    assert events[0]["event_type"] == "run_created" and events[-1]["event_type"] == "run_completed"
    assert main(["--store", url, "runs", "cancel", run_id]) == 0
    assert "had already ended" in capsys.readouterr().out


def test_store_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = store(tmp_path)
    assert main(["--store", url, "--json", "store"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info == {"url": url, "schema_version": 3}


def test_errors_are_clear_and_exit_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--store", store(tmp_path), "runs", "show", "wrun_missing"]) == 1
    assert "RunNotFoundError: run 'wrun_missing' not found" in capsys.readouterr().err
    assert main(["--store", "redis://x", "store"]) == 1
    assert "unknown store scheme" in capsys.readouterr().err
    assert main([]) == 2
