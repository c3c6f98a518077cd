"""Tests of the benchmark harness: its pure statistics, and smoke runs of its suites.

No timing thresholds: the smoke tests check that every scenario was measured and produced
positive numbers, never how fast anything was.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import stats
from benchmarks.config import make_plan, parse_stores
from benchmarks.machine import cpu_model, postgres_version
from benchmarks.model import Row, Target
from benchmarks.peers.suite import compare
from benchmarks.report import markdown, meta
from benchmarks.runtime_bench import drift_windows
from benchmarks.store_bench import StepTraffic
from benchmarks.stream_workflows import pattern, pipeline_output, xor_table
from persistence import open_store
from tests.conftest import postgres_base_url

ROOT = Path(__file__).resolve().parents[2]
STORES = ("memory", "sqlite")


# -- stats -------------------------------------------------------------------------------------


def test_median_of_odd_and_even_counts() -> None:
    assert stats.median([3.0, 1.0, 2.0]) == 2.0
    assert stats.median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert stats.median([7.0]) == 7.0


def test_p95_interpolates_between_ranks() -> None:
    assert stats.p95([float(x) for x in range(1, 101)]) == pytest.approx(95.05)
    assert stats.p95([1.0, 2.0]) == pytest.approx(1.95)
    assert stats.p95([5.0]) == 5.0
    assert stats.p95([10.0] * 19 + [1000.0]) == pytest.approx(59.5)


def test_percentile_ends_are_min_and_max() -> None:
    xs = [5.0, 3.0, 9.0, 1.0]
    assert stats.percentile(xs, 0) == 1.0
    assert stats.percentile(xs, 100) == 9.0
    assert stats.percentile(xs, 50) == stats.median(xs)


def test_stats_refuse_bad_input() -> None:
    with pytest.raises(ValueError):
        stats.median([])
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)
    with pytest.raises(ValueError):
        stats.median([1.0, math.nan])


def test_slope_of_a_line_and_of_noise() -> None:
    xs = [float(x) for x in range(10)]
    assert stats.slope(xs, [2 * x + 1 for x in xs]) == pytest.approx(2.0)
    assert stats.slope(xs, [5.0] * 10) == 0.0
    assert stats.slope([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 1.0, 3.0]) == pytest.approx(0.4)
    assert stats.slope(xs, [-0.5 * x for x in xs]) == pytest.approx(-0.5)


def test_slope_refuses_what_has_no_slope() -> None:
    with pytest.raises(ValueError):
        stats.slope([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        stats.slope([1.0], [1.0])
    with pytest.raises(ValueError):
        stats.slope([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])


def test_diffs_and_pointwise_median() -> None:
    assert stats.diffs([1.0, 1.5, 3.0]) == [0.5, 1.5]
    assert stats.diffs([1.0]) == []
    assert stats.pointwise_median([[1.0, 9.0], [3.0, 7.0], [2.0, 8.0]]) == [2.0, 8.0]
    with pytest.raises(ValueError):
        stats.pointwise_median([[1.0], [1.0, 2.0]])


def test_drift_windows_pick_steps_near_10_and_near_the_end() -> None:
    gaps = [float(j) for j in range(1, 1000)]  # gaps[j-1] is the gap before step j
    early, late = drift_windows(gaps)
    assert early == [float(j) for j in range(5, 16)]
    assert late == [float(j) for j in range(990, 1000)]


def test_targets() -> None:
    assert Target("<=", 1.5, "ratio", "").met(1.5)
    assert not Target(">=", 2000, "rate", "").met(1999)
    within = Target("within", 0.1, "median", "")
    assert within.met(1.09) and within.met(0.95) and not within.met(1.2)


def test_parse_stores() -> None:
    assert parse_stores("memory, pg,sqlite,memory") == ("memory", "postgres", "sqlite")
    with pytest.raises(ValueError):
        parse_stores("mysql")


def test_compare_pairs_rows_and_divides_ours_by_peer() -> None:
    def row(engine: str, scenario: str, size: int | None, unit: str, value: float) -> Row:
        return Row("peers", "sqlite", scenario, size, unit, value, value * 2, 5, engine=engine)

    ours = [
        row("actorflow", "ttfs", None, "ms", 1.0),
        row("actorflow", "one_step_runs", 10, "runs/s", 300.0),
    ]
    peer = [row("dbos", "ttfs", None, "ms", 4.0), row("dbos", "one_step_runs", 10, "runs/s", 100.0)]
    pairs = {c.scenario: c for c in compare(ours, peer)}
    assert pairs["ttfs"].ratio == 0.25 and pairs["ttfs"].better == "lower"
    assert pairs["one_step_runs"].ratio == 3.0 and pairs["one_step_runs"].better == "higher"
    assert compare(ours, []) == []


def test_stream_pattern_and_pipeline_output() -> None:
    data = pattern(1000)
    assert len(data) == 1000 and data[:3] == b"\x00\x01\x02" and data[256] == 0
    assert data.translate(xor_table(7)).translate(xor_table(7)) == data
    # XOR with 1, 2, 3, 4, 5 in turn is XOR with 1
    assert pipeline_output(600, 5) == pattern(600).translate(xor_table(1))
    assert pipeline_output(600, 0) == pattern(600)


# -- the store traffic is accepted as written ------------------------------------------------


def test_step_traffic_is_accepted_by_a_store() -> None:
    async def scenario() -> int:
        store = await open_store("memory://")
        traffic = StepTraffic(lanes=3, steps_per_run=2)
        for chunk in traffic.setup_batches(traffic.runs_needed(40)):
            traffic.settle(chunk, (await store.create_batch(chunk)).outcomes)
        written = 0
        for size in (1, 7, 20, 12):
            requests = traffic.batch(size)
            traffic.settle(requests, (await store.create_batch(requests)).outcomes)
            written += len(requests)
        await store.close()
        return written

    assert asyncio.run(scenario()) == 40


# -- smoke runs --------------------------------------------------------------------------------


def _run_suite(suite: str, out: Path, timeout: float = 110) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "ACTORFLOW_BENCH_POSTGRES_URL"}
    command = [sys.executable, "-m", "benchmarks", suite, "--quick"]
    command += ["--stores", ",".join(STORES), "--json", str(out)]
    done = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("# actorflow benchmarks")
    data: dict[str, Any] = json.loads(out.read_text())
    assert data["meta"]["quick"] is True
    suite_data: dict[str, Any] = data["suites"][suite]
    assert suite_data["errors"] == []
    return suite_data


def _positive(row: dict[str, Any], *fields: str) -> None:
    for name in fields:
        value = row[name]
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (name, row)


@pytest.mark.slow
def test_runtime_suite_smoke(tmp_path: Path) -> None:
    plan = make_plan(quick=True, repeat=None)
    rows = _run_suite("runtime", tmp_path / "runtime.json")["rows"]
    found = {(r["store"], r["scenario"], r["size"]): r for r in rows}
    for store in STORES:
        expected: list[tuple[str, int | None]] = [("ttfs", None)]
        expected += [("seq_gap", n) for n in plan.seq_lengths]
        expected += [("seq_gap_big_input", plan.long_seq)]
        expected += [("seq_slope", plan.long_seq), ("seq_drift", plan.long_seq)]
        expected += [("gather", n) for n in plan.gather_sizes]
        expected += [("one_step_runs", plan.one_step_runs)]
        for scenario, size in expected:
            row = found.get((store, scenario, size))
            assert row is not None, f"missing {store} {scenario} n={size}"
            assert row["samples"] > 0
            if scenario == "seq_slope":  # a slope may be negative or zero
                assert math.isfinite(row["median"])
            elif scenario == "seq_drift":
                _positive(row, "median")
            else:
                _positive(row, "median", "p95")
        assert found[(store, "one_step_runs", plan.one_step_runs)]["rate"] > 0
    # SQLite also has its raw floor, and the time to first step and the gaps as multiples of it
    floor = found[("sqlite", "raw_floor", 1)]
    _positive(floor, "median", "p95")
    for scenario, size in [("ttfs", None), *(("seq_gap", n) for n in plan.seq_lengths if n > 1)]:
        row = found[("sqlite", scenario, size)]
        assert row["ratio"] == pytest.approx(row["median"] / floor["median"])
    assert ("memory", "raw_floor", 1) not in found
    per_store = 1 + len(plan.seq_lengths) + 1 + 2 + len(plan.gather_sizes) + 1
    assert len(rows) == len(STORES) * per_store + 1


@pytest.mark.slow
def test_store_suite_smoke(tmp_path: Path) -> None:
    plan = make_plan(quick=True, repeat=None)
    rows = _run_suite("store", tmp_path / "store.json")["rows"]
    found = {(r["store"], r["scenario"], r["size"]): r for r in rows}
    for store in STORES:
        for size in plan.batch_sizes:
            row = found.get((store, "create_batch", size))
            assert row is not None, f"missing {store} create_batch n={size}"
            assert row["samples"] == plan.batch_calls
            _positive(row, "median", "p95", "rate")
    for size in plan.batch_sizes:
        sqlite_row = found[("sqlite", "create_batch", size)]
        _positive(sqlite_row, "ratio")
        assert sqlite_row["extra"]["floor_median_ms"] > 0
    _positive(found[("sqlite", "raw_floor", 1)], "median", "p95")
    assert found[("memory", "create_batch", 1)]["ratio"] is None


def _rows_by_key(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["store"], r["scenario"]): r for r in rows}


@pytest.mark.slow
def test_streams_suite_smoke(tmp_path: Path) -> None:
    plan = make_plan(quick=True, repeat=None)
    rows = _run_suite("streams", tmp_path / "streams.json", timeout=60)["rows"]
    found = _rows_by_key(rows)
    sizes = {
        "ttfb": None,
        "throughput": plan.stream_bytes,
        "parallel": plan.parallel_streams,
        "pipeline": plan.pipeline_stages,
    }
    for store in STORES:
        for scenario, size in sizes.items():
            row = found.get((store, scenario))
            assert row is not None, f"missing {store} {scenario}"
            assert row["size"] == size and row["samples"] > 0
            _positive(row, "median", "p95")
        _positive(found[(store, "throughput")], "rate")
        _positive(found[(store, "pipeline")], "rate")
        assert found[(store, "throughput")]["unit"] == "MiB/s"
    assert found[("sqlite", "ttfb")]["target"] is not None
    for store in STORES:
        latency = found[(store, "stream_latency")]
        assert latency["unit"] == "ms" and latency["samples"] == plan.stream_ttfb_samples
        assert latency["median"] < found[(store, "ttfb")]["median"]
    assert len(rows) == len(STORES) * (len(sizes) + 1)


@pytest.mark.slow
def test_hooks_suite_smoke(tmp_path: Path) -> None:
    plan = make_plan(quick=True, repeat=None)
    suite = _run_suite("hooks", tmp_path / "hooks.json", timeout=60)
    found = _rows_by_key(suite["rows"])
    for store in STORES:
        for scenario in ("resume", "resume_workflow"):
            row = found.get((store, scenario))
            assert row is not None, f"missing {store} {scenario}"
            assert row["samples"] == plan.hook_samples
            _positive(row, "median", "p95")
        assert found[(store, "resume")]["target"]["value"] == 2.0
    assert len(suite["rows"]) == 2 * len(STORES)
    assert any("across processes" in s for s in suite["skipped"])


@pytest.mark.slow
def test_otel_suite_smoke(tmp_path: Path) -> None:
    plan = make_plan(quick=True, repeat=None)
    found = _rows_by_key(_run_suite("otel", tmp_path / "otel.json", timeout=60)["rows"])
    for store in STORES:
        for config in ("baseline", "no_provider", "sdk"):
            row = found.get((store, f"seq_gap_{config}"))
            assert row is not None, f"missing {store} seq_gap_{config}"
            assert row["size"] == plan.otel_steps
            assert row["samples"] == plan.otel_rounds * plan.otel_repeat * (plan.otel_steps - 1)
            _positive(row, "median", "p95")
        assert "spans exported" in found[(store, "seq_gap_sdk")]["extra"]["detail"]
        for scenario in ("cost_no_provider", "cost_sdk"):
            row = found[(store, scenario)]  # a difference: may be negative
            assert row["unit"] == "µs/step" and math.isfinite(row["median"])
            _positive(row, "ratio")


@pytest.mark.slow
def test_sleepers_suite_smoke(tmp_path: Path) -> None:
    plan = make_plan(quick=True, repeat=None)
    suite = _run_suite("sleepers", tmp_path / "sleepers.json")
    rows = suite["rows"]
    assert suite["comparisons"] == [] and suite["peer"] == {}  # DBOS only with --peers dbos
    found = {r["scenario"]: r for r in rows}
    assert set(found) == {
        "sleepers_start",
        "sleepers_rss",
        "sleepers_recovery",
        "sleeper_live_bytes",
        "sleeper_passive_bytes",
    }
    assert all(r["store"] == "sqlite" for r in rows)
    assert found["sleepers_start"]["size"] == plan.sleepers
    assert found["sleeper_live_bytes"]["size"] == plan.sleepers_traced
    _positive(found["sleepers_start"], "median", "rate")
    _positive(found["sleepers_recovery"], "median")
    # a sleeping run holds something while it is live, and less once it has passivated
    live, passive = found["sleeper_live_bytes"]["median"], found["sleeper_passive_bytes"]["median"]
    assert 0 < passive < live


@pytest.mark.slow
def test_orders_suite_smoke(tmp_path: Path) -> None:
    plan = make_plan(quick=True, repeat=None)
    rows = _run_suite("orders", tmp_path / "orders.json")["rows"]
    found = {(r["store"], r["scenario"]): r for r in rows}
    assert set(found) == {(s, k) for s in STORES for k in ("order_cpu", "order_rate")}
    for row in rows:
        assert row["size"] == plan.orders
        _positive(row, "median", "p95")


# -- where peers are installed -----------------------------------------------------------------


def test_peer_venvs_live_in_the_clone_or_the_user_cache(tmp_path: Path) -> None:
    from benchmarks.peers.venv import PEERS_ENV, peers_dir

    clone, installed = tmp_path / "clone", tmp_path / "site-packages"
    (clone / "benchmarks").mkdir(parents=True)
    (clone / "pyproject.toml").write_text("")
    (installed / "benchmarks").mkdir(parents=True)
    assert peers_dir(clone / "benchmarks", {}) == clone / "benchmarks" / ".peers"
    cache = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert peers_dir(installed / "benchmarks", cache) == tmp_path / "cache" / "actorflow" / "peers"
    assert peers_dir(installed / "benchmarks", {}) == Path.home() / ".cache/actorflow/peers"
    chosen = {PEERS_ENV: str(tmp_path / "mine"), **cache}
    assert peers_dir(clone / "benchmarks", chosen) == tmp_path / "mine"


# -- the machine -------------------------------------------------------------------------------


def test_cpu_model_reads_cpuinfo() -> None:
    x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) 2.2GHz\n"
    assert cpu_model(x86) == "Intel(R) Xeon(R) 2.2GHz"
    assert cpu_model("processor\t: 0\nModel\t\t: Raspberry Pi 4 Model B\n") == (
        "Raspberry Pi 4 Model B"
    )
    assert cpu_model("processor\t: 0\n")  # no model line: what the platform says, never empty


def test_the_report_states_the_machine() -> None:
    import sqlite3

    info = meta(["--quick"], True, "postgresql://x/y", "16.4", program="actorflow bench")
    assert info["command"] == "actorflow bench --quick"
    assert info["cpus"] == os.cpu_count() and info["cpu_model"] == cpu_model()
    assert info["python"] == sys.version.split()[0]
    assert info["sqlite"] == sqlite3.sqlite_version
    assert info["postgres_server"] == "16.4"
    head = markdown([], info).splitlines()[2]
    for text in (f"{os.cpu_count()} CPUs ({cpu_model()})", f"SQLite {sqlite3.sqlite_version}"):
        assert text in head
    assert "PostgreSQL 16.4" in head and "quick mode" in head
    assert "PostgreSQL" not in markdown([], meta([], False, None)).splitlines()[2]


@pytest.mark.postgres
def test_postgres_version_asks_the_server() -> None:
    version = asyncio.run(postgres_version(postgres_base_url()))
    assert version is not None and version.split(".")[0].isdigit()
    assert asyncio.run(postgres_version("postgresql://nobody@127.0.0.1:1/none")) is None


def test_series_of_every_unit_reach_the_json_report() -> None:
    from benchmarks.command import merge
    from benchmarks.model import Series, SuiteResult
    from benchmarks.report import to_json

    a = SuiteResult(
        "runtime", series=[Series("stso", "memory", "actorflow", "ms", [0.2, 0.3], [1, 2])]
    )
    b = SuiteResult("runtime", series=[Series("stso", "sqlite", "actorflow", "ms", [1.0], [1])])
    data = to_json([merge("runtime", [a, b])], {})
    assert data["suites"]["runtime"]["series"] == [
        {
            "kind": "stso",
            "store": "memory",
            "engine": "actorflow",
            "unit": "ms",
            "y": [0.2, 0.3],
            "x": [1, 2],
        },
        {
            "kind": "stso",
            "store": "sqlite",
            "engine": "actorflow",
            "unit": "ms",
            "y": [1.0],
            "x": [1],
        },
    ]


def test_spread_is_the_interquartile_range_over_the_median() -> None:
    assert stats.spread([1.0, 2.0, 3.0]) is None  # too few repetitions to say
    assert stats.spread([0.0, 0.0, 0.0, 0.0]) is None
    assert stats.spread([9.0, 10.0, 10.0, 11.0]) == pytest.approx(0.05)  # IQR 0.5 over 10


def test_rows_report_their_spread_as_plus_minus_half_the_iqr() -> None:
    from benchmarks.report import row_table
    from benchmarks.rows import ms_row

    row = ms_row("runtime", "memory", "ttfs", 1, [0.009, 0.010, 0.010, 0.011])
    assert row.spread == pytest.approx(0.05)
    table = row_table([row])
    assert table.rows[0][table.header.index("spread")] == "±2.5 %"
    few = ms_row("runtime", "memory", "ttfs", 1, [0.01])
    assert row_table([few]).rows[0][table.header.index("spread")] == "—"
    assert "interquartile" in markdown(
        [],
        {
            "command": "x",
            "date": "d",
            "quick": False,
            "cpus": 2,
            "cpu_model": "c",
            "python": "3",
            "sqlite": "3",
            "platform": "p",
        },
    )
