"""The reference suite: its cases and sleep floors, its rounds, its rows, a quick run on the
memory store, the DBOS side (without DBOS: its script's arguments, its failures) and the
selection that runs it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from benchmarks import reference_bench
from benchmarks.config import make_plan
from benchmarks.model import WrongResultError
from benchmarks.peers import dbos_reference, reference_peer, turns
from benchmarks.peers.reference_peer import DbosRounds
from benchmarks.peers.venv import PeerEnv, PeerUnavailable
from benchmarks.reference_bench import expect, in_rounds, run_case, run_reference_suite
from benchmarks.reference_cases import (
    Case,
    CaseError,
    RefSamples,
    cases_of,
    compare,
    kept,
    rounds_of,
    runs_in_round,
    sleep_floor,
    summarize,
)
from benchmarks.reference_workflows import REFERENCE_WORKFLOWS, text_chunk, text_stream
from benchmarks.report import markdown
from benchmarks.selection import select
from runtime import Runtime

QUICK = make_plan(True, None)
FULL = make_plan(False, None)
SCRIPT = Path(dbos_reference.__file__)


# -- cases and their sleep floors -------------------------------------------------------------


def test_the_sleep_floor_of_each_as_written_scenario() -> None:
    floors = {(c.name, c.size): c.floor_s for c in cases_of(FULL) if c.form == "asis"}
    assert floors == {
        ("ref_one_step_asis", 1): 1.0,
        ("ref_seq_asis", 10): 10.0,  # 10 x 1000 ms
        ("ref_seq_asis", 25): 12.5,  # 25 x 500 ms
        ("ref_seq_asis", 50): 10.0,  # 50 x 200 ms
        ("ref_gather_asis", 10): 1.0,
        ("ref_gather_asis", 25): 1.0,
        ("ref_gather_asis", 50): 1.0,
        ("ref_race_asis", 10): 1.0,
        ("ref_race_asis", 25): 1.0,
        ("ref_race_asis", 50): 1.0,
        ("ref_stream_asis", 50): pytest.approx(0.49),  # 49 gaps of 10 ms
    }
    assert all(c.floor_s == 0 for c in cases_of(FULL) if c.form != "asis")
    assert sleep_floor("pipeline", 5, 1000.0) == 0.0


def test_a_case_the_suite_does_not_define_is_an_error() -> None:
    with pytest.raises(CaseError, match="no as-written sleep for 30 sequential steps"):
        Case.of("seq", 30, "asis")
    with pytest.raises(CaseError, match="unknown reference scenario 'nap'"):
        Case.of("nap", 1, "noop")
    with pytest.raises(CaseError, match="the pipeline scenario has no form 'asis'"):
        Case.of("pipeline", 5, "asis")
    with pytest.raises(CaseError, match="the seq scenario has no form ''"):
        Case.of("seq", 10)
    assert Case.of("seq", 30, "noop").sleep_ms == 0.0


def test_quick_runs_the_noop_forms_at_size_10_and_full_adds_the_as_written_forms() -> None:
    quick = cases_of(QUICK)
    assert {c.form for c in quick} == {"noop", ""}
    assert {c.size for c in quick if c.scenario in ("seq", "gather", "race")} == {10}
    assert {c.scenario for c in quick} == set(reference_bench_scenarios())
    full = cases_of(FULL)
    assert {c.size for c in full if c.scenario == "race" and c.form == "asis"} == {10, 25, 50}
    assert [c.name for c in full if c.scenario == "stream"] == [
        "ref_stream_noop",
        "ref_stream_asis",
    ]
    assert len({c.key for c in full}) == len(full)


def reference_bench_scenarios() -> tuple[str, ...]:
    from benchmarks.reference_cases import SCENARIOS

    return SCENARIOS


def test_cases_travel_as_json_and_the_dbos_script_keys_them_alike() -> None:
    for case in cases_of(FULL):
        data = json.loads(json.dumps(case.to_json()))
        assert Case.from_json(data) == case
        assert dbos_reference.Case.of(data).key == case.key
        assert dbos_reference.Case.of(data).sleep_ms == case.sleep_ms


def test_the_as_written_forms_run_once_in_the_last_round_without_warm_up() -> None:
    seq_asis, seq_noop = Case.of("seq", 10, "asis"), Case.of("seq", 10, "noop")
    last = rounds_of(FULL) - 1
    assert rounds_of(FULL) == FULL.reference_warmup + FULL.reference_repeat
    assert [runs_in_round(seq_asis, i, FULL) for i in range(rounds_of(FULL))] == [
        i == last for i in range(rounds_of(FULL))
    ]
    assert all(runs_in_round(seq_noop, i, FULL) for i in range(rounds_of(FULL)))
    assert not kept(seq_noop, 0, FULL) and kept(seq_noop, 1, FULL)
    assert kept(seq_asis, last, FULL)


def test_rounds_alternate_the_engines_and_drop_the_warm_ups() -> None:
    plan = replace(QUICK, reference_warmup=1, reference_repeat=2, reference_asis=True)
    cases = [Case.of("no_steps", None), Case.of("one_step", 1, "asis")]
    calls: list[tuple[str, list[str]]] = []

    def engine(name: str) -> reference_bench.Round:
        async def one_round(these: Sequence[Case]) -> RefSamples:
            calls.append((name, [c.name for c in these]))
            raw = RefSamples()
            for case in these:
                raw.add(case, "wall", float(len(calls)))
            return raw

        return one_round

    kept_samples = asyncio.run(
        in_rounds(plan, cases, [("ours", engine("ours")), ("dbos", engine("dbos"))])
    )
    assert calls == [
        ("ours", ["ref_no_steps"]),
        ("dbos", ["ref_no_steps"]),
        ("ours", ["ref_no_steps"]),
        ("dbos", ["ref_no_steps"]),
        ("ours", ["ref_no_steps", "ref_one_step_asis"]),
        ("dbos", ["ref_no_steps", "ref_one_step_asis"]),
    ]
    assert kept_samples["ours"].of(cases[0], "wall") == [3.0, 5.0]  # round 1 was a warm-up
    assert kept_samples["dbos"].of(cases[1], "wall") == [6.0]


# -- rows -------------------------------------------------------------------------------------


def test_rows_give_wall_workflow_overhead_and_stream_times() -> None:
    seq, stream = Case.of("seq", 10, "asis"), Case.of("stream", 50, "noop")
    raw = RefSamples()
    for wall in (10.2, 10.4, 10.3):
        raw.add(seq, "wall", wall)
        raw.add(seq, "workflow", wall - 0.1)
    raw.add(stream, "wall", 0.02)
    raw.add(stream, "ttfb", 0.005)
    raw.add(stream, "slurp", 0.001)
    raw = RefSamples.from_json(json.loads(json.dumps(raw.to_json())))
    rows = {
        r.scenario: r for r in summarize("sqlite", raw, [seq, stream, Case.of("race", 10, "noop")])
    }
    assert set(rows) == {
        "ref_seq_asis",
        "ref_seq_overhead_asis",
        "ref_stream_noop",
        "ref_stream_ttfb_noop",
        "ref_stream_slurp_noop",
    }  # no samples, no row: never a zero
    assert rows["ref_seq_asis"].median == pytest.approx(10_300)
    assert rows["ref_seq_asis"].extra["workflow_median_ms"] == pytest.approx(10_200)
    assert rows["ref_seq_overhead_asis"].median == pytest.approx(300)
    assert rows["ref_seq_overhead_asis"].extra["floor_ms"] == 10_000
    assert rows["ref_stream_ttfb_noop"].median == pytest.approx(5.0)
    assert all(r.unit == "ms" and r.suite == "reference" for r in rows.values())
    theirs = summarize("sqlite", raw, [seq], engine="dbos")
    pairs = compare(list(rows.values()), theirs)
    assert [(c.scenario, c.ratio) for c in pairs] == [
        ("ref_seq_asis", 1.0),
        ("ref_seq_overhead_asis", 1.0),
    ]


# -- actorflow's runs -------------------------------------------------------------------------


def test_a_quick_run_on_memory_has_every_row_and_right_results() -> None:
    result = asyncio.run(run_reference_suite(QUICK, ["memory"], None))
    assert result.errors == [] and result.skipped == [] and result.comparisons == []
    names = {(r.scenario, r.size) for r in result.rows}
    for case in cases_of(QUICK):
        assert (case.name, case.size) in names
        row = next(r for r in result.rows if (r.scenario, r.size) == (case.name, case.size))
        assert row.samples == QUICK.reference_repeat and row.median > 0
        assert float(row.extra["workflow_median_ms"]) > 0
    assert ("ref_stream_ttfb_noop", 50) in names and ("ref_stream_slurp_noop", 50) in names
    (series,) = result.series
    assert (series.kind, series.store, series.engine, series.unit) == (
        "stream_ttfb",
        "memory",
        "actorflow",
        "ms",
    )
    assert len(series.y) == QUICK.reference_repeat
    assert "## Reference" in markdown([result], _info())


def test_an_as_written_step_sleeps_and_its_overhead_is_above_the_floor() -> None:
    async def scenario() -> None:
        async with Runtime(store="memory://", workflows=REFERENCE_WORKFLOWS) as rt:
            case = replace(Case.of("gather", 10, "asis"), sleep_ms=50.0)
            _, out = await run_case(rt, case)
            assert 0.05 <= out.wall < 1.0
            stream = replace(Case.of("stream", 5, "asis"), sleep_ms=20.0)
            _, out = await run_case(rt, stream)
            assert out.reading is not None
            assert out.reading.last - out.reading.first >= 4 * 0.02 * 0.9

    asyncio.run(scenario())


def test_a_wrong_result_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(WrongResultError, match="ref_seq_noop n=10: the run returned 9, not 10"):
        expect(Case.of("seq", 10, "noop"), 9, 10)

    def wrong_text(chunks: int, size: int) -> bytes:
        return text_stream(chunks, size)[1:]  # the suite upper-cases it: one byte short

    def wrong_bytes(size: int, stages: int) -> bytes:
        return b"\0" * size

    monkeypatch.setattr(reference_bench, "text_stream", wrong_text)
    monkeypatch.setattr(reference_bench, "pipeline_output", wrong_bytes)

    async def scenario() -> None:
        async with Runtime(store="memory://", workflows=REFERENCE_WORKFLOWS) as rt:
            with pytest.raises(WrongResultError, match="upper-case stream"):
                await run_case(rt, Case.of("stream", 50, "noop"))
            with pytest.raises(WrongResultError, match="pipeline stream s5"):
                await run_case(rt, Case.of("pipeline", 5))

    asyncio.run(scenario())
    monkeypatch.setattr(reference_bench, "cases_of", lambda plan: [Case.of("stream", 50, "noop")])
    result = asyncio.run(run_reference_suite(QUICK, ["memory"], None))
    (error,) = result.errors
    assert error.startswith("memory: WrongResultError: upper-case stream") and result.rows == []


def test_the_text_stream_chunks_are_100_bytes() -> None:
    assert text_chunk(7) == b"chunk-007-" + b"x" * 89 + b"\n"
    assert len(text_stream()) == 50 * 100


# -- DBOS, without DBOS -----------------------------------------------------------------------


def test_the_dbos_script_parses_its_arguments() -> None:
    cases = json.dumps([c.to_json() for c in cases_of(QUICK)])
    args = dbos_reference.parser().parse_args(
        ["--store", "sqlite", "--cases", cases, "--out", "o.json", "--dir", "d"]
    )
    assert [c.key for c in args.cases] == [c.key for c in cases_of(QUICK)]
    assert args.store == "sqlite" and args.schema_prefix == "bench_dbosref"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--store", "mysql", "--cases", "[]", "--out", "o"], "invalid choice: 'mysql'"),
        (["--store", "sqlite", "--cases", "{", "--out", "o"], "invalid parse_cases value"),
        (["--store", "sqlite", "--cases", "[]", "--out", "o"], "--dir is required"),
        (["--store", "postgres", "--cases", "[]", "--out", "o"], "--dsn is required"),
        (["--store", "sqlite", "--cases", "[]", "--dir", "d"], "--out is required with --cases"),
        (
            ["--store", "sqlite", "--cases", '[{"scenario": "nap"}]', "--out", "o"],
            "invalid parse_cases value",
        ),
    ],
)
def test_the_dbos_script_rejects_bad_arguments(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        dbos_reference.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_the_dbos_script_fails_cleanly_without_dbos(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *(sys.executable, str(SCRIPT), "--store", "sqlite", "--cases", "[]"),
            *("--out", str(tmp_path / "o.json"), "--dir", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "DBOS is not installed" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "o.json").exists()


FAKE_SCRIPT = """
import json, sys
MARK = "@@dbos-reference-round "
line = sys.stdin.readline()
cases = json.loads(line)
print("a line of DBOS's own output", flush=True)
answer = {
    "version": "3.4.0",
    "samples": {"ref_no_steps:": {"wall": [0.02]}},
    "not_run": {"ref_race_noop:10": "failed: TypeError: no"},
}
print(MARK + json.dumps(answer), flush=True)
sys.stdin.readline()
sys.exit(3)
"""


def _fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PeerEnv:
    """A peer venv whose python is this one, running a fake script that answers one round
    (with a case it could not run) and dies at the next."""
    script = tmp_path / "fake_dbos_reference.py"
    script.write_text(FAKE_SCRIPT)
    monkeypatch.setattr(reference_peer, "SCRIPT", script)
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "python").symlink_to(sys.executable)
    return PeerEnv("dbos", "3.4.0", tmp_path / "venv")


def test_dbos_cases_it_could_not_run_are_reported_never_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    race = Case.of("race", 10, "noop")
    cases = [Case.of("no_steps", None), race]

    async def scenario() -> tuple[RefSamples, RefSamples, RefSamples, DbosRounds]:
        async with DbosRounds(_fake_env(tmp_path, monkeypatch), "sqlite", None) as rounds:
            first = await rounds(cases)
            second = await rounds(cases)
            third = await rounds(cases)  # not sent: the script has died
        return first, second, third, rounds

    first, second, third, rounds = asyncio.run(scenario())
    assert first.of(cases[0], "wall") == [0.02] and first.of(race, "wall") == []
    assert second.samples == {} and third.samples == {}
    assert rounds.version == "3.4.0"
    assert rounds.skipped() == [
        "sqlite: DBOS: ref_race_noop n=10: failed: TypeError: no",
        "sqlite: DBOS stopped: the DBOS script exited with code 3 (its output is above)",
    ]
    rows = summarize("sqlite", first, cases, engine="dbos")
    assert [r.scenario for r in rows] == ["ref_no_steps"]


def test_a_dbos_script_that_cannot_start_is_reported(tmp_path: Path) -> None:
    missing = PeerEnv("dbos", "3.4.0", tmp_path / "no-venv")

    async def scenario() -> DbosRounds:
        async with DbosRounds(missing, "sqlite", None) as rounds:
            assert (await rounds([Case.of("no_steps", None)])).samples == {}
        return rounds

    (why,) = asyncio.run(scenario()).skipped()
    assert why.startswith("sqlite: DBOS stopped: ") and "no-venv" in why


def test_dbos_unavailable_is_skipped_and_ours_still_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable() -> PeerEnv:
        raise PeerUnavailable("PyPI unreachable")

    monkeypatch.setattr(turns, "ensure_peer", unavailable)
    monkeypatch.setattr(reference_bench, "cases_of", lambda plan: [Case.of("no_steps", None)])
    result = asyncio.run(run_reference_suite(QUICK, ["memory"], None, peer="dbos"))
    assert result.skipped == ["DBOS is unavailable, so it was not measured: PyPI unreachable"]
    assert [r.scenario for r in result.rows] == ["ref_no_steps"] and result.peer == {}


def test_dbos_is_not_run_on_memory_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(turns, "ensure_peer", lambda: _fake_env(tmp_path, monkeypatch))
    monkeypatch.setattr(reference_bench, "cases_of", lambda plan: [Case.of("no_steps", None)])
    result = asyncio.run(run_reference_suite(QUICK, ["memory"], None, peer="dbos"))
    assert result.skipped == ["memory: DBOS has no memory store; actorflow only"]
    assert {r.engine for r in result.rows} == {"actorflow"} and result.comparisons == []
    assert result.peer["name"] == "DBOS"


# -- selection --------------------------------------------------------------------------------


def test_reference_alone_takes_the_peer_without_the_peers_suite() -> None:
    alone = select(["reference"], peers="dbos")
    assert alone.suites == ("reference",) and alone.peer == "dbos"
    assert select(["reference", "runtime"], peers="DBOS").suites == (
        "runtime",
        "peers",
        "reference",
    )
    assert select(["reference"]).peer is None
    assert "reference" in select([], peers="dbos").suites


def _info() -> dict[str, Any]:
    return {
        "command": "actorflow bench reference",
        "date": "2026-01-01",
        "python": "3.11",
        "cpus": 2,
        "cpu_model": "x",
        "sqlite": "3",
        "platform": "linux",
        "quick": True,
    }
