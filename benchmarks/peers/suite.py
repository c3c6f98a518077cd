"""The ``peers`` suite: actorflow and DBOS Transact on the same scenarios, stores and machine.

DBOS runs in its own venv (see :mod:`benchmarks.peers.venv`) through ``dbos_bench.py``;
its raw samples are summarized by the runtime suite's code, so both engines' numbers mean
the same thing. Each ratio is actorflow/DBOS of the medians.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from ..config import PEER_STORE_KINDS, Plan
from ..model import Comparison, Row, SuiteResult
from ..progress import say
from ..runtime_bench import RuntimeRaw, Scenarios, measure_actorflow, stso_series, summarize
from ..stores import skip_reason
from .process import RESULT, run_for_result, store_arguments
from .turns import peer_env
from .venv import PeerEnv, PeerUnavailable

SUITE = "peers"
SCRIPT = Path(__file__).resolve().parent / "dbos_bench.py"
RUN_TIMEOUT = 3600.0
COMPARED = ("ttfs", "seq_gap", "gather", "one_step_runs")


def compare(
    ours: Sequence[Row], peer: Sequence[Row], scenarios: Collection[str] = COMPARED
) -> list[Comparison]:
    """Pair rows of ``scenarios`` by scenario and size; ours/peer of each pair (higher is
    better for rates, units ending in ``/s``)."""
    theirs = {(r.scenario, r.size): r for r in peer}
    out: list[Comparison] = []
    for row in ours:
        other = theirs.get((row.scenario, row.size))
        if row.scenario not in scenarios or other is None:
            continue
        out.append(
            Comparison(
                scenario=row.scenario,
                size=row.size,
                store=row.store,
                unit=row.unit,
                ours_median=row.median,
                ours_p95=row.p95,
                peer_median=other.median,
                peer_p95=other.p95,
                better="higher" if row.unit.endswith("/s") else "lower",
            ).with_p99(row, other)
        )
    return out


async def run_dbos(
    env: PeerEnv, kind: str, postgres: str | None, scenarios: Scenarios
) -> tuple[RuntimeRaw, dict[str, Any]]:
    """Run ``dbos_bench.py`` in the peer venv on ``kind``; its raw samples and its metadata."""

    def command(directory: Path, prefix: str) -> list[str]:
        return [
            str(env.python),
            str(SCRIPT),
            "--store",
            kind,
            "--scenarios",
            json.dumps(scenarios.to_json()),
            "--out",
            str(directory / RESULT),
            *store_arguments(kind, postgres, directory, prefix),
        ]

    result = await run_for_result("dbos", kind, postgres, command, RUN_TIMEOUT)
    return RuntimeRaw.from_json(result["raw"]), result


ROUNDS = 3
"""Rounds the peers suite splits its repetitions into, actorflow and DBOS taking turns."""


async def alternate(
    env: PeerEnv, kind: str, postgres: str | None, scenarios: Scenarios
) -> tuple[RuntimeRaw, RuntimeRaw]:
    """actorflow's and DBOS's samples of ``scenarios`` on ``kind``, measured in rounds that
    take turns (actorflow, DBOS, actorflow, ...), so the machine's drift hits both."""
    ours, theirs = RuntimeRaw(), RuntimeRaw()
    rounds = scenarios.rounds(ROUNDS)
    for number, part in enumerate(rounds, start=1):
        say(f"peers: round {number} of {len(rounds)} on {kind}: actorflow, then DBOS")
        ours.extend(await measure_actorflow(kind, postgres, part))
        theirs.extend((await run_dbos(env, kind, postgres, part))[0])
    return ours, theirs


async def run_peers_suite(
    plan: Plan,
    stores: Sequence[str],
    postgres: str | None,
) -> SuiteResult:
    """actorflow beside DBOS on SQLite and PostgreSQL (those of ``stores`` that are peers')."""
    out = SuiteResult(SUITE)
    kinds = [k for k in stores if k in PEER_STORE_KINDS]
    if not kinds:
        out.skipped.append("no store to compare on: the peers suite runs on sqlite and postgres")
        return out
    env = await peer_env(out, "peers", "async workflows and async steps, DBOS.start_workflow_async")
    if env is None:
        return out
    scenarios = Scenarios.of(plan, plan.peer_gather_sizes, only=COMPARED)  # DBOS runs these
    out.notes.append(
        "Both engines run the same workflows (no-op steps; step bodies stamp perf_counter), "
        "the same warm-ups and repetitions, each scenario on a fresh database; ratio = "
        "actorflow/DBOS of the medians (below 1 is faster for latencies, above 1 for runs/s)."
    )
    out.notes.append(
        f"The repetitions are split into up to {ROUNDS} rounds; in each, actorflow runs every "
        "scenario, then DBOS does, so drift over the run hits both engines."
    )
    out.notes.append(
        "DBOS SQLite: its default rollback journal with SQLite's default synchronous=FULL; "
        "actorflow SQLite: WAL with synchronous=FULL. PostgreSQL: the same server and database, "
        "a fresh schema per scenario for each engine. DBOS defaults otherwise."
    )
    for kind in kinds:
        reason = await skip_reason(kind, postgres)
        if reason is not None:
            out.skipped.append(f"{kind}: {reason}")
            continue
        try:
            ours_raw, peer_raw = await alternate(env, kind, postgres, scenarios)
        except (PeerUnavailable, OSError) as exc:
            out.errors.append(f"{kind}: {exc}")
            say(f"peers {kind} failed: {exc}")
            continue
        ours_rows = summarize(kind, ours_raw, suite=SUITE, engine="actorflow")
        peer_rows = summarize(kind, peer_raw, suite=SUITE, engine="dbos")
        out.rows.extend(ours_rows + peer_rows)
        out.comparisons.extend(compare(ours_rows, peer_rows))
        for engine, raw in (("actorflow", ours_raw), ("dbos", peer_raw)):
            curve = stso_series(kind, raw, engine)
            if curve is not None:
                out.series.append(curve)
    return out
