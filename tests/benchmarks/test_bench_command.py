"""``actorflow bench``: the installed command runs the harness, with progress, and reports.

The runs here are ``--quick`` on the memory store (about a second), or select nothing that
runs at all (a PostgreSQL without a server); no timing is checked, only what was measured.
"""

from __future__ import annotations

import gc
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from benchmarks.command import BenchOptions, collector_thresholds, prepare
from benchmarks.estimates import FULL, QUICK, estimate
from benchmarks.progress import Progress, clock_text
from benchmarks.selection import (
    OWN_SUITES,
    SelectionError,
    parse_store_args,
    scenario_names,
    select,
)
from benchmarks.store_bench import SqliteFloor
from benchmarks.stores import (
    sqlite_mode,
    sqlite_options,
    sqlite_synchronous,
    sqlite_writer,
    use_sqlite_synchronous,
    use_sqlite_writer,
)
from runtime.cli_parser import BENCH_SCENARIOS, wants_json
from tests.scripts import run_cli

PG = "postgresql://postgres@127.0.0.1:55432/postgres"


@pytest.fixture(autouse=True)
def no_bench_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PostgreSQL server unless a test names one (the runs below must not find one)."""
    monkeypatch.delenv("ACTORFLOW_BENCH_POSTGRES_URL", raising=False)


def bench(*args: str, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd, timeout=timeout)


# -- the command, end to end ------------------------------------------------------------------


@pytest.mark.slow
def test_quick_bench_on_memory_reports_every_suite(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = bench("bench", "--quick", "--store", "memory", "--json", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("# actorflow benchmarks")
    data: dict[str, Any] = json.loads(out.read_text())
    info = data["meta"]
    assert info["command"] == f"actorflow bench --quick --store memory --json {out}"
    assert info["quick"] is True and info["cpus"] >= 1 and info["cpu_model"] and info["sqlite"]
    assert info["gc_threshold"] == [700, 10, 10]  # CPython's default, not shown in the line
    assert "gc thresholds" not in done.stdout
    assert set(data["suites"]) == set(OWN_SUITES)
    for name in ("store", "runtime", "streams", "hooks", "otel", "orders", "focused", "reference"):
        suite = data["suites"][name]
        assert suite["errors"] == []
        assert suite["rows"] and {r["store"] for r in suite["rows"]} == {"memory"}
    assert {r["scenario"] for r in data["suites"]["runtime"]["rows"]} >= {
        "ttfs",
        "seq_gap",
        "gather",
        "one_step_runs",
    }
    (stso,) = data["suites"]["runtime"]["series"]
    assert stso["kind"] == "stso" and stso["store"] == "memory" and len(stso["y"]) == 99
    focused = data["suites"]["focused"]
    assert {r["scenario"] for r in focused["rows"]} == {
        "wo_per_step",
        "wo_total",
        "fanout_first",
        "fanout_last",
        "concurrent_runs",
    }
    assert [s["kind"] for s in focused["series"]] == ["fanout_first", "fanout_last"]
    assert focused["skipped"][0].startswith("memory: recovery not run")
    reference = {r["scenario"] for r in data["suites"]["reference"]["rows"]}
    assert {"ref_no_steps", "ref_seq_noop", "ref_race_noop", "ref_fanout_streams"} <= reference
    assert not any(name.endswith("_asis") for name in reference)  # quick: no sleeping forms
    assert data["suites"]["sleepers"]["rows"] == []
    assert data["suites"]["sleepers"]["skipped"] == [
        "the sleepers suite runs on SQLite only (--store sqlite)"
    ]
    # progress on stderr: the expected duration first, then units done of the total
    err = done.stderr
    assert "expected to take about" in err.splitlines()[0]
    units = len(OWN_SUITES) - 1  # every suite on memory but sleepers (SQLite only)
    assert f"0/{units} done; now: store on memory" in err and f"{units}/{units} done in" in err


@pytest.mark.slow
def test_one_scenario_and_the_report_directory(tmp_path: Path) -> None:
    done = bench("bench", "ttfs", "--quick", "--store", "mem", "--report", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert list(data["suites"]) == ["runtime"]
    scenarios = {r["scenario"] for r in data["suites"]["runtime"]["rows"]}
    assert scenarios == {"ttfs"}
    assert (tmp_path / "out" / "report.md").read_text() == done.stdout
    assert "<table>" in (tmp_path / "out" / "index.html").read_text()


@pytest.mark.slow
def test_json_before_bench_prints_the_results_as_json(tmp_path: Path) -> None:
    done = bench("--json", "bench", "ttfs", "--quick", "--store", "memory", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(done.stdout)
    assert [r["scenario"] for r in data["suites"]["runtime"]["rows"]] == ["ttfs"]


def test_postgres_without_a_server_is_reported_as_not_run(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = bench("bench", "ttfs", "--store", "postgres", "--json", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    runtime = json.loads(out.read_text())["suites"]["runtime"]
    assert runtime["rows"] == [] and runtime["errors"] == []
    (why,) = runtime["skipped"]
    assert why.startswith("postgres: not run: no PostgreSQL server given")
    assert "--store postgresql://" in why and "does not start one" in why
    assert "Skipped: postgres: not run" in done.stdout
    assert "0 units" in done.stderr


# -- the error paths ----------------------------------------------------------------------------


def test_an_unknown_scenario_is_a_usage_error_listing_the_valid_ones(tmp_path: Path) -> None:
    done = bench("bench", "runtime", "nope", "--store", "memory", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert "actorflow: UsageError: unknown scenario 'nope': use store, runtime," in done.stderr
    assert "one_step_runs" in done.stderr and "usage: actorflow bench" in done.stderr


def test_an_unknown_store_is_a_usage_error_listing_the_valid_ones(tmp_path: Path) -> None:
    done = bench("bench", "--store", "oracle", cwd=tmp_path)
    assert done.returncode == 2
    assert (
        "unknown store 'oracle': use memory, sqlite, postgres or a postgresql:// URL" in done.stderr
    )


def test_usage_errors_are_json_with_the_global_json(tmp_path: Path) -> None:
    done = bench("--json", "bench", "nope", cwd=tmp_path)
    assert done.returncode == 2
    error = json.loads(done.stdout)
    assert error["kind"] == "usage" and error["error"].startswith("unknown scenario 'nope'")
    # after bench, --json names the results file: a usage error stays text
    done = bench("bench", "--peers", "temporal", "--json", "x.json", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert "unknown peer 'temporal': use dbos" in done.stderr
    assert not (tmp_path / "x.json").exists()
    done = bench("bench", "--json", cwd=tmp_path)
    assert done.returncode == 2 and "expected one argument" in done.stderr


# -- selection and stores, without running ------------------------------------------------------


def test_names_select_suites_and_runtime_scenarios() -> None:
    assert select([]).suites == OWN_SUITES and select([]).runtime_only is None
    assert select(["all"]).suites == OWN_SUITES
    assert select(["runtime", "store"]).suites == ("store", "runtime")
    only = select(["gather", "TTFS"])
    assert only.suites == ("runtime",) and only.runtime_only == {"gather", "ttfs"}
    assert select(["runtime", "ttfs"]).runtime_only is None  # the whole suite was asked for
    assert select(["runtime"], peers="dbos").suites == ("runtime", "peers")
    assert select([], peers="dbos").suites == ("store", "runtime", "peers", *OWN_SUITES[2:])
    assert select(["peers", "streams"]).suites == ("peers", "streams")
    assert select(["reference"]).suites == ("reference",)
    assert select(["reference"], peers="dbos").suites == ("reference",)  # DBOS runs inside it
    assert select(["reference"], peers="dbos").peer == "dbos"
    with pytest.raises(SelectionError, match="unknown peer"):
        select([], peers="nope")


def test_the_help_names_every_scenario() -> None:
    for name in scenario_names():
        assert name in BENCH_SCENARIOS


def test_stores_are_kinds_or_a_postgres_url() -> None:
    assert parse_store_args([]).kinds == ("memory", "sqlite", "postgres")
    choice = parse_store_args(["memory,sqlite"], postgres=PG)
    assert choice.kinds == ("memory", "sqlite") and choice.postgres == PG
    url = "postgresql://u@db:5432/bench"
    assert parse_store_args([url, "sqlite"]) == parse_store_args(["postgres", url, "sqlite"])
    assert parse_store_args([url]).kinds == ("postgres",)
    assert parse_store_args([url], postgres=PG).postgres == url  # the URL given wins
    assert parse_store_args(["memory://"]).kinds == ("memory",)
    assert parse_store_args(["postgres"]).postgres is None
    with pytest.raises(SelectionError, match="fresh temporary file"):
        parse_store_args(["sqlite:///tmp/x.db"])
    with pytest.raises(SelectionError, match="two PostgreSQL servers"):
        parse_store_args([url, PG])
    with pytest.raises(SelectionError, match="unknown store 'mysql://x'"):
        parse_store_args(["mysql://x"])
    with pytest.raises(SelectionError, match="no store given"):
        parse_store_args([","])


def test_the_plan_runs_each_suite_on_the_kinds_it_supports() -> None:
    planned = prepare(BenchOptions(scenarios=["all"], stores=["memory", "sqlite"], peers="dbos"))
    assert ("sleepers", "sqlite") in planned.units and ("sleepers", "memory") not in planned.units
    assert ("peers", "sqlite") in planned.units and ("peers", "memory") not in planned.units
    assert ("store", "memory") in planned.units
    memory_only = prepare(BenchOptions(scenarios=["sleepers", "peers"], stores=["memory"]))
    assert memory_only.units == []
    assert memory_only.not_run["sleepers"] and memory_only.not_run["peers"]
    with_server = prepare(BenchOptions(scenarios=["store"], stores=[PG]))
    assert with_server.units == [("store", "postgres")] and with_server.not_run == {"store": []}


def test_global_json_counts_only_before_bench() -> None:
    assert wants_json(["--json", "bench"])
    assert not wants_json(["bench", "--json", "out.json"])
    assert wants_json(["runs", "list", "--json"])


# -- progress and estimates ---------------------------------------------------------------------


def test_progress_counts_units_and_elapsed_time() -> None:
    said: list[str] = []
    now = iter([100.0, 165.0])
    progress = Progress(2, said.append, lambda: next(now))
    progress.begin("store on memory")
    progress.end()
    progress.begin("runtime on memory")
    progress.end()
    progress.finish()
    assert said == [
        "0/2 done; now: store on memory",
        "1/2 done; now: runtime on memory",
        "2/2 done in 1:05",
    ]
    assert clock_text(7.4) == "0:07" and clock_text(3723) == "1:02:03"


def test_every_suite_has_an_estimate_on_every_kind_it_runs_on() -> None:
    units = prepare(BenchOptions(stores=["memory", "sqlite", PG], peers="dbos")).units
    for table in (FULL, QUICK):
        for suite, kind in units:
            assert table[suite][kind] > 0, (suite, kind)
    assert estimate(units, quick=True) < estimate(units, quick=False)
    focused = [("focused", "sqlite")]
    assert estimate(focused, quick=True, peer=True) > estimate(focused, quick=True) > 0


# -- the SQLite synchronous level ---------------------------------------------------------------


@pytest.mark.slow
def test_sqlite_can_be_measured_with_synchronous_normal(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = bench(
        "bench", "ttfs", "--quick", "--store", "sqlite", "--sqlite-synchronous", "normal",
        "--json", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["meta"]["sqlite_synchronous"] == "normal"
    assert any("SQLite with synchronous=NORMAL" in n for n in data["suites"]["runtime"]["notes"])
    assert "(synchronous=NORMAL)" in done.stdout


def test_an_unknown_synchronous_level_is_a_usage_error(tmp_path: Path) -> None:
    done = bench("bench", "ttfs", "--sqlite-synchronous", "off", cwd=tmp_path)
    assert done.returncode == 2
    assert "invalid choice: 'off' (choose from 'full', 'normal')" in done.stderr


def test_stores_and_floor_use_the_chosen_synchronous_level(tmp_path: Path) -> None:
    try:
        use_sqlite_synchronous("normal")
        assert sqlite_options() == "synchronous=normal" and sqlite_mode() == "synchronous=NORMAL"
        floor = SqliteFloor(tmp_path / "floor.db")
        try:
            assert floor.level() == 1  # NORMAL
        finally:
            floor.close()
        with pytest.raises(ValueError, match="unknown SQLite synchronous level 'off'; use one"):
            use_sqlite_synchronous("off")
        assert sqlite_synchronous() == "normal"  # a refused level changes nothing
    finally:
        use_sqlite_synchronous("full")
    floor = SqliteFloor(tmp_path / "full.db")
    try:
        assert floor.level() == 2  # FULL
    finally:
        floor.close()


# -- the SQLite writer ----------------------------------------------------------------------------


@pytest.mark.slow
def test_sqlite_can_be_measured_with_the_loop_writer(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = bench(
        "bench", "ttfs", "--quick", "--store", "sqlite", "--sqlite-writer", "loop",
        "--json", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["meta"]["sqlite_writer"] == "loop"
    notes = data["suites"]["runtime"]["notes"]
    assert any("SQLite with synchronous=FULL, writer=loop" in n for n in notes)
    assert "(synchronous=FULL, writer=loop)" in done.stdout


def test_an_unknown_sqlite_writer_is_a_usage_error(tmp_path: Path) -> None:
    done = bench("bench", "ttfs", "--sqlite-writer", "process", cwd=tmp_path)
    assert done.returncode == 2
    assert "invalid choice: 'process' (choose from 'thread', 'loop')" in done.stderr


def test_stores_use_the_chosen_writer_and_a_refused_one_changes_nothing() -> None:
    try:
        use_sqlite_writer("loop")
        assert sqlite_options() == "synchronous=full&writer=loop"
        assert sqlite_mode() == "synchronous=FULL, writer=loop"
        with pytest.raises(ValueError, match="unknown SQLite writer 'process'; use one of"):
            use_sqlite_writer("process")
        assert sqlite_writer() == "loop"
    finally:
        use_sqlite_writer("thread")
    assert sqlite_options() == "synchronous=full" and sqlite_mode() == "synchronous=FULL"


# -- the cycle collector's thresholds ----------------------------------------------------------


@pytest.mark.slow
def test_the_collector_can_be_measured_with_other_thresholds(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = bench(
        "bench", "ttfs", "--quick", "--store", "memory", "--gc-threshold", "700,100",
        "--json", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(out.read_text())["meta"]["gc_threshold"] == [700, 100, 10]
    assert "(synchronous=FULL), gc thresholds 700,100,10, " in done.stdout


@pytest.mark.parametrize("value", ["0", "700,0", "1,2,3,4", "many", "700,", ""])
def test_a_bad_gc_threshold_is_a_usage_error(tmp_path: Path, value: str) -> None:
    done = bench("bench", "ttfs", "--gc-threshold", value, cwd=tmp_path)
    assert done.returncode == 2
    assert (
        "argument --gc-threshold: expected one to three whole numbers of 1 or more, separated "
        f"by commas, got {value!r}"
    ) in done.stderr


def test_gc_thresholds_are_not_measured_against_peers(tmp_path: Path) -> None:
    done = bench(
        "bench", "ttfs", "--store", "sqlite", "--gc-threshold", "700,100", "--peers", "dbos",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--gc-threshold measures actorflow alone: the peers run in processes" in done.stderr


def test_the_thresholds_are_restored_after_the_measurements() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), collector_thresholds((5000, 50)):
        assert gc.get_threshold() == (5000, 50, before[2])
        raise RuntimeError("a measurement failed")
    assert gc.get_threshold() == before
    with collector_thresholds(None):
        assert gc.get_threshold() == before
