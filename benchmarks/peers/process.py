"""Running a peer's script in its own venv: bounded in time, its failures reported, not raised
as anything but :class:`~benchmarks.peers.venv.PeerUnavailable`; on a scratch directory and
PostgreSQL schema prefix of its own, cleaned up after (:func:`run_for_result`)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..stores import drop_schemas_with_prefix, postgres_dsn, scratch_name
from .venv import PeerUnavailable

RESULT = "result.json"
"""The file in its scratch directory a script writes its result to (its ``--out``)."""


async def run_script(command: Sequence[str], timeout: float, what: str = "the DBOS script") -> None:
    """Run ``command`` (a peer venv's interpreter and script; this process's PYTHONPATH left
    out, its output on our stderr) for at most ``timeout`` seconds; ``PeerUnavailable`` if it
    hangs (it is killed) or exits with an error."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    process = await asyncio.create_subprocess_exec(
        *command, stdout=sys.stderr, stderr=sys.stderr, env=environment
    )
    try:
        code = await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise PeerUnavailable(f"{what} took over {timeout:.0f} s") from None
    if code != 0:
        raise PeerUnavailable(f"the DBOS script exited with code {code} (its output is above)")


def store_arguments(kind: str, postgres: str | None, directory: Path, prefix: str) -> list[str]:
    """A DBOS script's store flags (``dbos_common.add_store_arguments``): its SQLite files in
    ``directory``, or its PostgreSQL schemas named from ``prefix``."""
    if kind == "sqlite":
        return ["--dir", str(directory)]
    if postgres is None:
        raise PeerUnavailable("no PostgreSQL URL for DBOS")
    return ["--dsn", postgres_dsn(postgres), "--schema-prefix", prefix]


async def run_for_result(
    tag: str,
    kind: str,
    postgres: str | None,
    command_for: Callable[[Path, str], Sequence[str]],
    timeout: float,
    what: str = "the DBOS script",
) -> dict[str, Any]:
    """Run ``command_for(directory, prefix)`` (see :func:`run_script`) with a fresh scratch
    directory and schema prefix named by ``tag``; the JSON it wrote to ``directory/RESULT``.
    Its schemas are dropped afterwards, whatever happened."""
    prefix = scratch_name(f"bench_{tag}")
    with tempfile.TemporaryDirectory(prefix=f"actorflow-bench-{tag}-") as tmp:
        try:
            await run_script(command_for(Path(tmp), prefix), timeout, what)
        finally:
            if kind == "postgres" and postgres is not None:
                await drop_schemas_with_prefix(postgres, prefix)
        result: dict[str, Any] = json.loads((Path(tmp) / RESULT).read_text())
    return result
