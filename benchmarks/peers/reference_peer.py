"""DBOS beside the reference suite: one round at a time in DBOS's venv, samples as ours.

Each round runs ``dbos_reference.py`` in the peer venv on a fresh system database (a new
SQLite file, or a new PostgreSQL schema dropped afterwards) with the cases of that round as
JSON; it answers with raw samples keyed like :class:`~benchmarks.reference_cases.RefSamples`,
plus the cases it could not express or that failed, with why. A case DBOS could not run is
reported, never counted as zero; if the script itself fails, the later rounds of that store
are not run for DBOS and the reason is reported.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..reference_cases import Case, RefSamples
from ..stores import drop_schemas_with_prefix, postgres_dsn, scratch_name
from .venv import PeerEnv, PeerUnavailable

SCRIPT = Path(__file__).resolve().parent / "dbos_reference.py"
ROUND_TIMEOUT = 900.0


async def run_dbos_round(
    env: PeerEnv, kind: str, postgres: str | None, cases: Sequence[Case]
) -> dict[str, Any]:
    """Run ``dbos_reference.py`` once on ``kind`` with ``cases``; its JSON result.

    Raises :class:`PeerUnavailable` if the script fails or hangs."""
    prefix = scratch_name("bench_dbosref")
    with tempfile.TemporaryDirectory(prefix="actorflow-bench-dbosref-") as tmp:
        out_path = Path(tmp) / "result.json"
        command = [
            str(env.python),
            str(SCRIPT),
            "--store",
            kind,
            "--cases",
            json.dumps([c.to_json() for c in cases]),
            "--out",
            str(out_path),
        ]
        if kind == "sqlite":
            command += ["--dir", tmp]
        else:
            if postgres is None:
                raise PeerUnavailable("no PostgreSQL URL for DBOS")
            command += ["--dsn", postgres_dsn(postgres), "--schema-prefix", prefix]
        environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        process = await asyncio.create_subprocess_exec(
            *command, stdout=sys.stderr, stderr=sys.stderr, env=environment
        )
        try:
            code = await asyncio.wait_for(process.wait(), ROUND_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise PeerUnavailable(f"the DBOS script took over {ROUND_TIMEOUT:.0f} s") from None
        finally:
            if kind == "postgres" and postgres is not None:
                await drop_schemas_with_prefix(postgres, prefix)
        if code != 0:
            raise PeerUnavailable(f"the DBOS script exited with code {code} (its output is above)")
        result: dict[str, Any] = json.loads(out_path.read_text())
    return result


@dataclass
class DbosRounds:
    """DBOS's rounds on one store: what it could not run, and why, gathered as they come."""

    env: PeerEnv
    kind: str
    postgres: str | None
    reasons: dict[str, str] = field(default_factory=dict)
    """Why a case was not measured, by the case's name and size (``ref_race_noop n=10``)."""
    broken: str | None = None
    """Why the script failed, after which no round runs."""
    version: str = ""

    async def __call__(self, cases: Sequence[Case]) -> RefSamples:
        """One round of ``cases`` (none once the script has failed)."""
        if self.broken is not None:
            return RefSamples()
        try:
            result = await run_dbos_round(self.env, self.kind, self.postgres, cases)
        except (PeerUnavailable, OSError) as exc:
            self.broken = str(exc)
            return RefSamples()
        self.version = str(result.get("version", self.version))
        by_key = {c.key: c for c in cases}
        for key, why in dict(result.get("not_run", {})).items():
            case = by_key.get(key)
            label = key if case is None else f"{case.name} n={case.size}"
            self.reasons.setdefault(label, str(why))
        return RefSamples.from_json(result)

    def skipped(self) -> list[str]:
        """What was not measured on DBOS, with why."""
        out = [f"{self.kind}: DBOS: {label}: {why}" for label, why in self.reasons.items()]
        if self.broken is not None:
            out.append(f"{self.kind}: DBOS stopped: {self.broken}")
        return out
