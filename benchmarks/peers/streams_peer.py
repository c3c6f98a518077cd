"""DBOS beside the streams suite: ``dbos_streams.py`` run in DBOS's venv, once per round.

The script measures the streams scenarios with DBOS's streams (``DBOS.write_stream_async`` in
steps, ``DBOS.read_stream_async`` readers) on fresh system databases (new SQLite files, or new
PostgreSQL schemas dropped here afterwards) and writes raw samples in seconds under the names
of :class:`~benchmarks.stream_bench.StreamRaw`'s fields, and what it could not run.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .process import RESULT, run_for_result, store_arguments
from .venv import PeerEnv, PeerUnavailable

if TYPE_CHECKING:
    from ..stream_bench import StreamSizes

SCRIPT = Path(__file__).resolve().parent / "dbos_streams.py"
RUN_TIMEOUT = 1800.0


@dataclass
class DbosStreams:
    """One round of the script: raw samples (seconds) by field, and why a scenario failed."""

    raw: dict[str, list[float]] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)


def command_line(
    env: PeerEnv,
    kind: str,
    postgres: str | None,
    scenarios: Collection[str],
    sizes: StreamSizes,
    directory: Path,
    prefix: str,
) -> list[str]:
    """The script's command line for ``scenarios`` at ``sizes`` on ``kind``."""
    command = [str(env.python), str(SCRIPT), "--store", kind]
    command += ["--scenarios", ",".join(sorted(scenarios))]
    command += ["--total", str(sizes.total), "--chunk", str(sizes.chunk)]
    command += ["--ttfb-samples", str(sizes.ttfb_samples), "--repeat", str(sizes.repeat)]
    command += ["--streams", str(sizes.streams), "--stages", str(sizes.stages)]
    command += ["--out", str(directory / RESULT)]
    return [*command, *store_arguments(kind, postgres, directory, prefix)]


def parse_result(result: Mapping[str, Any], fields: Collection[str]) -> DbosStreams:
    """The script's JSON as :class:`DbosStreams`, keeping only ``fields`` (a field it
    names that is not one of them is an error: the script and the suite disagree)."""
    raw = dict(result.get("raw", {}))
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise PeerUnavailable(f"the DBOS streams script wrote unknown samples {unknown}")
    samples = {name: [float(x) for x in values] for name, values in raw.items()}
    not_run = {str(k): str(v) for k, v in dict(result.get("not_run", {})).items()}
    return DbosStreams(samples, not_run)


async def run_dbos_streams(
    env: PeerEnv,
    kind: str,
    postgres: str | None,
    scenarios: Collection[str],
    sizes: StreamSizes,
    fields: Collection[str],
) -> DbosStreams:
    """Run ``dbos_streams.py`` on ``kind``; :class:`PeerUnavailable` if it fails or hangs."""

    def command(directory: Path, prefix: str) -> list[str]:
        return command_line(env, kind, postgres, scenarios, sizes, directory, prefix)

    what = "the DBOS streams script"
    result = await run_for_result("doss", kind, postgres, command, RUN_TIMEOUT, what)
    return parse_result(result, fields)
