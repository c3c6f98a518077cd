"""DBOS beside the hooks suite: its script's usage, the summary of its samples, the comparison.

Nothing here runs DBOS: the script is run by this interpreter (which has no DBOS) to check it
exits cleanly, and the suite's DBOS step is given a made-up result. The quick hooks run is on
the memory store, where DBOS has no store.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Collection
from pathlib import Path

import pytest

from benchmarks import hook_bench, stats
from benchmarks.config import make_plan
from benchmarks.hook_bench import (
    SCENARIOS,
    DbosTurns,
    HookSamples,
    measure_kind,
    run_hooks_suite,
    scenarios_on,
    summarize,
)
from benchmarks.model import SuiteResult
from benchmarks.peers import turns
from benchmarks.peers.hooks_peer import DbosHooks, command_line, parse_result
from benchmarks.peers.suite import ROUNDS, compare
from benchmarks.peers.venv import PeerEnv, PeerUnavailable
from benchmarks.report import markdown
from benchmarks.rounds import shares, split
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


def test_both_engines_run_the_scenarios_each_store_has() -> None:
    assert scenarios_on("sqlite", {"resume", "resume_xproc"}) == ["resume"]
    assert scenarios_on("postgres", {"resume", "resume_xproc"}) == ["resume", "resume_xproc"]
    assert scenarios_on("postgres", {"resume_xproc"}) == ["resume_xproc"]
    assert scenarios_on("memory", {"resume_xproc"}) == []


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


Turn = tuple[str, str, int]


def _fakes(monkeypatch: pytest.MonkeyPatch, dbos: Callable[[str, int], DbosHooks]) -> list[Turn]:
    """Fake both engines: ours gives 5 ms to the step, DBOS what ``dbos(scenario, round)``
    says (or raises); each turn is recorded as (engine, scenario, samples asked)."""
    turns: list[Turn] = []

    async def ours(kind: str, postgres: str | None, scenario: str, samples: int) -> HookSamples:
        turns.append(("actorflow", scenario, samples))
        return HookSamples([0.005] * samples, [0.001] * samples, [0.002] * samples)

    async def theirs(
        env: PeerEnv, kind: str, postgres: str | None, scenarios: Collection[str], *counts: int
    ) -> DbosHooks:
        (scenario,) = scenarios
        samples, warmup = counts
        assert warmup == hook_bench.WARMUP
        turns.append(("dbos", scenario, samples))
        rounds = sum(1 for engine, name, _ in turns if engine == "dbos" and name == scenario)
        return dbos(scenario, rounds)

    monkeypatch.setattr(hook_bench, "measure_actorflow", ours)
    monkeypatch.setattr(hook_bench, "run_dbos_hooks", theirs)
    return turns


def _dbos_samples(scenario: str, samples: int) -> DbosHooks:
    values = {"to_step": [0.020] * samples, "to_workflow": [0.010] * samples}
    return DbosHooks({scenario: {**values, "call": [0.004] * samples}})


def _measure(kind: str, wanted: Collection[str] = SCENARIOS) -> SuiteResult:
    out = SuiteResult("hooks")
    dbos = DbosTurns(ENV, kind, None)
    asyncio.run(measure_kind(out, kind, None, QUICK, wanted, dbos))
    return out


def test_rounds_take_turns_ours_then_dbos_scenario_by_scenario(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    turns = _fakes(monkeypatch, lambda scenario, _: _dbos_samples(scenario, 4))
    out = _measure("postgres")
    counts = shares(QUICK.hook_samples, ROUNDS)
    assert len(counts) == ROUNDS == 3 and sum(counts) == QUICK.hook_samples == 10
    assert turns == [
        (engine, scenario, count)
        for count in counts
        for scenario in ("resume", "resume_xproc")
        for engine in ("actorflow", "dbos")
    ]
    rows = {(r.engine, r.scenario): r for r in out.rows}
    assert rows[("actorflow", "resume")].samples == QUICK.hook_samples  # every round, pooled
    assert rows[("dbos", "resume_xproc")].samples == 4 * ROUNDS
    ratios = {c.scenario: c.ratio for c in out.comparisons}
    assert set(ratios) == {"resume", "resume_workflow", "resume_xproc", "resume_workflow_xproc"}
    assert ratios["resume"] == pytest.approx(5.0 / 20.0)
    assert all(c.store == "postgres" and c.better == "lower" for c in out.comparisons)
    assert out.skipped == [] and out.errors == []


def test_dbos_on_sqlite_takes_fewer_samples_a_second_each_in_the_same_rounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    full = make_plan(False, None)
    assert full.hook_samples >= stats.P99_MIN_SAMPLES > hook_bench.DBOS_SQLITE_SAMPLES
    turns = _fakes(monkeypatch, lambda scenario, _: _dbos_samples(scenario, 1))
    out = SuiteResult("hooks")
    asyncio.run(measure_kind(out, "sqlite", None, full, SCENARIOS, DbosTurns(ENV, "sqlite", None)))
    ours = shares(full.hook_samples, ROUNDS)
    theirs = split(hook_bench.DBOS_SQLITE_SAMPLES, ROUNDS)
    assert turns == [
        step
        for mine, peer in zip(ours, theirs, strict=True)
        for step in (("actorflow", "resume", mine), ("dbos", "resume", peer))
    ]
    rows = {(r.engine, r.scenario): r for r in out.rows}
    assert rows[("actorflow", "resume")].p99 is not None  # 100 samples: a p99
    assert hook_bench.dbos_samples("postgres", 100) == 100
    assert hook_bench.dbos_samples("sqlite", 10) == 10


def test_ours_alone_also_runs_in_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    turns = _fakes(monkeypatch, lambda scenario, _: _dbos_samples(scenario, 1))
    out = SuiteResult("hooks")
    asyncio.run(measure_kind(out, "memory", None, QUICK, SCENARIOS))
    assert turns == [("actorflow", "resume", n) for n in shares(QUICK.hook_samples, ROUNDS)]
    assert [(r.scenario, r.samples) for r in out.rows] == [
        ("resume", QUICK.hook_samples),
        ("resume_workflow", QUICK.hook_samples),
    ]


def test_a_scenario_dbos_fails_in_a_later_round_is_not_run_with_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def dbos(scenario: str, round_number: int) -> DbosHooks:
        if scenario == "resume_xproc" and round_number == 2:
            return DbosHooks({}, {"resume_xproc": "OSError: gone"})
        return _dbos_samples(scenario, 3)

    turns = _fakes(monkeypatch, dbos)
    out = _measure("postgres")
    assert ("dbos", "resume_xproc") not in {(e, s) for e, s, _ in turns[8:]}  # no 3rd turn
    assert [t for t in turns if t[0] == "actorflow"] == [
        ("actorflow", s, n) for n in (4, 3, 3) for s in ("resume", "resume_xproc")
    ]
    engines = {(r.engine, r.scenario): r for r in out.rows}
    assert ("dbos", "resume_xproc") not in engines
    assert engines[("actorflow", "resume_xproc")].samples == QUICK.hook_samples
    assert engines[("dbos", "resume")].samples == 9
    assert {c.scenario for c in out.comparisons} == {"resume", "resume_workflow"}
    assert out.skipped == ["postgres: DBOS resume_xproc not run: round 2 of 3: OSError: gone"]
    assert all(r.median > 0 for r in out.rows)


def test_a_dbos_script_that_fails_ends_dbos_on_that_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def dbos(scenario: str, round_number: int) -> DbosHooks:
        if round_number == 2:
            raise PeerUnavailable("the DBOS script exited with code 1")
        return _dbos_samples(scenario, 4)

    turns = _fakes(monkeypatch, dbos)
    out = _measure("postgres")
    assert [t[1] for t in turns if t[0] == "dbos"] == ["resume", "resume_xproc", "resume"]
    assert {r.engine for r in out.rows} == {"actorflow"} and len(out.rows) == 4
    assert out.comparisons == []
    why = "round 2 of 3: the DBOS script exited with code 1"
    assert out.skipped == [
        f"postgres: DBOS resume not run: {why}",
        f"postgres: DBOS resume_xproc not run: {why}",
    ]


def test_dbos_samples_missing_from_the_script_are_not_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fakes(monkeypatch, lambda scenario, _: DbosHooks({scenario: {"to_step": [0.1]}}))
    out = _measure("sqlite")
    assert {r.engine for r in out.rows} == {"actorflow"}
    assert out.skipped == [
        "sqlite: DBOS resume not run: round 1 of 3: hook samples without 'to_workflow'"
    ]
    _fakes(monkeypatch, lambda scenario, _: DbosHooks({}))
    out = _measure("sqlite")
    assert out.skipped == [
        "sqlite: DBOS resume not run: round 1 of 3: the DBOS script returned no samples"
    ]


def test_a_quick_hooks_run_on_memory_with_the_peer_still_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_venv() -> PeerEnv:
        raise AssertionError("DBOS has no memory store: its venv is not needed")

    monkeypatch.setattr(turns, "ensure_peer", no_venv)
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

    monkeypatch.setattr(turns, "ensure_peer", unavailable)
    result = asyncio.run(run_hooks_suite(QUICK, ("sqlite",), None, {"resume"}, peer="dbos"))
    assert result.skipped == ["DBOS is unavailable, so it was not measured: PyPI is unreachable"]
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


def test_samples_split_into_rounds_keep_their_total() -> None:
    assert split(10, 3) == [4, 3, 3] and split(2, 3) == [1, 1, 0] and split(0, 2) == [0, 0]
    assert shares(50, 3) == [17, 17, 16] and shares(2, 3) == [1, 1] and shares(0, 3) == [0]
    with pytest.raises(ValueError, match="rounds must be at least 1, got 0"):
        split(5, 0)
    with pytest.raises(ValueError, match="repetitions must be at least 0, got -1"):
        split(-1, 3)
