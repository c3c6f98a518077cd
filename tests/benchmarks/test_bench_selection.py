"""Naming single scenarios of the streams and hooks suites, as of the runtime suite's.

The runs are ``--quick`` on the memory store (well under a second each); no timing is
checked, only which scenarios ran.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from benchmarks.config import make_plan
from benchmarks.hook_bench import run_hooks_suite
from benchmarks.selection import (
    OWN_SUITES,
    SUITE_SCENARIOS,
    SelectionError,
    scenario_names,
    select,
    suite_of,
)
from benchmarks.stream_bench import run_streams_suite
from runtime.cli_parser import BENCH_SCENARIOS
from tests.scripts import run_cli

QUICK = make_plan(True, None)


@pytest.fixture(autouse=True)
def no_bench_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PostgreSQL server: the runs below must not find one."""
    monkeypatch.delenv("ACTORFLOW_BENCH_POSTGRES_URL", raising=False)


def test_streams_and_hooks_scenarios_select_their_suite_with_only_those() -> None:
    streams = select(["ttfb", "Pipeline"])
    assert streams.suites == ("streams",) and streams.scenarios("streams") == frozenset(
        {"ttfb", "pipeline"}
    )
    assert streams.runtime_only is None
    hooks = select(["resume_xproc"])
    assert hooks.suites == ("hooks",) and hooks.scenarios("hooks") == frozenset({"resume_xproc"})
    mixed = select(["ttfs", "throughput", "resume", "store"])
    assert mixed.suites == ("store", "runtime", "streams", "hooks")
    assert mixed.runtime_only == frozenset({"ttfs"})
    assert mixed.scenarios("streams") == frozenset({"throughput"})
    assert mixed.scenarios("store") is None
    # a suite named whole runs whole, whichever of its scenarios are named too
    assert select(["streams", "ttfb"]).scenarios("streams") is None
    assert select(["all", "resume"]).suites == OWN_SUITES
    assert select(["all", "resume"]).scenarios("hooks") is None


def test_scenario_names_are_unique_and_named_in_the_help() -> None:
    names = [n for ns in SUITE_SCENARIOS.values() for n in ns]
    assert len(names) == len(set(names))
    assert not set(names) & {*OWN_SUITES, "peers", "all"}
    assert suite_of("parallel") == "streams" and suite_of("resume") == "hooks"
    assert suite_of("resume_workflow") is None
    for name in scenario_names():
        assert name in BENCH_SCENARIOS


def test_an_unknown_scenario_names_each_suites_scenarios() -> None:
    with pytest.raises(SelectionError) as caught:
        select(["resume_workflow"])
    message = str(caught.value)
    assert message.startswith("unknown scenario 'resume_workflow': use store, runtime,")
    runtime = "scenarios of runtime (ttfs, seq_gap, seq_gap_big_input, gather, one_step_runs)"
    assert runtime in message
    assert "streams (ttfb, throughput, parallel, pipeline)" in message
    assert "hooks (resume, resume_xproc)" in message


def test_the_suites_refuse_an_unknown_scenario() -> None:
    with pytest.raises(ValueError, match=r"unknown streams scenario\(s\) \['ttfs'\]: use ttfb"):
        asyncio.run(run_streams_suite(QUICK, ("memory",), None, {"ttfs"}))
    with pytest.raises(ValueError, match=r"unknown hooks scenario\(s\) \['x'\]: use resume,"):
        asyncio.run(run_hooks_suite(QUICK, ("memory",), None, {"x"}))


def test_the_streams_suite_runs_only_the_scenarios_named() -> None:
    result = asyncio.run(run_streams_suite(QUICK, ("memory",), None, {"ttfb", "parallel"}))
    assert result.errors == []
    assert [r.scenario for r in result.rows] == ["ttfb", "stream_latency", "parallel"]
    result = asyncio.run(run_streams_suite(QUICK, ("memory",), None, {"throughput"}))
    assert [r.scenario for r in result.rows] == ["throughput"]


def test_the_hooks_suite_runs_only_the_scenarios_named() -> None:
    result = asyncio.run(run_hooks_suite(QUICK, ("memory",), None, {"resume"}))
    assert [r.scenario for r in result.rows] == ["resume", "resume_workflow"]
    assert result.skipped == []  # across processes was not asked for
    result = asyncio.run(run_hooks_suite(QUICK, ("memory",), None, {"resume_xproc"}))
    assert result.rows == []
    assert result.skipped == ["memory: across processes: measured on PostgreSQL only"]


@pytest.mark.slow
def test_the_command_runs_a_streams_scenario_alone(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    args = ("bench", "pipeline", "--quick", "--store", "memory", "--json", str(out))
    done = run_cli(*args, cwd=tmp_path, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    suites = json.loads(out.read_text())["suites"]
    assert list(suites) == ["streams"]
    assert [r["scenario"] for r in suites["streams"]["rows"]] == ["pipeline"]
