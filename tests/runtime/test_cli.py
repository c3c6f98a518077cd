"""The actorflow command line."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from persistence import open_store
from runtime.cli import main
from runtime.cli_events import decoded
from tests.scripts import run_cli, script_env, start_cli


def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def made(url: str) -> str:
    """``url``, once a store exists there (read-only commands do not create one)."""

    async def make() -> None:
        store = await open_store(url)
        await store.close()

    asyncio.run(make())
    return url


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
    url = made(store(tmp_path))
    assert main(["--store", url, "--json", "store"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info == {"url": url, "schema_version": 4}


def test_errors_are_clear_and_exit_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--store", made(store(tmp_path)), "runs", "show", "wrun_missing"]) == 1
    assert "RunNotFoundError: run 'wrun_missing' not found" in capsys.readouterr().err
    assert main(["--store", "redis://x", "store"]) == 1
    assert "unknown store scheme" in capsys.readouterr().err
    assert main([]) == 2


READ_ONLY = [
    ["store"],
    ["runs", "list"],
    ["runs", "show", "wrun_x"],
    ["runs", "events", "wrun_x"],
    ["annotations", "list", "wrun_x"],
]
ACTING = [  # these write, but only to runs and hooks that a new store would not have
    ["runs", "cancel", "wrun_x"],
    ["runs", "wake", "wrun_x"],
    ["runs", "rerun", "wrun_x", "--from", "s"],
    ["hooks", "resume", "approve:x", "--payload", '{"ok": true}'],
    ["annotations", "migrate-legacy"],
]


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("command", READ_ONLY + ACTING, ids=" ".join)
def test_commands_on_a_missing_store_fail_clearly_and_create_nothing(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nonexistent" / "dir" / "x.db"
    assert main(["--store", f"sqlite:///{path}", *command]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"actorflow: StoreConfigurationError: no actorflow store at {path}: the file does "
        "not exist, and opening it read-only creates nothing; check the store URL (or "
        "$ACTORFLOW_STORE), or let a worker create the store first\n"
    )
    assert tree(tmp_path) == []


@pytest.mark.parametrize("command", READ_ONLY + ACTING, ids=" ".join)
def test_commands_on_a_missing_store_report_errors_as_json_with_json(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.db"
    assert main(["--store", f"sqlite:///{path}", "--json", *command]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    report = json.loads(out)
    assert report["type"] == "StoreConfigurationError" and report["kind"] == "failed"
    assert report["error"].startswith(f"no actorflow store at {path}: ")
    assert set(report) == {"error", "type", "kind"}
    assert tree(tmp_path) == []


def test_runs_list_in_an_empty_directory_names_the_default_store_and_creates_nothing(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in script_env().items() if k != "ACTORFLOW_STORE"}
    done = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "runs", "list"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        "actorflow: StoreConfigurationError: no actorflow store at .actorflow/actorflow.db "
        f"(in {tmp_path}): the file does not exist"
    )
    assert tree(tmp_path) == []


def test_a_read_only_command_reads_an_existing_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = store(tmp_path)
    assert main(["--store", url, "demo"]) == 0
    run_id = capsys.readouterr().out.split()[1]
    assert main(["--store", url, "runs", "list"]) == 0
    assert run_id in capsys.readouterr().out


def test_other_errors_are_json_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = made(store(tmp_path))
    assert main(["--store", url, "--json", "runs", "show", "wrun_missing"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == {
        "error": "run 'wrun_missing' not found",
        "type": "RunNotFoundError",
        "kind": "not_found",
    }
    assert err == ""


def test_a_worker_of_a_module_without_workflows_is_an_error_and_hosts_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / "plain.py").write_text("from runtime import step\n\nVALUE = 1\n")
    done = run_cli("--store", store(tmp_path), "worker", "plain", cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(
        "actorflow: NothingToHostError: module 'plain' defines no @workflow function to host "
        f"(it is {tmp_path / 'plain.py'}): "
    )
    assert not (tmp_path / "cli.db").exists()


def test_a_worker_of_a_missing_module_says_where_it_looked(tmp_path: Path) -> None:
    done = run_cli("--store", store(tmp_path), "worker", "orders", cwd=tmp_path, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        f"actorflow: ModuleNotFoundError: no module named 'orders' in the current directory "
        f"({tmp_path}) or on the Python path: start the worker in the directory that holds "
        "it, or add that directory to PYTHONPATH\n"
    )
    assert not (tmp_path / "cli.db").exists()


@pytest.mark.parametrize("option", [["--concurrency", "0"], ["--grace", "-1"], ["--grace", "x"]])
def test_worker_options_are_checked(
    option: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--store", store(tmp_path), "worker", "orders", *option]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"actorflow: UsageError: argument {option[0]}: expected ")
    assert "usage: actorflow worker " in err


def test_a_worker_module_without_workflows_is_a_usage_error_in_json_too(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text("VALUE = 1\n")
    done = run_cli("--json", "--store", store(tmp_path), "worker", "plain", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr == ""
    report = json.loads(done.stdout)
    assert report["type"] == "NothingToHostError" and report["kind"] == "usage"
    assert report["error"].startswith("module 'plain' defines no @workflow function to host")


def test_global_options_work_after_the_command_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = store(tmp_path)
    assert main(["demo", "--store", url]) == 0
    run_id = capsys.readouterr().out.split()[1]
    for argv in (
        ["runs", "list", "--store", url, "--json"],
        ["runs", "--json", "list", "--store", url],
        ["--json", "runs", "list", "--store", url],
        ["--store", url, "runs", "list", "--json"],
    ):
        assert main(argv) == 0, argv
        assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == [run_id]
    assert main(["runs", "show", run_id, "--json", "--store", url]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "completed"


def test_worker_takes_the_store_after_its_module(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(
        "from runtime import workflow\n\n\n@workflow(name='flows:f')\nasync def f() -> None: ...\n"
    )
    url = store(tmp_path)
    process = start_cli("worker", "flows", "--store", url, cwd=tmp_path)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.endswith(f" on {url}: hosting flows:f\n"), first
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0
    assert (tmp_path / "cli.db").exists()


def test_a_command_group_alone_prints_its_help_and_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["runs"]) == 2
    out = capsys.readouterr().out
    assert out.startswith("usage: actorflow runs ")
    assert "list" in out and "show" in out and "rerun" in out
    assert main(["runs", "--json"]) == 2
    assert json.loads(capsys.readouterr().out) == {
        "error": "actorflow runs needs a command; see actorflow runs --help",
        "type": "UsageError",
        "kind": "usage",
    }


def test_a_bad_status_is_refused_naming_the_valid_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = made(store(tmp_path))
    assert main(["--store", url, "runs", "list", "--status", "bogus"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[0] == (
        "actorflow: UsageError: argument --status: invalid choice: 'bogus' (choose from "
        "'pending', 'running', 'completed', 'failed', 'cancelled')"
    )
    assert err.splitlines()[1].startswith("usage: actorflow runs list ")
    assert main(["runs", "list", "--status", "bogus", "--json"]) == 2
    out, err = capsys.readouterr()
    assert err == ""
    report = json.loads(out)
    assert report["kind"] == "usage" and report["type"] == "UsageError"
    assert "invalid choice: 'bogus'" in report["error"]


@pytest.mark.parametrize(
    "argv",
    [
        ["nonsense"],
        ["runs", "show"],  # no run id
        ["runs", "list", "--limit", "0"],
        ["runs", "list", "--unknown"],
        ["runs", "rerun", "wrun_x"],  # no --from
    ],
    ids=" ".join,
)
def test_usage_errors_exit_2_in_text_and_json(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("actorflow: UsageError: ")
    assert main([*argv, "--json"]) == 2
    out, err = capsys.readouterr()
    assert err == "" and json.loads(out)["kind"] == "usage"


def test_exit_statuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = store(tmp_path)
    assert main(["--store", url, "demo"]) == 0  # ok
    assert main(["--store", url, "runs", "show", "wrun_missing"]) == 1  # not found
    assert main(["--store", f"sqlite:///{tmp_path / 'none.db'}", "runs", "list"]) == 1  # failed
    assert main(["--store", url, "runs", "list", "--status", "x"]) == 2  # usage
    capsys.readouterr()


def demo_run(url: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Run the demo on ``url``; its run id."""
    assert main(["--store", url, "demo"]) == 0
    return capsys.readouterr().out.split()[1]


def test_runs_list_prints_a_header_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = store(tmp_path)
    run_id = demo_run(url, capsys)
    assert main(["runs", "list", "--store", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["RUN", "ID", "STATUS", "WORKFLOW", "CREATED", "NOTE"]
    assert lines[1].split()[:3] == [run_id, "completed", "demo.order_flow"]


def test_runs_show_has_the_result_the_attempts_and_a_timeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    url = store(tmp_path)
    run_id = demo_run(url, capsys)
    assert main(["runs", "show", run_id, "--store", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[6] == (
        'result:    {"order": "o-1001", "reserved": ["book:reserved", "lamp:reserved", '
        '"mug:reserved"], "receipt": "receipt-o-1001-4200"}'
    )
    assert lines[7] == "steps:     5 steps, 6 attempts (1 failed)"
    axis = lines[9]
    assert axis.strip().startswith("0 ") and axis.endswith(" ms")
    rows = lines[10:16]
    assert [row.split()[0] for row in rows] == [
        "demo.fetch_order",
        "demo.reserve",
        "demo.reserve",
        "demo.reserve",
        "sleep",
        "demo.charge",
    ]
    assert all(len(row.split("|")[1]) == len(rows[0].split("|")[1]) for row in rows)
    sleep, charge = rows[4].split("|"), rows[5].split("|")
    assert set(sleep[1].strip()) == {"-"} and sleep[2].strip().endswith(" ms")
    assert charge[1].strip()[0] == "x" and charge[1].strip()[-1] == "#"
    assert charge[2].strip().startswith("2 attempts, ")
    assert charge[1].index("x") > sleep[1].rindex("-") - 1  # after the sleep, to scale
    assert lines[17:19] == ["failed attempts:", lines[18]]
    assert lines[18].startswith(
        "  demo.charge attempt 1: ConnectionError: payment gateway timed out (retried after "
    )

    assert main(["runs", "show", run_id, "--store", url, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["generation"] == 0 and shown["result"]["receipt"] == "receipt-o-1001-4200"
    kinds = [lane["kind"] for lane in shown["timeline"]]
    assert kinds == ["step", "step", "step", "step", "sleep", "step"]
    charge_lane = shown["timeline"][-1]
    assert [a["outcome"] for a in charge_lane["attempts"]] == ["retried", "completed"]
    assert charge_lane["attempts"][0]["error"] == "ConnectionError: payment gateway timed out"


def test_runs_events_json_shows_recorded_values_decoded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = store(tmp_path)
    run_id = demo_run(url, capsys)
    assert main(["runs", "events", run_id, "--store", url, "--json"]) == 0
    events = json.loads(capsys.readouterr().out)
    created, completed = events[0]["data"], events[-1]["data"]
    assert created["input"] == [["o-1001"], {}]  # [args, kwargs]
    assert isinstance(created["seed"], str)  # not a value: base64, as before
    assert completed["output"]["receipt"] == "receipt-o-1001-4200"
    results = [e["data"]["result"] for e in events if e["event_type"] == "step_completed"]
    assert sorted(r for r in results if isinstance(r, str)) == [
        "book:reserved",
        "lamp:reserved",
        "mug:reserved",
        "receipt-o-1001-4200",
    ]
    steps = [e["data"]["input"] for e in events if e["event_type"] == "step_created"]
    assert steps[0] == [["o-1001"], {}]


def test_a_recorded_value_that_is_not_msgpack_is_left_as_bytes() -> None:
    assert decoded(b"\xc1", "a value") == b"\xc1"  # 0xc1 is never used in msgpack
    assert decoded(b"\x92\x01\xa1x", "a value") == [1, "x"]
