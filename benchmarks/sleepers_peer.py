"""DBOS beside the ``sleepers`` suite: its raw figures as rows, and actorflow/DBOS comparisons.

``peers/dbos_sleepers.py`` runs in the peer venv and writes raw figures (seconds, bytes);
this module turns them into rows of the suite's units and pairs them with actorflow's. DBOS
starts far fewer workflows a second, so it runs fewer of them (``Plan.sleepers_dbos``): the
comparisons are of per-run figures and rates, and recovery time per 1,000 runs, never totals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .config import Plan
from .model import Comparison, Row, SuiteResult
from .peers.process import RESULT, run_for_result
from .peers.venv import PeerEnv, PeerUnavailable, ensure_peer
from .progress import say

SCRIPT = Path(__file__).resolve().parent / "peers" / "dbos_sleepers.py"
RUN_TIMEOUT = 2400.0
PER = 1000
COMPARED = ("sleepers_start", "sleepers_rss", "sleeper_live_bytes", "sleepers_recovery_per_1k")
NO_PASSIVATION = (
    "DBOS sleeper_passive_bytes not applicable: DBOS has no passivation, a sleeping workflow "
    "stays a coroutine awaiting asyncio.sleep in its worker until it wakes"
)
DBOS_NOTES = (
    "DBOS: an async workflow awaiting DBOS.sleep_async(3600), started with "
    "DBOS.start_workflow_async, 1,000 at once per round, on a SQLite system database; a "
    "workflow sleeps once its event loop holds the hour-long timer DBOS.sleep_async arms "
    "after recording the sleep (the loop's timers are counted). Recovery: the process that "
    "started them exits without shutting DBOS down, a new process launches DBOS on the same "
    "file (DBOS re-enqueues pending workflows on its internal queue, polled once a second), "
    "timed until every workflow sleeps again.",
)


def per_thousand(seconds: float, runs: int) -> float:
    """``seconds`` for ``runs`` runs, scaled to 1,000 runs."""
    if runs <= 0:
        raise ValueError(f"runs must be positive, got {runs}")
    return seconds * PER / runs


def _row(scenario: str, size: int, unit: str, value: float, engine: str) -> Row:
    return Row(
        suite="sleepers",
        store="sqlite",
        scenario=scenario,
        size=size,
        unit=unit,
        median=value,
        p95=None,
        samples=1,
        engine=engine,
    )


def per_thousand_row(recovery: Row, runs: int) -> Row:
    """The recovery row ``recovery`` (seconds for ``runs`` runs) normalized per 1,000 runs."""
    row = _row(
        "sleepers_recovery_per_1k",
        runs,
        "s/1k runs",
        per_thousand(recovery.median, runs),
        recovery.engine,
    )
    row.extra["detail"] = f"normalized: recovery seconds * 1,000 / {runs:,} runs recovered"
    return row


def dbos_rows(raw: Mapping[str, Any]) -> tuple[list[Row], list[str]]:
    """DBOS's rows from the script's raw figures, and what was not run (with why)."""
    started, m = int(raw["n"]), int(raw["m"])
    n = started + int(raw["warm"])  # every workflow in the file is recovered
    rows: list[Row] = []
    skipped: list[str] = []
    fleet, recover, live = raw["fleet"], raw["recover"], raw["live"]
    if "error" in fleet:
        skipped.append(f"DBOS sleepers_start and sleepers_rss not run: {fleet['error']}")
    else:
        rate = started / float(fleet["start_s"])
        rows.append(_row("sleepers_start", started, "runs/s", rate, "dbos"))
        rows[-1].rate = rate
        rows.append(_row("sleepers_rss", started, "KiB/run", fleet["rss_per_run"] / 1024, "dbos"))
    if "error" in recover or "timeout" in recover:
        why = recover.get("error") or recover.get("timeout")
        skipped.append(f"DBOS sleepers_recovery not run: {why}")
    else:
        rows.append(_row("sleepers_recovery", started, "s", float(recover["recovery_s"]), "dbos"))
        rows.append(per_thousand_row(rows[-1], n))
    if "error" in live:
        skipped.append(f"DBOS sleeper_live_bytes not run: {live['error']}")
    else:
        rows.append(_row("sleeper_live_bytes", m, "bytes/run", float(live["live_bytes"]), "dbos"))
    skipped.append(NO_PASSIVATION)
    return rows, skipped


def compare_sleepers(ours: Sequence[Row], theirs: Sequence[Row]) -> list[Comparison]:
    """ours/DBOS for each scenario of :data:`COMPARED` both have, whatever their counts
    (per-run figures and rates; ``size`` is None since the counts differ)."""
    peer = {r.scenario: r for r in theirs}
    out: list[Comparison] = []
    for row in ours:
        other = peer.get(row.scenario)
        if row.scenario not in COMPARED or other is None:
            continue
        out.append(
            Comparison(
                scenario=row.scenario,
                size=None,
                store=row.store,
                unit=row.unit,
                ours_median=row.median,
                ours_p95=None,
                peer_median=other.median,
                peer_p95=None,
                better="higher" if row.unit == "runs/s" else "lower",
            )
        )
    return out


async def run_dbos_sleepers(env: PeerEnv, n: int, m: int) -> dict[str, Any]:
    """``dbos_sleepers.py`` in the peer venv on SQLite; its raw figures."""

    def command(directory: Path, _: str) -> list[str]:
        command = [str(env.python), str(SCRIPT), "--dir", str(directory)]
        return [*command, "--out", str(directory / RESULT), "--n", str(n), "--m", str(m)]

    return await run_for_result("dbos", "sqlite", None, command, RUN_TIMEOUT)


def add_dbos(out: SuiteResult, result: Mapping[str, Any], runs: int) -> None:
    """DBOS's rows, the per-1,000 rows and the comparisons into ``out`` (which holds
    actorflow's rows; ``runs``: how many of ours the recovery reopened)."""
    theirs, skipped = dbos_rows(result["raw"])
    ours = list(out.rows)
    recovery = next((r for r in ours if r.scenario == "sleepers_recovery"), None)
    if recovery is not None:
        out.rows.append(per_thousand_row(recovery, runs))
        ours.append(out.rows[-1])
    out.rows.extend(theirs)
    out.skipped.extend(skipped)
    out.comparisons.extend(compare_sleepers(ours, theirs))
    raw = result["raw"]
    out.notes.extend(DBOS_NOTES)
    out.notes.append(
        f"DBOS runs {int(raw['n']):,} sleeping workflows (tracemalloc over {int(raw['m']):,}), "
        "far fewer than actorflow: it starts far fewer a second. Compare per-run figures and "
        "rates (and recovery per 1,000 runs: it includes each engine's fixed cost of opening "
        "the store, which weighs more at a small count), not totals."
    )


async def measure_dbos(out: SuiteResult, plan: Plan, runs: int) -> None:
    """Measure DBOS and add it to ``out``; if it cannot run, say why (never a zero)."""
    try:
        env = await asyncio.to_thread(ensure_peer)
        out.peer = {
            "name": "DBOS",
            "package": f"{env.package}=={env.version}",
            "venv": str(env.venv),
            "mode": "async workflow awaiting DBOS.sleep_async, DBOS.start_workflow_async",
        }
        n, m = plan.sleepers_dbos, min(plan.sleepers_traced, plan.sleepers_dbos // 2)
        say(f"sleepers: DBOS, {n:,} workflows")
        result = await run_dbos_sleepers(env, n, m)
    except (PeerUnavailable, OSError, ValueError) as exc:
        out.skipped.append(f"DBOS not run: {exc}")
        say(f"sleepers: DBOS not run: {exc}")
        return
    add_dbos(out, result, runs)
