"""p99: computed from raw samples where there are enough, carried by rows and comparisons,
shown in the Markdown and HTML tables, kept by the JSON (and absent from older files)."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import pytest

from benchmarks import stats
from benchmarks.command import BenchOptions, bench
from benchmarks.focused_raw import runs_row
from benchmarks.html_report import page
from benchmarks.model import Comparison, Row, SuiteResult
from benchmarks.peers.suite import compare
from benchmarks.reference_cases import Case, RefSamples
from benchmarks.reference_cases import compare as compare_reference
from benchmarks.reference_cases import summarize as summarize_reference
from benchmarks.report import from_json, markdown, peer_table, row_table, store_table, to_json
from benchmarks.rows import ms_row, rate_row
from benchmarks.runtime_bench import RuntimeRaw, summarize
from benchmarks.store_bench import BatchSamples, floor_row
from benchmarks.store_bench import summarize as summarize_batch

from .synthetic_results import info

HUNDRED = [float(i) / 1000 for i in range(1, 101)]  # 1 … 100 ms
"""Exactly P99_MIN_SAMPLES samples: their p99 is 99.01 ms."""


def test_p99_needs_a_hundred_samples() -> None:
    assert stats.P99_MIN_SAMPLES == 100
    assert stats.p99([1.0] * 99) is None
    assert stats.p99([]) is None
    assert stats.p99(HUNDRED) == pytest.approx(0.09901)
    assert stats.p99([float(i) for i in range(101)]) == pytest.approx(99.0)
    assert stats.p99([5.0] * 99 + [1000.0]) == pytest.approx(5.0 + 995.0 * 0.01)
    assert stats.p99([math.inf] * 100) is None


def test_p99_refuses_nan_like_the_other_percentiles() -> None:
    with pytest.raises(ValueError, match="NaN"):
        stats.p99([1.0] * 99 + [math.nan])


def test_scaled_keeps_none() -> None:
    assert stats.scaled(None, 1000) is None
    assert stats.scaled(0.002, 1000) == pytest.approx(2.0)


def test_the_shared_row_builders_give_a_p99_from_a_hundred_samples() -> None:
    assert ms_row("hooks", "memory", "resume", None, HUNDRED[:99]).p99 is None
    assert ms_row("hooks", "memory", "resume", None, HUNDRED).p99 == pytest.approx(99.01)
    assert rate_row("streams", "memory", "t", 1, 1, HUNDRED[:99]).p99 is None
    rate = rate_row("streams", "memory", "throughput", 1, 1024 * 1024, HUNDRED)
    assert rate.p99 == pytest.approx(1 / 0.09901)  # MiB/s of the p99 (slow) repetition
    assert rate.p99 < rate.p95 < rate.median


def test_the_runtime_suite_gives_p99s_where_its_samples_allow() -> None:
    raw = RuntimeRaw(
        ttfs=HUNDRED[:50],
        seq_gaps={100: [HUNDRED[:99], HUNDRED[:99]]},
        seq_tail={100: [0.001, 0.001]},
        seq_wall={100: [1.0, 1.0]},
        gather={10: HUNDRED[:10]},
        one_step={1000: [0.5] * 99 + [1.0]},
        floor=HUNDRED,
    )
    rows = {r.scenario: r for r in summarize("sqlite", raw) if r.scenario != "seq_gap"}
    gaps = next(r for r in summarize("sqlite", raw) if r.scenario == "seq_gap")
    assert rows["ttfs"].p99 is None and rows["gather"].p99 is None
    assert gaps.samples == 198 and gaps.p99 is not None
    assert rows["raw_floor"].p99 == pytest.approx(99.01)
    assert rows["one_step_runs"].p99 == pytest.approx(1000 / 0.505)  # runs/s of the p99 wall
    assert rows["seq_slope"].p99 is None and rows["seq_drift"].p99 is None


def test_the_store_suite_gives_p99s() -> None:
    assert floor_row("sqlite", HUNDRED).p99 == pytest.approx(99.01)
    batch = summarize_batch("sqlite", BatchSamples(10, HUNDRED, [], 5.05))
    assert batch.p99 == pytest.approx(99.01)
    assert summarize_batch("sqlite", BatchSamples(10, HUNDRED[:20], [], 1.0)).p99 is None


def test_the_focused_and_reference_suites_give_p99s() -> None:
    assert runs_row("sqlite", "actorflow", 10, [0.01] * 99 + [0.02]).p99 == pytest.approx(
        10 / (0.01 + 0.01 * 0.01)
    )
    case = Case.of("no_steps", None)
    raw = RefSamples()
    for value in HUNDRED:
        raw.add(case, "wall", value)
    (row,) = summarize_reference("sqlite", raw, [case])
    assert row.p99 == pytest.approx(99.01)


def _row(engine: str, samples: list[float]) -> Row:
    row = ms_row("focused", "sqlite", "wo_total", 10, samples)
    row.engine = engine
    return row


def test_comparisons_carry_the_p99_of_both_sides_only_where_both_have_one() -> None:
    ours, theirs = _row("actorflow", HUNDRED), _row("dbos", [x * 2 for x in HUNDRED])
    (both,) = compare([ours], [theirs], ("wo_total",))
    assert both.ours_p99 == pytest.approx(99.01) and both.peer_p99 == pytest.approx(198.02)
    (one,) = compare([ours], [_row("dbos", HUNDRED[:10])], ("wo_total",))
    assert one.ours_p99 is None and one.peer_p99 is None
    mine = Row("reference", "sqlite", "ref_x", None, "ms", 1.0, 2.0, 100, p99=3.0)
    other = Row("reference", "sqlite", "ref_x", None, "ms", 2.0, 3.0, 100, p99=4.0)
    (pair,) = compare_reference([mine], [other])
    assert (pair.ours_p99, pair.peer_p99) == (3.0, 4.0)


def test_the_tables_have_a_p99_column_with_a_dash_where_not_measured() -> None:
    rows = [_row("actorflow", HUNDRED), _row("actorflow", HUNDRED[:10])]
    table = row_table(rows)
    column = table.header.index("p99")
    assert table.header[column - 1] == "p95" and table.align[column] == "r"
    assert [r[column] for r in table.rows] == ["99.01", "—"]
    comparison = Comparison("x", 1, "sqlite", "ms", 1.0, 2.0, 3.0, 4.0, "lower", 5.0, 6.0)
    without = Comparison("y", 1, "sqlite", "ms", 1.0, 2.0, 3.0, 4.0, "lower")
    peers = peer_table([comparison, without], "DBOS")
    first, second = (dict(zip(peers.header, r, strict=True)) for r in peers.rows)
    assert (first["actorflow p99"], first["DBOS p99"]) == ("5.000", "6.000")
    assert (second["actorflow p99"], second["DBOS p99"]) == ("—", "—")
    store = store_table(SuiteResult("store", rows=[floor_row("sqlite", HUNDRED)]))
    assert dict(zip(store.header, store.rows[0], strict=True))["p99 ms"] == "99.01"
    text = markdown([SuiteResult("hooks", rows=rows)], info())
    assert "| median | p95 | p99 | spread |" in text and "| 99.01 |" in text
    assert "p99 where a row has at least 100 samples" in text
    html = page([SuiteResult("hooks", rows=rows)], info())
    assert "<th>p99</th>" in html and '<td class="r">99.01</td>' in html


def _results() -> list[SuiteResult]:
    ours, theirs = _row("actorflow", HUNDRED), _row("dbos", [x * 2 for x in HUNDRED])
    suite = SuiteResult("focused", rows=[ours, theirs], peer={"name": "DBOS"})
    suite.comparisons = compare([ours], [theirs], ("wo_total",))
    return [suite]


def test_the_json_keeps_the_p99s() -> None:
    data = json.loads(json.dumps(to_json(_results(), info())))
    assert data["suites"]["focused"]["rows"][0]["p99"] == pytest.approx(99.01)
    assert data["suites"]["focused"]["comparisons"][0]["peer_p99"] == pytest.approx(198.02)
    again, meta = from_json(data)
    assert again[0].rows == _results()[0].rows
    assert again[0].comparisons == _results()[0].comparisons
    assert to_json(again, meta) == data


def _without_p99(data: dict[str, Any]) -> dict[str, Any]:
    for body in data["suites"].values():
        for item in [*body["rows"], *body["comparisons"]]:
            for name in ("p99", "ours_p99", "peer_p99"):
                item.pop(name, None)
    return data


def test_results_written_before_p99_still_load(tmp_path: Path) -> None:
    old = _without_p99(json.loads(json.dumps(to_json(_results(), info()))))
    assert "p99" not in json.dumps(old)
    suites, _ = from_json(old)
    assert [r.p99 for r in suites[0].rows] == [None, None]
    assert suites[0].comparisons[0].ours_p99 is None
    path = tmp_path / "results.json"
    path.write_text(json.dumps(old))
    out = tmp_path / "again"
    assert asyncio.run(bench(BenchOptions(from_path=path, report_dir=out))) == 0
    report = (out / "report.md").read_text()
    assert "| actorflow p99 | DBOS p99 |" in report
    rows = json.loads((out / "results.json").read_text())["suites"]["focused"]["rows"]
    assert [row["p99"] for row in rows] == [None, None]
