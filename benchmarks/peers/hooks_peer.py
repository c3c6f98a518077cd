"""DBOS beside the hooks suite: ``dbos_hooks.py`` run in DBOS's venv for each turn DBOS takes
(a scenario's share of the samples in one round, ``--samples``).

The script measures the hooks suite's scenarios with DBOS's equivalent of a hook (a workflow
parked in ``DBOS.recv_async``, woken by ``send_async``) on fresh system databases (new SQLite
files, or new PostgreSQL schemas dropped here afterwards) and writes raw samples in seconds,
keyed by scenario like :class:`~benchmarks.hook_bench.HookSamples`, and what it could not run.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .process import RESULT, run_for_result, store_arguments
from .venv import PeerEnv

SCRIPT = Path(__file__).resolve().parent / "dbos_hooks.py"
RUN_TIMEOUT = 900.0


@dataclass
class DbosHooks:
    """What the script measured on one store: raw samples by scenario (``to_step``,
    ``to_workflow``, ``call``: lists of seconds), and why a scenario was not run."""

    raw: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)
    version: str = ""


def command_line(
    env: PeerEnv,
    kind: str,
    postgres: str | None,
    scenarios: Collection[str],
    samples: int,
    warmup: int,
    directory: Path,
    prefix: str,
) -> list[str]:
    """The script's command line for ``scenarios`` on ``kind``, writing to ``directory``."""
    command = [str(env.python), str(SCRIPT), "--store", kind]
    command += ["--scenarios", ",".join(sorted(scenarios))]
    command += ["--samples", str(samples), "--warmup", str(warmup)]
    command += ["--out", str(directory / RESULT)]
    return [*command, *store_arguments(kind, postgres, directory, prefix)]


def parse_result(result: dict[str, Any]) -> DbosHooks:
    """The script's JSON as :class:`DbosHooks`."""
    raw = {
        scenario: {name: [float(x) for x in values] for name, values in parts.items()}
        for scenario, parts in dict(result.get("raw", {})).items()
    }
    not_run = {str(k): str(v) for k, v in dict(result.get("not_run", {})).items()}
    return DbosHooks(raw, not_run, str(result.get("version", "")))


async def run_dbos_hooks(
    env: PeerEnv,
    kind: str,
    postgres: str | None,
    scenarios: Collection[str],
    samples: int,
    warmup: int,
) -> DbosHooks:
    """Run ``dbos_hooks.py`` on ``kind``; :class:`PeerUnavailable` if it fails or hangs."""

    def command(directory: Path, prefix: str) -> list[str]:
        return command_line(env, kind, postgres, scenarios, samples, warmup, directory, prefix)

    return parse_result(await run_for_result("dbosh", kind, postgres, command, RUN_TIMEOUT))
