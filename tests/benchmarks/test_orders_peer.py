"""DBOS beside the orders suite: the script's usage, its recorded JSON, the rounds, the report.

Nothing here runs DBOS: the script is run by this interpreter (which has no DBOS) to check it
exits cleanly, its result is a recorded JSON document, and the suite's DBOS step is a fake.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import orders_bench
from benchmarks.config import make_plan
from benchmarks.model import SuiteResult
from benchmarks.orders_bench import Sample, rows_of, run_orders_suite
from benchmarks.peers import turns
from benchmarks.peers.dbos_common import Target
from benchmarks.peers.orders_peer import SCRIPT, command_line, parse_result, run_dbos_orders
from benchmarks.peers.venv import PeerEnv, PeerUnavailable
from benchmarks.report import markdown
from benchmarks.rounds import shares
from benchmarks.selection import select

from .synthetic_results import info

ENV = PeerEnv("dbos", "3.4.0", Path("/nowhere/dbos"))
PLAN = dataclasses.replace(make_plan(True, None), orders=4, orders_repeat=3)
RECORDED: dict[str, Any] = {  # what dbos_orders.py wrote for 50 orders, twice, on SQLite
    "engine": "dbos",
    "version": "3.4.0",
    "python": "3.11.7",
    "mode": "async workflow of async steps",
    "raw": {"orders": 50, "samples": [[6.609, 15.573], [8.182, 17.003]]},
    "not_run": {},
}


def script(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The DBOS script run by this interpreter, which has no DBOS."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "o.json"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_dbos_script_exits_cleanly_without_dbos(tmp_path: Path) -> None:
    done = script(tmp_path, "--store", "sqlite", "--dir", str(tmp_path), "--orders", "5")
    assert "--repeat" in done.stderr and done.returncode == 2  # required
    done = script(
        tmp_path, "--store", "sqlite", "--dir", str(tmp_path), "--orders", "5", "--repeat", "1"
    )
    assert done.returncode == 2
    assert "dbos_orders: DBOS is not installed for" in done.stderr
    assert "peer venv's interpreter" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "o.json").exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--store", "sqlite", "--orders", "5", "--repeat", "1"], "--store sqlite needs --dir"),
        (["--store", "postgres", "--orders", "5", "--repeat", "1"], "--store postgres needs --dsn"),
        (["--store", "sqlite", "--dir", ".", "--orders", "0", "--repeat", "1"], "at least 1"),
    ],
)
def test_the_dbos_script_says_what_it_needs(tmp_path: Path, args: list[str], said: str) -> None:
    done = script(tmp_path, *args)
    assert done.returncode == 2 and said in done.stderr


def test_the_script_command_line_on_each_store(tmp_path: Path) -> None:
    sqlite = command_line(ENV, "sqlite", None, 50, 2, tmp_path, "p")
    assert sqlite[:2] == [str(ENV.python), str(SCRIPT)]
    assert sqlite[2:] == [
        *("--store", "sqlite", "--orders", "50", "--repeat", "2"),
        *("--out", str(tmp_path / "result.json"), "--dir", str(tmp_path)),
    ]
    url = "postgresql://postgres@127.0.0.1:1/db"
    postgres = command_line(ENV, "postgres", url, 50, 2, tmp_path, "bench_doso_1")
    assert postgres[-4:] == ["--dsn", url, "--schema-prefix", "bench_doso_1"]
    with pytest.raises(PeerUnavailable, match="no PostgreSQL URL"):
        command_line(ENV, "postgres", None, 50, 2, tmp_path, "p")


def test_recorded_samples_are_summarized_by_the_suites_code() -> None:
    samples = parse_result(RECORDED, 50)
    assert samples == [(6.609, 15.573), (8.182, 17.003)]
    cpu, rate = rows_of("sqlite", 50, samples, engine="dbos")
    assert (cpu.engine, cpu.unit, cpu.samples) == ("dbos", "CPU ms/order", 2)
    assert cpu.median == pytest.approx(8.182 / 50 * 1000)  # the upper of two, as ours
    assert cpu.p95 == pytest.approx(8.182 / 50 * 1000)
    assert rate.unit == "orders/s" and rate.median == pytest.approx(50 / 15.573)
    assert cpu.target is None and rate.target is None


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"not_run": {"orders": "OperationalError: database is locked"}}, "database is locked"),
        ({"raw": {"orders": 20, "samples": [[1.0, 1.0]]}}, "ran 20 orders, not 50"),
        ({"raw": {"orders": 50, "samples": []}}, "no samples"),
        ({"raw": {"orders": 50, "samples": [[0.0, 1.0]]}}, "not positive"),
    ],
)
def test_a_result_dbos_did_not_run_is_refused(change: dict[str, Any], said: str) -> None:
    with pytest.raises(PeerUnavailable, match=said):
        parse_result({**RECORDED, **change}, 50)


def fake_env(tmp_path: Path, body: str) -> PeerEnv:
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\n{body}\n")
    python.chmod(0o755)
    return PeerEnv("dbos", "3.4.0", tmp_path / "venv")


def test_a_dbos_script_that_fails_is_unavailable(tmp_path: Path) -> None:
    env = fake_env(tmp_path, f'exec {sys.executable} "$@"')  # no DBOS: exits 2
    with pytest.raises(PeerUnavailable, match="exited with code 2"):
        asyncio.run(run_dbos_orders(env, "sqlite", None, 5, 1))


def test_a_dbos_script_writing_a_recorded_result_is_read(tmp_path: Path) -> None:
    recorded = json.dumps({**RECORDED, "raw": {"orders": 5, "samples": [[0.5, 1.0]]}})
    (tmp_path / "recorded.json").write_text(recorded)
    body = f'while [ "$1" != --out ]; do shift; done; cp {tmp_path / "recorded.json"} "$2"'
    env = fake_env(tmp_path, body)
    assert asyncio.run(run_dbos_orders(env, "sqlite", None, 5, 1)) == [(0.5, 1.0)]


# -- the suite -------------------------------------------------------------------------------


def fake_dbos(
    monkeypatch: pytest.MonkeyPatch, fail_in_round: int | None = None
) -> list[tuple[str, int]]:
    """DBOS made up: each round's repetitions as CPU 0.4 s and wall 1 s for the orders."""
    monkeypatch.setattr(turns, "ensure_peer", lambda: ENV)
    calls: list[tuple[str, int]] = []

    async def run(
        env: PeerEnv, kind: str, postgres: str | None, orders: int, repeat: int
    ) -> list[Sample]:
        calls.append((kind, repeat))
        if fail_in_round == len(calls):
            raise PeerUnavailable("the DBOS script exited with code 1 (its output is above)")
        return [(0.4, 1.0)] * repeat

    monkeypatch.setattr(orders_bench, "run_dbos_orders", run)
    return calls


def test_dbos_takes_turns_and_each_figure_is_ours_theirs_and_the_ratio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = fake_dbos(monkeypatch)
    out = asyncio.run(run_orders_suite(PLAN, ["sqlite"], None, "dbos"))
    assert out.errors == [] and out.skipped == []
    assert calls == [("sqlite", 1)] * 3  # three rounds of one repetition
    engines = sorted((r.engine, r.scenario, r.samples) for r in out.rows)
    assert engines == [
        ("actorflow", "order_cpu", 3),
        ("actorflow", "order_rate", 3),
        ("dbos", "order_cpu", 3),
        ("dbos", "order_rate", 3),
    ]
    by = {c.scenario: c for c in out.comparisons}
    assert by["order_cpu"].peer_median == pytest.approx(100.0)  # 0.4 s / 4 orders
    assert by["order_cpu"].better == "lower"
    assert by["order_rate"].peer_median == pytest.approx(4.0)
    assert by["order_rate"].better == "higher"
    assert out.peer["name"] == "DBOS" and any("DBOS.recv_async" in n for n in out.notes)


def test_the_rounds_alternate_who_goes_first() -> None:
    order: list[str] = []

    async def ours(part: int) -> int:
        order.append(f"ours{part}")
        return part

    async def theirs(part: int) -> int:
        order.append(f"dbos{part}")
        return part

    done = asyncio.run(turns.take_turns("t", [1, 2, 3], ours, theirs))
    assert order == ["ours1", "dbos1", "dbos2", "ours2", "ours3", "dbos3"]
    assert done.ours == done.theirs == [1, 2, 3] and done.peer_ran


def test_repetitions_are_split_over_the_rounds() -> None:
    assert shares(3, 3) == [1, 1, 1]
    assert shares(7, 3) == [3, 2, 2]
    assert shares(1, 3) == [1]
    assert shares(0, 3) == [0]
    with pytest.raises(ValueError, match="repetitions must be at least 0, got -1"):
        shares(-1, 3)


def test_dbos_failing_mid_run_is_not_run_with_why_and_ours_stay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = fake_dbos(monkeypatch, fail_in_round=2)
    out = asyncio.run(run_orders_suite(PLAN, ["sqlite"], None, "dbos"))
    assert len(calls) == 2  # DBOS is not run again after it failed
    assert out.skipped == [
        "sqlite: DBOS not run: the DBOS script exited with code 1 (its output is above)"
    ]
    assert {r.engine for r in out.rows} == {"actorflow"} and out.comparisons == []
    assert all(r.samples == 3 and r.median > 0 for r in out.rows)


def test_dbos_unavailable_is_said_and_ours_still_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable() -> PeerEnv:
        raise PeerUnavailable("installing dbos==3.4.0 failed: PyPI unreachable")

    monkeypatch.setattr(turns, "ensure_peer", unavailable)
    out = asyncio.run(run_orders_suite(PLAN, ["memory"], None, "dbos"))
    assert out.skipped == [
        "DBOS is unavailable, so it was not measured: installing dbos==3.4.0 failed: "
        "PyPI unreachable"
    ]
    assert [r.engine for r in out.rows] == ["actorflow", "actorflow"] and out.peer == {}


def test_dbos_has_no_memory_store(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_dbos(monkeypatch)
    out = asyncio.run(run_orders_suite(PLAN, ["memory"], None, "dbos"))
    assert calls == [] and out.skipped == ["memory: DBOS has no memory store; actorflow only"]
    assert out.rows[0].samples == 3  # without DBOS, one round of every repetition


def test_the_orders_suite_measures_dbos_itself() -> None:
    assert select(["orders"], "dbos").suites == ("orders",)


def test_the_report_puts_the_comparison_first(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dbos(monkeypatch)
    out: SuiteResult = asyncio.run(run_orders_suite(PLAN, ["sqlite"], None, "dbos"))
    text = markdown([out], info())
    assert "| order_cpu | 4 | sqlite | CPU ms/order |" in text
    assert text.index("actorflow/DBOS") < text.index("| engine |")


def test_each_dbos_system_database_is_fresh(tmp_path: Path) -> None:
    sqlite = Target("orders", "sqlite", tmp_path, None, "p", log_level="ERROR")
    first, second = sqlite.config(), sqlite.config()
    assert first["system_database_url"] == f"sqlite:///{tmp_path / 'dbos-orders-1.sqlite'}"
    assert second["system_database_url"].endswith("dbos-orders-2.sqlite")
    assert first["log_level"] == "ERROR" and first["name"] == "actorflow-bench-orders"
    postgres = Target("orders", "postgres", None, "postgresql://h/db", "bench_doso_x")
    config = postgres.config()
    assert config["dbos_system_schema"] == "bench_doso_x_1" and config["log_level"] == "WARNING"


@pytest.mark.parametrize(
    ("store", "said"),
    [("sqlite", "--store sqlite needs --dir"), ("mysql", "unknown store 'mysql'")],
)
def test_a_target_without_what_its_store_needs_is_refused(store: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        Target("orders", store, None, None, "p")
