"""DBOS beside the streams suite: the script's usage, its recorded JSON, the rounds, the report.

Nothing here runs DBOS: the script is run by this interpreter (which has no DBOS) to check it
exits cleanly, its result is a recorded JSON document, and the suite's DBOS step is a fake.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest

from benchmarks import stream_bench
from benchmarks.config import make_plan
from benchmarks.peers import turns
from benchmarks.peers.streams_peer import SCRIPT, DbosStreams, command_line, parse_result
from benchmarks.peers.venv import PeerEnv, PeerUnavailable
from benchmarks.report import markdown
from benchmarks.selection import select
from benchmarks.stream_bench import StreamRaw, StreamSizes, rounds_of, run_streams_suite, summarize

from .synthetic_results import info

ENV = PeerEnv("dbos", "3.4.0", Path("/nowhere/dbos"))
PLAN = dataclasses.replace(
    make_plan(True, None),
    stream_bytes=4096,
    stream_chunk=1024,
    stream_ttfb_samples=3,
    stream_repeat=3,
    parallel_streams=2,
    pipeline_stages=2,
)
SIZES = StreamSizes.of(PLAN)
RECORDED: dict[str, Any] = {  # what dbos_streams.py wrote on SQLite (ms shortened)
    "engine": "dbos",
    "version": "3.4.0",
    "mode": "steps writing with DBOS.write_stream_async",
    "raw": {
        "ttfb": [0.1219, 0.0586, 0.0416],
        "ttfb_returned": [0.0242, 0.0146, 0.0196],
        "ttfb_written": [0.0358, 0.0265, 0.024],
        "throughput": [0.2823, 0.0961],
    },
    "not_run": {"parallel": "RuntimeError: 1 of 2 writers ran"},
}


def script(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The DBOS script run by this interpreter, which has no DBOS."""
    sizes = ["--total", "4096", "--chunk", "1024", "--ttfb-samples", "3", "--repeat", "2"]
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "o.json"), *sizes, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_dbos_script_exits_cleanly_without_dbos(tmp_path: Path) -> None:
    done = script(tmp_path, "--store", "sqlite", "--dir", str(tmp_path), "--streams", "2")
    assert done.returncode == 2 and "--stages" in done.stderr  # required
    done = script(
        tmp_path, "--store", "sqlite", "--dir", str(tmp_path), "--streams", "2", "--stages", "2"
    )
    assert done.returncode == 2
    assert "dbos_streams: DBOS is not installed for" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "o.json").exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--store", "postgres", "--streams", "2", "--stages", "2"], "needs --dsn"),
        (["--store", "sqlite", "--dir", ".", "--streams", "2", "--stages", "0"], "--stages"),
        (["--store", "sqlite", "--dir", ".", "--streams", "0", "--stages", "2"], "at least 1"),
        (
            [
                *("--store", "sqlite", "--dir", ".", "--streams", "2", "--stages", "2"),
                "--scenarios",
                "ttfb,fanout",
            ],
            "unknown or no scenario(s) ['fanout']",
        ),
    ],
)
def test_the_dbos_script_says_what_it_needs(tmp_path: Path, args: list[str], said: str) -> None:
    done = script(tmp_path, *args)
    assert done.returncode == 2 and said in done.stderr


def test_the_script_command_line_on_each_store(tmp_path: Path) -> None:
    line = command_line(ENV, "sqlite", None, {"ttfb", "pipeline"}, SIZES, tmp_path, "p")
    assert line[:4] == [str(ENV.python), str(SCRIPT), "--store", "sqlite"]
    assert line[4:6] == ["--scenarios", "pipeline,ttfb"]
    assert line[line.index("--total") + 1] == "4096" and line[line.index("--stages") + 1] == "2"
    assert line[-2:] == ["--dir", str(tmp_path)]
    url = "postgresql://postgres@127.0.0.1:1/db"
    line = command_line(ENV, "postgres", url, {"ttfb"}, SIZES, tmp_path, "bench_doss_1")
    assert line[-4:] == ["--dsn", url, "--schema-prefix", "bench_doss_1"]
    with pytest.raises(PeerUnavailable, match="no PostgreSQL URL"):
        command_line(ENV, "postgres", None, {"ttfb"}, SIZES, tmp_path, "p")


def test_recorded_samples_are_summarized_by_the_suites_code_without_our_targets() -> None:
    result = parse_result(RECORDED, StreamRaw.fields())
    assert result.not_run == {"parallel": "RuntimeError: 1 of 2 writers ran"}
    rows = summarize("sqlite", StreamRaw(**result.raw), SIZES, engine="dbos")
    by = {r.scenario: r for r in rows}
    assert sorted(by) == ["stream_latency", "throughput", "ttfb"]
    assert all(r.engine == "dbos" and r.target is None for r in rows)
    assert by["ttfb"].median == pytest.approx(58.6)
    assert by["stream_latency"].median == pytest.approx(1000 * (0.0586 - 0.0265))
    ours = summarize("sqlite", StreamRaw(**result.raw), SIZES)
    assert next(r for r in ours if r.scenario == "ttfb").target is not None


def test_a_result_with_samples_we_do_not_know_is_refused() -> None:
    with pytest.raises(PeerUnavailable, match=r"unknown samples \['fanout'\]"):
        parse_result({"raw": {"fanout": [1.0]}}, StreamRaw.fields())


def test_rounds_share_the_samples_and_join_back() -> None:
    parts = rounds_of(dataclasses.replace(SIZES, ttfb_samples=7, repeat=4), 3)
    assert [(p.ttfb_samples, p.repeat) for p in parts] == [(3, 2), (2, 1), (2, 1)]
    assert rounds_of(dataclasses.replace(SIZES, repeat=1), 3) == [
        dataclasses.replace(SIZES, repeat=1)
    ]
    joined = StreamRaw.joined([StreamRaw(ttfb=[1.0]), StreamRaw(ttfb=[2.0], pipeline=[3.0])])
    assert joined.ttfb == [1.0, 2.0] and joined.pipeline == [3.0]
    dropped = joined.without({"ttfb"})
    assert dropped.ttfb == [] and dropped.pipeline == [3.0]


def fake_dbos(
    monkeypatch: pytest.MonkeyPatch,
    not_run: dict[str, str] | None = None,
    fail_in_round: int | None = None,
) -> list[tuple[str, frozenset[str], int]]:
    """DBOS made up: 50 ms to the first byte, 100 ms a throughput run."""
    monkeypatch.setattr(turns, "ensure_peer", lambda: ENV)
    calls: list[tuple[str, frozenset[str], int]] = []

    async def run(
        env: PeerEnv,
        kind: str,
        postgres: str | None,
        scenarios: Collection[str],
        sizes: StreamSizes,
        fields: Collection[str],
    ) -> DbosStreams:
        calls.append((kind, frozenset(scenarios), sizes.repeat))
        if fail_in_round == len(calls):
            raise PeerUnavailable("the DBOS script exited with code 1 (its output is above)")
        n = sizes.ttfb_samples
        raw = {"ttfb": [0.05] * n, "ttfb_returned": [0.01] * n, "ttfb_written": [0.02] * n}
        raw["throughput"] = [0.1] * sizes.repeat
        return DbosStreams(raw, dict(not_run or {}))

    monkeypatch.setattr(stream_bench, "run_dbos_streams", run)
    return calls


def test_dbos_takes_turns_and_each_figure_is_ours_theirs_and_the_ratio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = fake_dbos(monkeypatch)
    out = asyncio.run(run_streams_suite(PLAN, ["sqlite"], None, {"ttfb", "throughput"}, "dbos"))
    assert out.errors == [] and out.skipped == []
    assert calls == [("sqlite", frozenset({"ttfb", "throughput"}), 1)] * 3
    by = {c.scenario: c for c in out.comparisons}
    assert sorted(by) == ["stream_latency", "throughput", "ttfb"]
    assert by["ttfb"].peer_median == pytest.approx(50.0) and by["ttfb"].better == "lower"
    assert by["throughput"].peer_median == pytest.approx(4096 / 2**20 / 0.1)
    assert by["throughput"].better == "higher"
    assert {(s.engine, len(s.y)) for s in out.series} == {("actorflow", 3), ("dbos", 3)}
    assert any("DBOS.read_stream_async" in n for n in out.notes)


def test_a_dbos_scenario_that_failed_is_not_run_with_why(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_dbos(monkeypatch, not_run={"throughput": "RuntimeError: wrong bytes"})
    out = asyncio.run(run_streams_suite(PLAN, ["sqlite"], None, {"ttfb", "throughput"}, "dbos"))
    assert out.skipped == ["sqlite: DBOS throughput not run: RuntimeError: wrong bytes"]
    assert calls[1][1] == frozenset({"ttfb"})  # not asked again
    assert {c.scenario for c in out.comparisons} == {"ttfb", "stream_latency"}
    assert not any(r.engine == "dbos" and r.scenario == "throughput" for r in out.rows)


def test_dbos_failing_mid_run_is_not_run_with_why_and_ours_stay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = fake_dbos(monkeypatch, fail_in_round=2)
    out = asyncio.run(run_streams_suite(PLAN, ["sqlite"], None, {"ttfb"}, "dbos"))
    assert len(calls) == 2
    assert out.skipped == [
        "sqlite: DBOS not run: the DBOS script exited with code 1 (its output is above)"
    ]
    assert {r.engine for r in out.rows} == {"actorflow"} and out.comparisons == []
    assert all(r.samples == 3 for r in out.rows)


def test_dbos_has_no_memory_store(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_dbos(monkeypatch)
    out = asyncio.run(run_streams_suite(PLAN, ["memory"], None, {"ttfb"}, "dbos"))
    assert calls == [] and out.skipped == ["memory: DBOS has no memory store; actorflow only"]


def test_the_streams_suite_measures_dbos_itself() -> None:
    assert select(["streams"], "dbos").suites == ("streams",)
    assert select(["ttfb"], "dbos").suites == ("streams",)


def test_the_report_puts_the_comparison_first(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dbos(monkeypatch)
    out = asyncio.run(run_streams_suite(PLAN, ["sqlite"], None, {"ttfb"}, "dbos"))
    text = markdown([out], info())
    assert text.index("actorflow/DBOS") < text.index("| engine |")
