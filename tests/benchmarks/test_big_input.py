"""The runtime suite's ``seq_gap_big_input``: sequential steps of a run with a 1 MiB input.

Its row is built from synthetic samples here (no runtime); one ``--quick`` run on the memory
store checks the command measures it. No timing is checked, only what was measured.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.config import MIB, make_plan
from benchmarks.peers import turns as peer_turns
from benchmarks.peers.venv import PeerEnv
from benchmarks.report import row_table
from benchmarks.runtime_bench import (
    BIG_INPUT_BYTES,
    RuntimeRaw,
    Scenarios,
    big_input,
    big_input_row,
    summarize,
)
from benchmarks.selection import select
from benchmarks.workflows import WORKFLOWS, sequential_big
from tests.scripts import run_cli

QUICK = make_plan(quick=True, repeat=None)
FULL = make_plan(quick=False, repeat=None)


@pytest.fixture(autouse=True)
def no_bench_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PostgreSQL server: the run below must not find one."""
    monkeypatch.delenv("ACTORFLOW_BENCH_POSTGRES_URL", raising=False)


# -- selection -------------------------------------------------------------------------------


def test_the_scenario_is_selectable_by_name_and_brings_its_seq_gap() -> None:
    chosen = select(["seq_gap_big_input"])
    assert chosen.suites == ("runtime",)
    assert chosen.runtime_only == frozenset({"seq_gap_big_input"})
    alone = Scenarios.of(FULL, only=chosen.runtime_only)
    # seq_gap at the same length is measured too: it is what the row is compared with
    assert alone.big_input_length == 1000 and alone.seq_lengths == (1000,)
    assert alone.ttfs_samples == 0 and alone.gather_sizes == () and alone.one_step_runs == 0
    assert Scenarios.of(QUICK, only={"seq_gap_big_input"}).seq_lengths == (100,)


def test_the_default_runtime_suite_runs_it_at_its_longest_length() -> None:
    for plan in (QUICK, FULL):
        whole = Scenarios.of(plan)
        assert whole.big_input_length == plan.long_seq and whole.seq_lengths == plan.seq_lengths
        assert all(p.big_input_length == plan.long_seq for p in whole.rounds(3))
    assert Scenarios.of(FULL, only={"seq_gap"}).big_input_length == 0


def test_the_peers_suite_does_not_run_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.peers import suite as peers

    given: list[Scenarios] = []

    async def ours(*args: object) -> RuntimeRaw:
        part = args[-1]
        assert isinstance(part, Scenarios)
        given.append(part)
        return RuntimeRaw(ttfs=[0.001] * part.ttfs_samples)

    async def dbos(*args: object) -> tuple[RuntimeRaw, dict[str, Any]]:
        return await ours(*args), {}

    monkeypatch.setattr(peer_turns, "ensure_peer", lambda: PeerEnv("dbos", "3.4.0", tmp_path))
    monkeypatch.setattr(peers, "run_dbos", dbos)
    monkeypatch.setattr(peers, "measure_actorflow", ours)
    out = asyncio.run(peers.run_peers_suite(QUICK, ["sqlite"], None))
    assert out.errors == [] and given
    assert all(p.big_input_length == 0 and p.seq_lengths == QUICK.seq_lengths for p in given)


def test_the_workflow_takes_a_mebibyte_it_ignores() -> None:
    assert sequential_big in WORKFLOWS
    blob = big_input()
    assert len(blob) == BIG_INPUT_BYTES == MIB and blob == big_input()  # the same every run
    assert len(set(blob)) > 200  # random bytes, not a run of zeros a store would compress


# -- the row, from synthetic samples ---------------------------------------------------------


def test_the_row_is_the_gap_and_its_ratio_to_seq_gap() -> None:
    base = [[0.001] * 9, [0.001] * 9]
    row = big_input_row("runtime", "actorflow", "sqlite", 10, [[0.00105] * 9] * 2, base)
    assert (row.scenario, row.size, row.unit, row.samples) == ("seq_gap_big_input", 10, "ms", 18)
    assert row.median == pytest.approx(1.05) and row.ratio == pytest.approx(1.05)
    assert row.extra["seq_gap_median_ms"] == pytest.approx(1.0)
    assert row.extra["input_bytes"] == MIB
    assert row.extra["detail"] == "1 MiB input; 1.05x seq_gap at n=10 (1 ms)"
    assert row.target is not None and row.target.text == "≤ 1.1x seq_gap"
    assert row.target.field == "ratio" and row.met is True


def test_the_target_is_missed_only_beyond_ten_percent_slower() -> None:
    base = [[0.001] * 9]
    slow = big_input_row("runtime", "actorflow", "postgres", 10, [[0.0029] * 9], base)
    assert slow.ratio == pytest.approx(2.9) and slow.met is False
    edge = big_input_row("runtime", "actorflow", "postgres", 10, [[0.00111] * 9], base)
    assert edge.met is False
    fast = big_input_row("runtime", "actorflow", "postgres", 10, [[0.0008] * 9], base)
    assert fast.ratio == pytest.approx(0.8) and fast.met is True


def test_without_a_seq_gap_to_compare_with_the_row_has_no_ratio_nor_target() -> None:
    for base in (None, [], [[]]):
        row = big_input_row("runtime", "actorflow", "memory", 10, [[0.001] * 9], base)
        assert row.ratio is None and row.target is None and row.met is None
        assert row.extra["detail"] == "1 MiB input; no seq_gap at n=10 to compare with"


def test_another_engine_gets_the_ratio_without_a_target() -> None:
    row = big_input_row("peers", "dbos", "sqlite", 10, [[0.002] * 9], [[0.001] * 9], False)
    assert row.ratio == pytest.approx(2.0) and row.target is None


def test_summarize_puts_the_row_after_seq_gap_and_the_report_shows_it() -> None:
    raw = RuntimeRaw(
        seq_gaps={10: [[0.001] * 9]},
        seq_tail={10: [0.0001]},
        seq_wall={10: [0.01]},
        big_input={10: [[0.00108] * 9]},
    )
    rows = summarize("sqlite", raw)
    assert [r.scenario for r in rows] == ["seq_gap", "seq_gap_big_input"]
    assert rows[1].ratio == pytest.approx(1.08) and rows[1].met is True
    shown = row_table(rows).rows[1]
    assert shown[:3] == ["sqlite", "seq_gap_big_input", "10"]
    assert shown[-3:] == [
        "≤ 1.1x seq_gap",
        "yes",
        "1 MiB input; 1.08x seq_gap at n=10 (1 ms)",
    ]


def test_the_raw_samples_round_trip_and_merge() -> None:
    raw = RuntimeRaw(big_input={100: [[0.001, 0.002]]})
    again = RuntimeRaw.from_json(json.loads(json.dumps(raw.to_json())))
    assert again.big_input == {100: [[0.001, 0.002]]}
    again.extend(RuntimeRaw(big_input={100: [[0.003]], 10: [[0.004]]}))
    assert again.big_input == {100: [[0.001, 0.002], [0.003]], 10: [[0.004]]}
    assert RuntimeRaw.from_json({}).big_input == {}  # older results and the peer's have none


# -- a real run --------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_quick_run_on_memory_measures_it(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    args = ("bench", "seq_gap_big_input", "--quick", "--store", "memory", "--json", str(out))
    done = run_cli(*args, cwd=tmp_path, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    suite = json.loads(out.read_text())["suites"]["runtime"]
    assert suite["errors"] == []
    rows = {(r["scenario"], r["size"]): r for r in suite["rows"]}
    n = QUICK.long_seq
    base, big = rows[("seq_gap", n)], rows[("seq_gap_big_input", n)]
    assert big["samples"] == QUICK.seq_repeat * (n - 1) == base["samples"]
    assert big["median"] > 0 and big["p95"] > 0
    assert big["ratio"] == pytest.approx(big["median"] / base["median"])
    assert big["target"]["text"] == "≤ 1.1x seq_gap"
    assert big["extra"]["detail"].startswith(f"1 MiB input; {big['ratio']:.2f}x seq_gap at n={n}")
    assert "seq_gap_big_input" in done.stdout
    assert not {s for s, _ in rows} & {"ttfs", "gather", "one_step_runs"}
