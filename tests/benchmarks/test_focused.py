"""The focused suite: its numbers from stamps, its summary, a quick run, recovery, DBOS's script.

No timing thresholds: the runs check what was measured, never how fast anything was.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.config import Plan, make_plan
from benchmarks.focused_bench import SCRIPT, measure_kind
from benchmarks.focused_crash import main as crash_main
from benchmarks.focused_raw import FocusedRaw, fanout_series, summarize
from benchmarks.focused_recovery import crash_run, measure_recovery
from benchmarks.focused_stats import first_last, workflow_overhead
from benchmarks.model import SuiteResult
from benchmarks.peers import turns as peer_turns
from benchmarks.peers.venv import PeerEnv
from benchmarks.runtime_bench import RuntimeRaw, Scenarios, stso_series
from benchmarks.selection import select
from benchmarks.stores import fresh_store_url
from tests.scripts import run_cli

# -- the numbers, from stamps ------------------------------------------------------------------


def test_workflow_overhead_is_the_wall_time_outside_the_bodies() -> None:
    # a run from 10.0 to 10.5 whose two bodies took 0.1 and 0.05 s: 0.35 s outside them
    assert workflow_overhead(10.0, 10.5, [10.1, 10.3], [10.2, 10.35]) == pytest.approx(0.35)
    assert workflow_overhead(0.0, 1.0, [0.0], [1.0]) == pytest.approx(0.0)


def test_workflow_overhead_refuses_stamps_that_cannot_be() -> None:
    with pytest.raises(ValueError, match="2 step entries but 1 exits"):
        workflow_overhead(0.0, 1.0, [0.1, 0.2], [0.15])
    with pytest.raises(ValueError, match="without steps"):
        workflow_overhead(0.0, 1.0, [], [])
    with pytest.raises(ValueError, match=r"ends .* before it starts"):
        workflow_overhead(1.0, 0.5, [0.6], [0.7])
    with pytest.raises(ValueError, match=r"step 1 ran from 0.5 to 0.4"):
        workflow_overhead(0.0, 1.0, [0.1, 0.5], [0.2, 0.4])
    with pytest.raises(ValueError, match=r"step 0 ran from 0.1 to 1.5"):
        workflow_overhead(0.0, 1.0, [0.1], [1.5])


def test_first_and_last_branch_from_their_end_stamps() -> None:
    assert first_last(5.0, [5.3, 5.1, 5.7]) == pytest.approx((0.1, 0.7))
    assert first_last(0.0, [0.25]) == (0.25, 0.25)
    with pytest.raises(ValueError, match="without branches"):
        first_last(0.0, [])
    with pytest.raises(ValueError, match=r"ended .* before the run started"):
        first_last(1.0, [0.9, 1.2])


# -- the summary -------------------------------------------------------------------------------


def _raw(samples: int = 4) -> FocusedRaw:
    return FocusedRaw(
        wo={10: [0.01 * (i + 1) for i in range(samples)]},
        fanout_first={10: [0.001] * samples, 100: [0.002] * samples},
        fanout_last={10: [0.003] * samples, 100: [0.006] * samples},
        runs={1: [0.01] * samples, 100: [0.5] * samples},
        recovery_steps=100,
        recovery_entry=[0.02] * samples,
        recovery_result=[0.03] * samples,
    )


def test_rows_of_every_focused_scenario() -> None:
    rows = {(r.scenario, r.size): r for r in summarize("sqlite", _raw(), engine="dbos")}
    assert set(rows) == {
        ("wo_per_step", 10),
        ("wo_total", 10),
        ("fanout_first", 10),
        ("fanout_last", 10),
        ("fanout_first", 100),
        ("fanout_last", 100),
        ("concurrent_runs", 1),
        ("concurrent_runs", 100),
        ("recovery_next_step", 100),
        ("recovery_result", 100),
    }
    assert all(r.engine == "dbos" and r.suite == "focused" for r in rows.values())
    assert rows[("wo_total", 10)].median == pytest.approx(25.0)  # ms, median of 10..40
    assert rows[("wo_per_step", 10)].median == pytest.approx(2.5)
    assert rows[("wo_per_step", 10)].unit == "ms/step"
    assert rows[("fanout_last", 100)].median == pytest.approx(6.0)
    runs = rows[("concurrent_runs", 100)]
    assert runs.unit == "runs/s" and runs.median == pytest.approx(200.0) == runs.rate
    assert runs.extra["detail"] == "wall 500 ms"
    assert rows[("recovery_result", 100)].median == pytest.approx(30.0)
    assert rows[("wo_total", 10)].p99 is None and runs.p99 is None


def test_a_p99_from_a_hundred_samples() -> None:
    rows = {(r.scenario, r.size): r for r in summarize("memory", _raw(samples=100))}
    wo = rows[("wo_total", 10)]
    assert wo.p99 == pytest.approx(990.1) and "p99" not in wo.extra
    assert rows[("concurrent_runs", 100)].p99 == pytest.approx(200.0)  # 100 runs / 0.5 s


def test_raw_samples_survive_json_and_pool_over_rounds() -> None:
    raw = _raw()
    again = FocusedRaw.from_json(json.loads(json.dumps(raw.to_json())))
    assert again == raw
    pooled = FocusedRaw()
    pooled.extend(raw)
    pooled.extend(again)
    assert pooled.wo[10] == raw.wo[10] * 2 and len(pooled.recovery_entry) == 8
    assert pooled.recovery_steps == 100


def test_fanout_series_are_medians_by_width() -> None:
    first, last = fanout_series("sqlite", _raw())
    assert (first.kind, last.kind) == ("fanout_first", "fanout_last")
    assert first.x == [10.0, 100.0] and first.y == pytest.approx([1.0, 2.0])
    assert last.y == pytest.approx([3.0, 6.0]) and last.unit == "ms"
    assert fanout_series("sqlite", FocusedRaw()) == []


def test_stso_is_the_median_gap_by_step_index_of_the_longest_run() -> None:
    raw = RuntimeRaw(seq_gaps={1: [[]], 4: [[0.001, 0.002, 0.003], [0.003, 0.002, 0.001]]})
    curve = stso_series("postgres", raw, engine="dbos")
    assert curve is not None
    assert (curve.kind, curve.store, curve.engine, curve.unit) == ("stso", "postgres", "dbos", "ms")
    assert curve.x == [1.0, 2.0, 3.0] and curve.y == pytest.approx([2.0, 2.0, 2.0])
    assert stso_series("memory", RuntimeRaw()) is None


def test_peers_with_focused_alone_measure_dbos_inside_it() -> None:
    alone = select(["focused"], peers="DBOS")
    assert alone.suites == ("focused",) and alone.peer == "dbos"
    assert "peers" in select([], peers="dbos").suites
    assert select(["focused", "runtime"], peers="dbos").suites == ("runtime", "peers", "focused")
    assert select(["focused"]).peer is None


# -- runs --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_quick_focused_run_on_memory_has_every_row_and_series(tmp_path: Path) -> None:
    plan = make_plan(quick=True, repeat=None)
    out = tmp_path / "r.json"
    done = run_cli("bench", "focused", "--quick", "--store", "memory", "--json", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    data: dict[str, Any] = json.loads(out.read_text())
    suite = data["suites"]["focused"]
    assert list(data["suites"]) == ["focused"] and suite["errors"] == []
    rows = {(r["scenario"], r["size"]): r for r in suite["rows"]}
    expected = [(s, n) for n in plan.focused_wo_steps for s in ("wo_per_step", "wo_total")]
    expected += [
        (s, w) for w in plan.focused_fanout_widths for s in ("fanout_first", "fanout_last")
    ]
    expected += [("concurrent_runs", c) for c in plan.focused_concurrency]
    assert sorted(rows) == sorted(expected)
    samples = plan.focused_rounds * plan.focused_repeat
    for row in rows.values():
        assert row["store"] == "memory" and row["engine"] == "actorflow"
        assert row["samples"] == samples
        for name in ("median", "p95"):
            assert math.isfinite(row[name]) and row[name] > 0, (name, row)
    assert [(s["kind"], s["x"]) for s in suite["series"]] == [
        ("fanout_first", [float(w) for w in plan.focused_fanout_widths]),
        ("fanout_last", [float(w) for w in plan.focused_fanout_widths]),
    ]
    assert suite["skipped"] == [
        "memory: recovery not run: a memory store lives in one process, so no new worker "
        "can open it"
    ]
    assert "## Focused" in done.stdout


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_run_killed_after_its_steps_is_recovered_on_sqlite() -> None:
    steps = make_plan(quick=True, repeat=None).focused_recovery_steps

    async def scenario() -> tuple[float, float]:
        async with fresh_store_url("sqlite", None) as url:
            return await measure_recovery(url, steps)

    entry, result = asyncio.run(scenario())
    assert 0 < entry <= result


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_dying_worker_that_fails_otherwise_is_an_error() -> None:
    async def scenario() -> None:
        await crash_run("nosuchstore://x", "k", "r", 3)

    with pytest.raises(RuntimeError, match="exited with 1, not SIGKILL"):
        asyncio.run(scenario())


def test_the_dying_worker_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert crash_main(["memory://", "k", "r", "zero"]) == 2
    assert crash_main(["memory://"]) == 2
    assert (
        "usage: python -m benchmarks.focused_crash URL KEY RUN_ID STEPS" in capsys.readouterr().err
    )


# -- DBOS's side -------------------------------------------------------------------------------


def test_the_dbos_script_fails_cleanly_without_dbos(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *(sys.executable, str(SCRIPT), "--store", "sqlite", "--scenarios", "{}"),
            *("--out", str(tmp_path / "out.json"), "--dir", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "dbos_focused: DBOS is not installed for" in done.stderr
    assert "peer venv's interpreter" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out.json").exists()


def test_the_dbos_script_says_what_a_round_needs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--store", "sqlite"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "--store, --scenarios and --out are required" in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_failing_peer_is_an_error_and_actorflow_is_still_reported(tmp_path: Path) -> None:
    venv = tmp_path / "dbos"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)  # an interpreter without DBOS
    plan = dataclasses.replace(
        make_plan(quick=True, repeat=None),
        focused_rounds=1,
        focused_repeat=1,
        focused_fanout_widths=(10,),
        focused_concurrency=(1,),
        focused_recovery_steps=5,
    )
    out = SuiteResult("focused")
    asyncio.run(measure_kind(out, "sqlite", None, plan, PeerEnv("dbos", "3.4.0", venv)))
    (error,) = out.errors
    assert error.startswith("sqlite: DBOS: the DBOS script exited with code 2")
    assert {r.engine for r in out.rows} == {"actorflow"}
    assert {r.scenario for r in out.rows} >= {"recovery_next_step", "recovery_result"}
    assert out.comparisons == []


def _runtime_raw(plan: Plan, gap: float) -> RuntimeRaw:
    scenarios = Scenarios.of(plan, plan.peer_gather_sizes)
    lengths = scenarios.seq_lengths
    return RuntimeRaw(
        ttfs=[gap] * 3,
        seq_gaps={n: [[gap] * (n - 1)] * plan.seq_repeat for n in lengths},
        seq_tail={n: [gap] * plan.seq_repeat for n in lengths},
        seq_wall={n: [gap * n] * plan.seq_repeat for n in lengths},
        gather={n: [gap] * 2 for n in scenarios.gather_sizes},
        one_step={scenarios.one_step_runs: [gap * 10] * 2},
    )


def test_the_peers_suite_carries_both_engines_stso(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks.peers import suite as peers

    plan = make_plan(quick=True, repeat=None)
    env = PeerEnv("dbos", "3.4.0", tmp_path)

    async def dbos_raw(*_: object) -> tuple[RuntimeRaw, dict[str, Any]]:
        return _runtime_raw(plan, 0.004), {}

    async def ours_raw(*_: object) -> RuntimeRaw:
        return _runtime_raw(plan, 0.001)

    monkeypatch.setattr(peer_turns, "ensure_peer", lambda: env)
    monkeypatch.setattr(peers, "run_dbos", dbos_raw)
    monkeypatch.setattr(peers, "measure_actorflow", ours_raw)
    out = asyncio.run(peers.run_peers_suite(plan, ["sqlite"], None))
    assert out.errors == []
    curves = {(s.kind, s.engine): s for s in out.series}
    assert set(curves) == {("stso", "actorflow"), ("stso", "dbos")}
    assert curves[("stso", "dbos")].y == pytest.approx([4.0] * (plan.long_seq - 1))
    assert curves[("stso", "actorflow")].x == [float(j) for j in range(1, plan.long_seq)]


def test_the_peers_suite_takes_turns_round_by_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks.peers import suite as peers

    plan = make_plan(quick=False, repeat=None)
    env = PeerEnv("dbos", "3.4.0", tmp_path)
    turns: list[tuple[str, int]] = []

    async def dbos_raw(*args: object) -> tuple[RuntimeRaw, dict[str, Any]]:
        part = args[-1]
        assert isinstance(part, Scenarios)
        turns.append(("dbos", part.seq_repeat))
        return RuntimeRaw(ttfs=[0.004] * part.ttfs_samples), {}

    async def ours_raw(*args: object) -> RuntimeRaw:
        part = args[-1]
        assert isinstance(part, Scenarios)
        turns.append(("actorflow", part.seq_repeat))
        return RuntimeRaw(ttfs=[0.001] * part.ttfs_samples)

    monkeypatch.setattr(peer_turns, "ensure_peer", lambda: env)
    monkeypatch.setattr(peers, "run_dbos", dbos_raw)
    monkeypatch.setattr(peers, "measure_actorflow", ours_raw)
    whole = Scenarios.of(plan, plan.peer_gather_sizes)
    ours, theirs = asyncio.run(peers.alternate(env, "sqlite", None, whole))
    assert [engine for engine, _ in turns] == ["actorflow", "dbos"] * peers.ROUNDS
    assert sum(n for engine, n in turns if engine == "dbos") == whole.seq_repeat
    assert len(ours.ttfs) == len(theirs.ttfs) == whole.ttfs_samples


def test_rounds_split_every_repetition_and_keep_the_totals() -> None:
    whole = Scenarios(10, (1, 10), 5, (10, 50), 10, 1000, 5)
    parts = whole.rounds(3)
    assert [p.seq_repeat for p in parts] == [2, 2, 1]
    assert [p.ttfs_samples for p in parts] == [4, 3, 3]
    assert sum(p.gather_repeat for p in parts) == 10
    assert all(p.seq_lengths == (1, 10) and p.one_step_runs == 1000 for p in parts)
    assert len(Scenarios(10, (1,), 1, (10,), 4, 100, 4).rounds(3)) == 1  # one repetition: one round
    merged = RuntimeRaw(ttfs=[1.0], gather={10: [0.1]})
    merged.extend(RuntimeRaw(ttfs=[2.0], gather={10: [0.2], 50: [0.5]}, seq_gaps={1: [[0.3]]}))
    assert merged.ttfs == [1.0, 2.0] and merged.gather == {10: [0.1, 0.2], 50: [0.5]}
    assert merged.seq_gaps == {1: [[0.3]]}
