"""The streams suite's write→read latency row and its time-to-first-byte series, and the plot
that draws that series beside the reference suite's of the same store and engine."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from benchmarks import stats
from benchmarks.config import make_plan
from benchmarks.model import STREAMS_TTFB, Series, SuiteResult
from benchmarks.plots import draw, figures, label
from benchmarks.stream_bench import StreamRaw, latency_row, run_streams_suite, ttfb_series

QUICK = make_plan(True, None)


@pytest.fixture(autouse=True)
def no_bench_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PostgreSQL server: the runs below must not find one."""
    monkeypatch.delenv("ACTORFLOW_BENCH_POSTGRES_URL", raising=False)


def test_latency_is_the_reader_getting_the_chunk_minus_the_step_writing_it() -> None:
    raw = StreamRaw(ttfb=[0.004, 0.006, 0.010], ttfb_written=[0.003, 0.004, 0.005])
    row = latency_row("sqlite", raw)
    assert (row.suite, row.scenario, row.unit, row.samples) == (
        "streams",
        "stream_latency",
        "ms",
        3,
    )
    assert row.median == pytest.approx(2.0) and row.p95 == pytest.approx(4.7)
    assert row.target is None and "writes a chunk → the reader has it" in str(row.extra["detail"])


def test_latency_refuses_readings_without_their_writes() -> None:
    with pytest.raises(ValueError, match="2 first-chunk readings but 1 first writes"):
        latency_row("sqlite", StreamRaw(ttfb=[0.004, 0.006], ttfb_written=[0.003]))


def test_the_ttfb_samples_become_a_series_in_ms() -> None:
    series = ttfb_series("postgres", StreamRaw(ttfb=[0.004, 0.006], ttfb_written=[0.1, 0.1]))
    assert series == Series(STREAMS_TTFB, "postgres", "actorflow", "ms", [4.0, 6.0])
    assert ttfb_series("postgres", StreamRaw()) is None


def test_a_quick_streams_run_has_the_latency_row_and_the_series() -> None:
    result = asyncio.run(run_streams_suite(QUICK, ("memory",), None, {"ttfb"}))
    assert result.errors == []
    rows = {r.scenario: r for r in result.rows}
    assert list(rows) == ["ttfb", "stream_latency"]
    assert rows["stream_latency"].samples == QUICK.stream_ttfb_samples
    assert 0 < rows["stream_latency"].median < rows["ttfb"].median
    (series,) = result.series
    assert (series.kind, series.store, series.engine) == (STREAMS_TTFB, "memory", "actorflow")
    assert len(series.y) == QUICK.stream_ttfb_samples
    assert stats.median(series.y) == pytest.approx(rows["ttfb"].median)


def test_a_scenario_without_ttfb_has_no_latency_row_nor_series() -> None:
    result = asyncio.run(run_streams_suite(QUICK, ("memory",), None, {"throughput"}))
    assert [r.scenario for r in result.rows] == ["throughput"] and result.series == []


def test_both_suites_ttfb_series_share_one_figure_told_apart(tmp_path: Path) -> None:
    reference = Series("stream_ttfb", "sqlite", "actorflow", "ms", [4.0, 5.0, 6.0])
    streams = Series(STREAMS_TTFB, "sqlite", "actorflow", "ms", [2.0, 2.5, 3.0])
    suites = [
        SuiteResult("streams", series=[streams]),
        SuiteResult("reference", series=[reference]),
    ]
    (figure,) = figures(suites)
    assert figure.kind == "stream_ttfb" and list(figure.series) == [streams, reference]
    assert label(streams) == "actorflow, sqlite, streams suite"
    assert label(reference) == "actorflow, sqlite, reference suite"
    assert "actorflow, sqlite, streams suite; actorflow, sqlite, reference suite" in figure.alt
    (drawn,) = draw([figure], tmp_path)
    assert (tmp_path / drawn.file).stat().st_size > 0


def test_the_streams_series_alone_makes_the_ttfb_figure() -> None:
    streams = Series(STREAMS_TTFB, "memory", "actorflow", "ms", [0.2, 0.3])
    assert [f.kind for f in figures([SuiteResult("streams", series=[streams])])] == ["stream_ttfb"]
