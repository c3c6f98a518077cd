"""The ``focused`` suite: the costs a workflow pays around its steps, actorflow beside DBOS.

Scenarios (rows in ms with median and p95, a p99 from 100 samples; sizes in ``size``):

* ``wo_per_step`` / ``wo_total`` — workflow overhead: for a run of n sequential steps whose
  bodies stamp their entry and exit, the wall time (``start()`` → result) minus the summed
  body durations, per step and in total;
* ``fanout_first`` / ``fanout_last`` — a run gathering ``width`` no-op branches: from
  ``start()`` to the first branch's body ending, and to the last one's (also as series);
* ``concurrent_runs`` — n one-step runs started together, all results awaited: runs/s;
* ``recovery_next_step`` / ``recovery_result`` — a worker process is killed (SIGKILL) as the
  body of step n+1 of a run starts; a new worker opens the same store: from opening it to
  that body entering again, and to the run's result (SQLite and PostgreSQL only).

The suite runs in rounds; in each, every engine measures every scenario once on a fresh store,
the engines taking turns first, so drift over the run hits both alike. The gap by step index
(STSO) is the runtime and peers suites' ``stso`` series.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .config import PEER_STORE_KINDS, Plan
from .focused_measure import measure_round
from .focused_raw import SUITE, FocusedRaw, FocusedScenarios, fanout_series, summarize
from .focused_recovery import NOT_RECOVERABLE, RECOVERABLE
from .model import SuiteResult
from .peers.process import RESULT, run_for_result, store_arguments
from .peers.suite import compare
from .peers.turns import peer_env
from .peers.venv import PeerEnv, PeerUnavailable
from .progress import say
from .stores import skip_reason

SCRIPT = Path(__file__).resolve().parent / "peers" / "dbos_focused.py"
ROUND_TIMEOUT = 1800.0
COMPARED = (
    "wo_per_step",
    "wo_total",
    "fanout_first",
    "fanout_last",
    "concurrent_runs",
    "recovery_next_step",
    "recovery_result",
)
NOTES = (
    "Workflow overhead (wo) = wall time from start() to the result minus the time inside the "
    "step bodies (each stamps its entry and exit); fanout_first/last = from start() to the "
    "first/last branch body ending; concurrent_runs = one-step runs started together, all "
    "results awaited (p95: the rate of the slow-tail repetition).",
    "Recovery: a worker process runs the steps, then is killed (SIGKILL) as the next step's "
    "body starts; a new worker opens the store: times from opening it. One recovery a round, "
    "on a fresh store.",
    "Rounds: in each, every engine runs every scenario once on a fresh store (after a warm-up "
    "run per scenario and size; SQLite stores first run 1,500 steps), the engines taking "
    "turns first.",
)

DBOS_RECOVERY = (
    "DBOS recovers a pending workflow when it launches by re-enqueueing it on its internal "
    "queue, which its queue thread polls once a second by default (kept, as every DBOS "
    "default); the recovered workflow's result is read by a handle polling every 2 ms."
)


async def run_dbos_round(
    env: PeerEnv, kind: str, postgres: str | None, scenarios: FocusedScenarios
) -> FocusedRaw:
    """One round of ``dbos_focused.py`` in the peer venv on ``kind``; its raw samples."""

    def command(directory: Path, prefix: str) -> list[str]:
        command = [str(env.python), str(SCRIPT), "--store", kind, "--out", str(directory / RESULT)]
        command += ["--scenarios", json.dumps(scenarios.to_json())]
        return [*command, *store_arguments(kind, postgres, directory, prefix)]

    result = await run_for_result("dbosf", kind, postgres, command, ROUND_TIMEOUT, "a DBOS round")
    return FocusedRaw.from_json(result["raw"])


async def _peer(out: SuiteResult) -> PeerEnv | None:
    env = await peer_env(
        out, "focused", "async workflows and async steps, DBOS.start_workflow_async"
    )
    if env is not None:
        out.notes.append(DBOS_RECOVERY)
    return env


async def measure_kind(
    out: SuiteResult,
    kind: str,
    postgres: str | None,
    plan: Plan,
    env: PeerEnv | None,
) -> None:
    """Every round on ``kind``; rows, series and comparisons into ``out``."""
    scenarios = FocusedScenarios.of(plan)
    if kind not in RECOVERABLE:
        scenarios = scenarios.without_recovery()
        out.skipped.append(f"{kind}: {NOT_RECOVERABLE}")
    ours = FocusedRaw()
    theirs: FocusedRaw | None = FocusedRaw() if env is not None else None
    for index in range(plan.focused_rounds):
        engines = ["actorflow", "dbos"] if index % 2 == 0 else ["dbos", "actorflow"]
        for engine in engines:
            if engine == "actorflow":
                say(f"focused {kind}: round {index + 1}/{plan.focused_rounds}, actorflow")
                ours.extend(await measure_round(kind, postgres, scenarios))
            elif env is not None and theirs is not None:
                say(f"focused {kind}: round {index + 1}/{plan.focused_rounds}, DBOS")
                try:
                    theirs.extend(await run_dbos_round(env, kind, postgres, scenarios))
                except (PeerUnavailable, OSError) as exc:
                    out.errors.append(f"{kind}: DBOS: {exc}")
                    say(f"focused {kind} DBOS failed: {exc}")
                    theirs = None
    ours_rows = summarize(kind, ours)
    out.rows.extend(ours_rows)
    out.series.extend(fanout_series(kind, ours))
    if theirs is not None:
        peer_rows = summarize(kind, theirs, engine="dbos")
        out.rows.extend(peer_rows)
        out.series.extend(fanout_series(kind, theirs, engine="dbos"))
        out.comparisons.extend(compare(ours_rows, peer_rows, COMPARED))


async def run_focused_suite(
    plan: Plan, stores: Sequence[str], postgres: str | None, peer: str | None = None
) -> SuiteResult:
    """The focused scenarios on each store kind; with ``peer`` (``dbos``) DBOS beside them on
    SQLite and PostgreSQL."""
    out = SuiteResult(SUITE)
    out.notes.extend(NOTES)
    env = None
    if peer is not None and any(k in PEER_STORE_KINDS for k in stores):
        env = await _peer(out)
    for kind in stores:
        reason = await skip_reason(kind, postgres)
        if reason is not None:
            out.skipped.append(f"{kind}: {reason}")
            continue
        if peer is not None and kind not in PEER_STORE_KINDS:
            out.skipped.append(f"{kind}: DBOS not run: it has no {kind} store")
        try:
            await measure_kind(out, kind, postgres, plan, env if kind in PEER_STORE_KINDS else None)
        except Exception as exc:
            out.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            say(f"focused {kind} failed: {exc!r}")
    return out
