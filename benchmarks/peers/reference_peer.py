"""DBOS beside the reference suite: one process per store in DBOS's venv, a round at a time.

``dbos_reference.py`` is started once per store kind in the peer venv, on a fresh system
database (a new SQLite file, or a new PostgreSQL schema dropped afterwards), so its rounds
after the first run warm, as ours do. Each round is a line of JSON on its stdin (the cases);
its answer is a line on stdout after the script's result mark: raw samples keyed like
:class:`~benchmarks.reference_cases.RefSamples`, and the cases it could not express or that
failed, with why. A case DBOS could not run is reported, never counted as zero; if the script
dies or hangs, no later round of that store runs for DBOS and the reason is reported.
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
from types import TracebackType
from typing import Any

from ..reference_cases import Case, RefSamples
from ..stores import drop_schemas_with_prefix, scratch_name
from .process import store_arguments
from .venv import PeerEnv, PeerUnavailable

SCRIPT = Path(__file__).resolve().parent / "dbos_reference.py"
RESULT_MARK = "@@dbos-reference-round "
"""What starts a round's result line on the script's stdout (its ``RESULT_MARK``)."""
ROUND_TIMEOUT = 900.0
CLOSE_TIMEOUT = 60.0


def script_command(
    env: PeerEnv, kind: str, postgres: str | None, directory: Path, prefix: str
) -> list[str]:
    """The command line of the script serving rounds on ``kind``."""
    command = [str(env.python), str(SCRIPT), "--store", kind]
    return [*command, *store_arguments(kind, postgres, directory, prefix)]


@dataclass
class DbosRounds:
    """DBOS's rounds on one store, in one process: use ``async with``, then call it with each
    round's cases. What it could not run, and why, is gathered as it comes."""

    env: PeerEnv
    kind: str
    postgres: str | None
    reasons: dict[str, str] = field(default_factory=dict)
    """Why a case was not measured, by the case's name and size (``ref_race_noop n=10``)."""
    broken: str | None = None
    """Why the script stopped, after which no round runs."""
    version: str = ""
    _process: asyncio.subprocess.Process | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None
    _prefix: str = ""

    async def __aenter__(self) -> DbosRounds:
        self._tmp = tempfile.TemporaryDirectory(prefix="actorflow-bench-dbosref-")
        self._prefix = scratch_name("bench_dbosref")
        try:
            command = script_command(
                self.env, self.kind, self.postgres, Path(self._tmp.name), self._prefix
            )
            environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            self._process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=sys.stderr,
                env=environment,
                limit=2**26,
            )
        except (PeerUnavailable, OSError) as exc:
            self.broken = str(exc)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        try:
            if process is not None:
                await _stop(process)
        finally:
            if self.kind == "postgres" and self.postgres is not None and self._prefix:
                await drop_schemas_with_prefix(self.postgres, self._prefix)
            if self._tmp is not None:
                self._tmp.cleanup()

    async def __call__(self, cases: Sequence[Case]) -> RefSamples:
        """One round of ``cases`` (none once the script has stopped)."""
        if self.broken is not None or self._process is None:
            return RefSamples()
        try:
            result = await asyncio.wait_for(self._ask(cases), ROUND_TIMEOUT)
        except TimeoutError:
            self.broken = f"a round took over {ROUND_TIMEOUT:.0f} s"
            await _stop(self._process)
            return RefSamples()
        except PeerUnavailable as exc:
            self.broken = str(exc)
            return RefSamples()
        self.version = str(result.get("version", self.version))
        by_key = {c.key: c for c in cases}
        for key, why in dict(result.get("not_run", {})).items():
            case = by_key.get(key)
            label = key if case is None else f"{case.name} n={case.size}"
            self.reasons.setdefault(label, str(why))
        return RefSamples.from_json(result)

    async def _ask(self, cases: Sequence[Case]) -> dict[str, Any]:
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write((json.dumps([c.to_json() for c in cases]) + "\n").encode())
            await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # it died: its exit code is read below
        while line := await process.stdout.readline():
            text = line.decode(errors="replace")
            if text.startswith(RESULT_MARK):
                answer: dict[str, Any] = json.loads(text[len(RESULT_MARK) :])
                return answer
            sys.stderr.write(text)  # DBOS's own output
        code = await process.wait()
        raise PeerUnavailable(f"the DBOS script exited with code {code} (its output is above)")

    def skipped(self) -> list[str]:
        """What was not measured on DBOS, with why."""
        out = [f"{self.kind}: DBOS: {label}: {why}" for label, why in self.reasons.items()]
        if self.broken is not None:
            out.append(f"{self.kind}: DBOS stopped: {self.broken}")
        return out


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Ask the script to end (an empty line, then the end of its stdin); kill it if it hangs."""
    if process.returncode is None and process.stdin is not None:
        try:
            process.stdin.write(b"\n")
            process.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass
    try:
        await asyncio.wait_for(process.wait(), CLOSE_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
