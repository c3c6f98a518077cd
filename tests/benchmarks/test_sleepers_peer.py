"""DBOS beside the sleepers suite: the script without DBOS, rows and comparisons from made-up
raw figures, failures reported as not run, and ``--peers dbos`` reaching the suite."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import command, sleepers_peer
from benchmarks.command import BenchOptions, prepare, run_unit
from benchmarks.config import make_plan
from benchmarks.html_report import suite_html
from benchmarks.model import Row, SuiteResult
from benchmarks.peers import dbos_sleepers
from benchmarks.peers.venv import PeerEnv, PeerUnavailable
from benchmarks.report import markdown
from benchmarks.selection import select
from benchmarks.sleepers_peer import (
    NO_PASSIVATION,
    SCRIPT,
    add_dbos,
    dbos_rows,
    measure_dbos,
    per_thousand,
    run_dbos_sleepers,
)

from .synthetic_results import info


def _raw(**phases: dict[str, Any]) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "n": 200,
        "m": 100,
        "warm": 50,
        "fleet": {"start_s": 4.0, "rss_per_run": 51_200.0},
        "recover": {"recovered": 250, "recovery_s": 3.0},
        "live": {"live_bytes": 12_000.0},
    }
    raw.update(phases)
    return raw


def _ours() -> SuiteResult:
    out = SuiteResult("sleepers")
    for scenario, size, unit, value in (
        ("sleepers_start", 2000, "runs/s", 2000.0),
        ("sleepers_rss", 2000, "KiB/run", 12.5),
        ("sleepers_recovery", 2000, "s", 0.205),
        ("sleeper_live_bytes", 500, "bytes/run", 9000.0),
        ("sleeper_passive_bytes", 500, "bytes/run", 4000.0),
    ):
        out.rows.append(Row("sleepers", "sqlite", scenario, size, unit, value, None, 1))
    return out


# -- the script ------------------------------------------------------------------------------


def _script(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The DBOS script run by this interpreter, which has no DBOS."""
    out = ("--dir", str(tmp_path), "--out", str(tmp_path / "o.json"))
    return subprocess.run(
        [sys.executable, str(SCRIPT), *out, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_dbos_script_fails_cleanly_without_dbos(tmp_path: Path) -> None:
    done = _script(tmp_path, "--n", "10", "--m", "5")
    assert done.returncode == 2
    assert "dbos_sleepers: DBOS is not installed for" in done.stderr
    assert "peer venv's interpreter" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "o.json").exists()


def test_the_dbos_script_refuses_bad_counts(tmp_path: Path) -> None:
    done = _script(tmp_path, "--n", "0", "--m", "5")
    assert done.returncode == 2 and "--n and --m must be positive" in done.stderr


def test_a_phase_that_fails_is_an_error_and_recovery_needs_the_fleet(tmp_path: Path) -> None:
    raw = dbos_sleepers.measure(tmp_path, 10, 5)  # this interpreter has no DBOS
    assert "the fleet process exited with 2" in raw["fleet"]["error"]
    assert raw["recover"] == {"error": "not run: the fleet it recovers was not started"}
    assert "the live process exited with 2" in raw["live"]["error"]


def test_sleeping_is_counted_as_timers_due_about_an_hour_ahead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def count() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        hour = [loop.call_later(3600, print) for _ in range(3)]
        soon = loop.call_later(60, print)
        hour[0].cancel()
        armed = dbos_sleepers.armed()
        await dbos_sleepers.until_armed(2, "two sleeping")  # already there: returns
        monkeypatch.setattr(dbos_sleepers, "SETTLE_TIMEOUT_S", 0.05)
        with pytest.raises(TimeoutError, match="three sleeping: 2 of 3 after 0 s"):
            await dbos_sleepers.until_armed(3, "three sleeping")
        soon.cancel()
        for handle in hour:
            handle.cancel()
        return armed, dbos_sleepers.armed()

    assert asyncio.run(count()) == (2, 0)


# -- rows and comparisons from made-up raw figures ---------------------------------------------


def test_per_thousand_scales_seconds_to_1000_runs() -> None:
    assert per_thousand(3.0, 250) == pytest.approx(12.0)
    assert per_thousand(0.5, 2000) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="runs must be positive, got 0"):
        per_thousand(1.0, 0)


def test_dbos_rows_from_raw_figures() -> None:
    rows, skipped = dbos_rows(_raw())
    found = {r.scenario: r for r in rows}
    assert all(r.engine == "dbos" and r.store == "sqlite" for r in rows)
    assert found["sleepers_start"].median == pytest.approx(50.0)  # 200 in 4 s
    assert found["sleepers_start"].rate == pytest.approx(50.0)
    assert found["sleepers_rss"].median == pytest.approx(50.0)  # KiB
    assert found["sleepers_recovery"].median == pytest.approx(3.0)
    per_1k = found["sleepers_recovery_per_1k"]
    assert per_1k.median == pytest.approx(12.0) and per_1k.unit == "s/1k runs"  # 250 recovered
    assert "1,000 / 250 runs recovered" in str(per_1k.extra["detail"])
    assert found["sleeper_live_bytes"].median == pytest.approx(12_000.0)
    assert "sleeper_passive_bytes" not in found
    assert skipped == [NO_PASSIVATION] and "no passivation" in NO_PASSIVATION


def test_dbos_failures_and_timeouts_are_not_run_never_zero() -> None:
    rows, skipped = dbos_rows(
        _raw(
            fleet={"error": "the fleet process took over 720 s"},
            recover={"recovered": 120, "timeout": "120 of 250 after 300 s"},
            live={"error": "live: TimeoutError: 3 of 100"},
        )
    )
    assert rows == []
    assert skipped[:3] == [
        "DBOS sleepers_start and sleepers_rss not run: the fleet process took over 720 s",
        "DBOS sleepers_recovery not run: 120 of 250 after 300 s",
        "DBOS sleeper_live_bytes not run: live: TimeoutError: 3 of 100",
    ]


def test_comparisons_are_ours_over_dbos_of_per_run_figures() -> None:
    out = _ours()
    add_dbos(out, {"raw": _raw()}, 2050)
    ours_1k = next(r for r in out.rows if r.scenario == "sleepers_recovery_per_1k")
    assert ours_1k.engine == "actorflow" and ours_1k.median == pytest.approx(0.1)
    assert "1,000 / 2,050 runs recovered" in str(ours_1k.extra["detail"])
    by = {c.scenario: c for c in out.comparisons}
    assert list(by) == [
        "sleepers_start",
        "sleepers_rss",
        "sleeper_live_bytes",
        "sleepers_recovery_per_1k",
    ]
    assert by["sleepers_start"].ratio == pytest.approx(40.0)
    assert by["sleepers_start"].better == "higher"
    assert by["sleepers_rss"].ratio == pytest.approx(0.25)
    assert by["sleeper_live_bytes"].ratio == pytest.approx(0.75)
    assert by["sleepers_recovery_per_1k"].ratio == pytest.approx(0.1 / 12.0)
    assert all(c.better == "lower" for s, c in by.items() if s != "sleepers_start")
    assert all(c.size is None for c in out.comparisons)  # the counts differ
    assert any("not totals" in note for note in out.notes)
    assert NO_PASSIVATION in out.skipped
    text = markdown([out], info())
    assert "actorflow/DBOS" not in text  # no peer dict: named "peer"
    out.peer = {"name": "DBOS"}
    text = markdown([out], info())
    assert "| sleepers_recovery_per_1k | — | sqlite | s/1k runs |" in text
    assert "actorflow/DBOS" in text and "| dbos | sqlite | sleepers_start | 200 |" in text
    assert "<th>engine</th>" in suite_html(out) and ">dbos</td>" in suite_html(out)


def test_without_a_recovery_row_there_is_no_recovery_comparison() -> None:
    out = _ours()
    out.rows = [r for r in out.rows if r.scenario != "sleepers_recovery"]
    add_dbos(out, {"raw": _raw()}, 2050)
    assert "sleepers_recovery_per_1k" not in {c.scenario for c in out.comparisons}
    assert all(math.isfinite(c.ratio) and c.ratio > 0 for c in out.comparisons)


# -- running DBOS ------------------------------------------------------------------------------


def _fake_env(tmp_path: Path, body: str) -> PeerEnv:
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\n{body}\n")
    python.chmod(0o755)
    return PeerEnv("dbos", "3.4.0", tmp_path / "venv")


def test_a_dbos_script_that_fails_is_reported_as_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _fake_env(tmp_path, f'exec {sys.executable} "$@"')  # no DBOS: exits 2
    monkeypatch.setattr(sleepers_peer, "ensure_peer", lambda: env)
    out = _ours()
    asyncio.run(measure_dbos(out, make_plan(True, None), 2050))
    assert out.skipped == ["DBOS not run: the DBOS script exited with code 2 (its output is above)"]
    assert out.comparisons == [] and all(r.engine == "actorflow" for r in out.rows)


def test_a_dbos_script_that_hangs_is_stopped_in_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _fake_env(tmp_path, "exec sleep 30")
    monkeypatch.setattr(sleepers_peer, "RUN_TIMEOUT", 0.3)
    with pytest.raises(PeerUnavailable, match="the DBOS script took over 0 s"):
        asyncio.run(run_dbos_sleepers(env, 10, 5))


def test_dbos_unavailable_is_reported_as_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable() -> PeerEnv:
        raise PeerUnavailable("installing dbos==3.4.0 failed: PyPI unreachable")

    monkeypatch.setattr(sleepers_peer, "ensure_peer", unavailable)
    out = _ours()
    asyncio.run(measure_dbos(out, make_plan(True, None), 2050))
    assert out.skipped == ["DBOS not run: installing dbos==3.4.0 failed: PyPI unreachable"]
    assert out.peer == {} and out.comparisons == []


# -- the command -------------------------------------------------------------------------------


def test_plan_runs_fewer_dbos_sleepers() -> None:
    quick, full = make_plan(True, None), make_plan(False, None)
    assert (quick.sleepers_dbos, full.sleepers_dbos) == (200, 2_000)
    assert quick.sleepers_dbos < quick.sleepers and full.sleepers_dbos < full.sleepers


def test_peers_with_sleepers_run_dbos_inside_the_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    alone = select(["sleepers"], peers="dbos")
    assert alone.suites == ("sleepers",) and alone.peer == "dbos"
    seen: list[str | None] = []

    async def fake_suite(plan: Any, peer: str | None = None) -> SuiteResult:
        seen.append(peer)
        return SuiteResult("sleepers")

    monkeypatch.setattr(command, "run_sleepers_suite", fake_suite)
    for peers in ("dbos", None):
        planned = prepare(BenchOptions(scenarios=["sleepers"], stores=["sqlite"], peers=peers))
        assert planned.units == [("sleepers", "sqlite")]
        asyncio.run(run_unit("sleepers", "sqlite", planned))
    assert seen == ["dbos", None]
