"""DBOS beside the hooks suite: its script's usage, the summary of its samples, the comparison.

Nothing here runs DBOS: the script is run by this interpreter (which has no DBOS) to check it
exits cleanly, and the suite's DBOS step is given a made-up result. The quick hooks run is on
the memory store, where DBOS has no store.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path

import pytest

from benchmarks import hook_bench
from benchmarks.config import make_plan
from benchmarks.hook_bench import (
    HookSamples,
    measure_dbos,
    peer_scenarios,
    run_hooks_suite,
    summarize,
)
from benchmarks.model import Row, SuiteResult
from benchmarks.peers.hooks_peer import DbosHooks, command_line, parse_result
from benchmarks.peers.suite import compare
from benchmarks.peers.venv import PeerEnv, PeerUnavailable
from benchmarks.report import markdown
from benchmarks.selection import select

from .synthetic_results import info

SCRIPT = Path(hook_bench.__file__).resolve().parent / "peers" / "dbos_hooks.py"
QUICK = make_plan(True, None)
ENV = PeerEnv("dbos", "3.4.0", Path("/nowhere/dbos"))
SAMPLES = {"to_step": [0.020, 0.030, 0.010], "to_workflow": [0.010, 0.020], "call": [0.004]}


def script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_dbos_script_exits_cleanly_without_dbos(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = script("--store", "sqlite", "--samples", "3", "--out", str(out), "--dir", str(tmp_path))
    assert done.returncode == 2
    assert "dbos_hooks: DBOS is not installed for" in done.stderr
    assert "peer venv's interpreter" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--store", "sqlite", "--out", "o.json", "--dir", "."], "--samples and --out are"),
        (["--store", "sqlite", "--samples", "0", "--out", "o", "--dir", "."], "at least 1"),
        (["--store", "sqlite", "--samples", "3", "--out", "o"], "sqlite needs --dir"),
        (["--store", "postgres", "--samples", "3", "--out", "o"], "postgres needs --dsn"),
        (
            ["--store", "sqlite", "--samples", "3", "--out", "o", "--dir", ".", "--scenarios", "x"],
            "unknown scenario(s) ['x']",
        ),
    ],
)
def test_the_dbos_script_says_what_it_needs(args: list[str], said: str) -> None:
    done = script(*args)
    assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr


def test_dbos_samples_are_summarized_by_the_suites_code_without_our_targets() -> None:
    samples = HookSamples.from_json(SAMPLES)
    ours = summarize("postgres", samples, across=True)
    theirs = summarize("postgres", samples, across=True, engine="dbos")
    assert [r.scenario for r in theirs] == ["resume_xproc", "resume_workflow_xproc"]
    for mine, peer in zip(ours, theirs, strict=True):
        assert (peer.median, peer.p95, peer.samples) == (mine.median, mine.p95, mine.samples)
        assert peer.engine == "dbos" and mine.engine == "actorflow"
    assert theirs[0].median == pytest.approx(20.0) and theirs[0].target is None
    assert ours[0].target is not None
    assert "DBOSClient's send_async() returned after 4.00 ms" in str(theirs[0].extra["detail"])
    assert "DBOS.recv_async()" in str(theirs[1].extra["detail"])
    in_process = summarize("sqlite", samples, across=False, engine="dbos")
    assert "the same app's DBOS.send_async()" in str(in_process[0].extra["detail"])


def test_dbos_samples_without_a_moment_are_refused() -> None:
    with pytest.raises(ValueError, match="without 'call'"):
        HookSamples.from_json({"to_step": [0.1], "to_workflow": [0.1]})


def test_dbos_runs_the_scenarios_we_run_on_each_store() -> None:
    assert peer_scenarios("sqlite", {"resume", "resume_xproc"}) == ["resume"]
    assert peer_scenarios("postgres", {"resume", "resume_xproc"}) == ["resume", "resume_xproc"]
    assert peer_scenarios("postgres", {"resume_xproc"}) == ["resume_xproc"]


def test_the_script_command_line_and_result(tmp_path: Path) -> None:
    sqlite = command_line(ENV, "sqlite", None, {"resume"}, 5, 3, tmp_path, "p")
    assert sqlite[1] == str(SCRIPT) and sqlite[-2:] == ["--dir", str(tmp_path)]
    assert sqlite[sqlite.index("--samples") :][:4] == ["--samples", "5", "--warmup", "3"]
    pg = command_line(ENV, "postgres", "postgresql://u@h/db", {"resume"}, 5, 3, tmp_path, "p")
    assert pg[-2:] == ["--schema-prefix", "p"] and "postgresql://u@h/db" in pg
    with pytest.raises(PeerUnavailable, match="no PostgreSQL URL"):
        command_line(ENV, "postgres", None, {"resume"}, 5, 3, tmp_path, "p")
    parsed = parse_result({"raw": {"resume": SAMPLES}, "not_run": {"x": 1}, "version": "3.4.0"})
    assert parsed.raw["resume"]["call"] == [0.004] and parsed.not_run == {"x": "1"}


def _with_dbos(
    monkeypatch: pytest.MonkeyPatch, result: DbosHooks | Exception
) -> list[Collection[str]]:
    asked: list[Collection[str]] = []

    async def fake(
        env: PeerEnv, kind: str, postgres: str | None, scenarios: Collection[str], *_: int
    ) -> DbosHooks:
        asked.append(scenarios)
        if isinstance(result, Exception):
            raise result
        return result

    monkeypatch.setattr(hook_bench, "run_dbos_hooks", fake)
    return asked


def _ours(kind: str) -> dict[str, list[Row]]:
    samples = HookSamples([0.005] * 3, [0.001] * 3, [0.002] * 3)
    return {
        "resume": summarize(kind, samples, across=False),
        "resume_xproc": summarize(kind, samples, across=True),
    }


def test_dbos_rows_are_compared_ours_over_theirs(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _with_dbos(monkeypatch, DbosHooks({"resume": SAMPLES, "resume_xproc": SAMPLES}))
    out = SuiteResult("hooks")
    asyncio.run(
        measure_dbos(
            out, ENV, "postgres", None, QUICK, {"resume", "resume_xproc"}, _ours("postgres")
        )
    )
    assert asked == [["resume", "resume_xproc"]]
    assert [r.engine for r in out.rows] == ["dbos"] * 4
    ratios = {c.scenario: c.ratio for c in out.comparisons}
    assert set(ratios) == {"resume", "resume_workflow", "resume_xproc", "resume_workflow_xproc"}
    assert ratios["resume"] == pytest.approx(5.0 / 20.0)
    assert all(c.store == "postgres" and c.better == "lower" for c in out.comparisons)
    assert out.skipped == [] and out.errors == []


def test_a_dbos_scenario_that_failed_is_not_run_with_why(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_dbos(monkeypatch, DbosHooks({"resume": SAMPLES}, {"resume_xproc": "OSError: gone"}))
    out = SuiteResult("hooks")
    asyncio.run(
        measure_dbos(
            out, ENV, "postgres", None, QUICK, {"resume", "resume_xproc"}, _ours("postgres")
        )
    )
    assert {r.scenario for r in out.rows} == {"resume", "resume_workflow"}
    assert {c.scenario for c in out.comparisons} == {"resume", "resume_workflow"}
    assert out.skipped == ["postgres: DBOS resume_xproc not run: OSError: gone"]


def test_a_dbos_script_that_failed_adds_no_number(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_dbos(monkeypatch, PeerUnavailable("the DBOS script exited with code 1"))
    out = SuiteResult("hooks")
    asyncio.run(measure_dbos(out, ENV, "sqlite", None, QUICK, {"resume"}, _ours("sqlite")))
    assert out.rows == [] and out.comparisons == []
    assert out.skipped == ["sqlite: DBOS not run: the DBOS script exited with code 1"]


def test_samples_missing_from_the_script_are_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_dbos(monkeypatch, DbosHooks({"resume": {"to_step": [0.1]}}))
    out = SuiteResult("hooks")
    asyncio.run(measure_dbos(out, ENV, "sqlite", None, QUICK, {"resume"}, _ours("sqlite")))
    assert out.rows == []
    assert out.skipped == ["sqlite: DBOS resume not run: hook samples without 'to_workflow'"]


def test_a_quick_hooks_run_on_memory_with_the_peer_still_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_venv() -> PeerEnv:
        raise AssertionError("DBOS has no memory store: its venv is not needed")

    monkeypatch.setattr(hook_bench, "ensure_peer", no_venv)
    result = asyncio.run(run_hooks_suite(QUICK, ("memory",), None, {"resume"}, peer="dbos"))
    assert result.errors == []
    assert [(r.scenario, r.engine) for r in result.rows] == [
        ("resume", "actorflow"),
        ("resume_workflow", "actorflow"),
    ]
    assert result.skipped == ["memory: DBOS not run: it has no memory store"]
    assert result.comparisons == [] and result.peer == {}


def test_dbos_unavailable_is_said_and_ours_still_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable() -> PeerEnv:
        raise PeerUnavailable("PyPI is unreachable")

    monkeypatch.setattr(hook_bench, "ensure_peer", unavailable)
    result = asyncio.run(run_hooks_suite(QUICK, ("sqlite",), None, {"resume"}, peer="dbos"))
    assert result.skipped == ["DBOS is unavailable, so no peer was measured: PyPI is unreachable"]
    assert [(r.scenario, r.engine) for r in result.rows] == [
        ("resume", "actorflow"),
        ("resume_workflow", "actorflow"),
    ]
    assert result.errors == [] and result.comparisons == []


def test_the_hooks_suite_measures_dbos_itself() -> None:
    assert select(["hooks"], peers="dbos").suites == ("hooks",)
    assert select(["resume"], peers="dbos").suites == ("hooks",)
    assert select(["resume"], peers="dbos").peer == "dbos"
    assert select(["hooks", "runtime"], peers="dbos").suites == ("runtime", "peers", "hooks")


def test_the_report_puts_the_comparison_first() -> None:
    samples = HookSamples.from_json(SAMPLES)
    ours = summarize("sqlite", samples, across=False)
    suite = SuiteResult("hooks", rows=[*ours], peer={"name": "DBOS"})
    suite.rows.extend(summarize("sqlite", samples, across=False, engine="dbos"))
    suite.comparisons = compare(ours, suite.rows[2:], hook_bench.COMPARED)
    text = markdown([suite], info())
    assert "actorflow/DBOS" in text and "All rows (DBOS and actorflow)" in text
    assert "| dbos | sqlite | resume |" in text
