"""``actorflow bench``: run the chosen suites and scenarios, with progress, and report.

Each suite runs once per store kind (a unit), so progress can say which unit runs and how
many are done; the units' results are merged into one result per suite. A PostgreSQL kind
without a server is not run, and the report says why: ``actorflow bench`` never starts a
database. stdout gets the Markdown report (with the CLI's global ``--json``: the JSON
document instead); ``--json PATH`` writes the JSON to a file, ``--report DIR`` both files and
an HTML page with plots (:mod:`benchmarks.html_report`).
"""

from __future__ import annotations

import contextlib
import gc
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import PEER_STORE_KINDS, POSTGRES_ENV, Plan, make_plan, postgres_url
from .estimates import estimate
from .focused_bench import run_focused_suite
from .hook_bench import run_hooks_suite
from .html_report import REPORT_HTML, write_html
from .machine import postgres_version
from .model import SuiteResult
from .orders_bench import run_orders_suite
from .otel_bench import run_otel_suite
from .peers.suite import run_peers_suite
from .plots import INSTALL_HINT
from .progress import Progress, clock_text, say
from .reference_bench import run_reference_suite
from .report import ResultsFileError, from_json, markdown, meta, to_json, write_json
from .runtime_bench import run_runtime_suite
from .selection import Selection, SelectionError, StoreChoice, parse_store_args, select
from .sleepers_bench import run_sleepers_suite
from .store_bench import run_store_suite
from .stores import sqlite_synchronous, sqlite_writer, use_sqlite_synchronous, use_sqlite_writer
from .stream_bench import run_streams_suite

REPORT_MARKDOWN = "report.md"
REPORT_JSON = "results.json"
NO_POSTGRES = (
    "not run: no PostgreSQL server given (--store postgresql://USER@HOST:PORT/DB or "
    f"${POSTGRES_ENV}); actorflow bench does not start one"
)
KINDS_OF = {"peers": PEER_STORE_KINDS, "sleepers": ("sqlite",)}
"""Suites that run on some store kinds only (the others run on every kind)."""
WHY_NOT = {
    "peers": "no store to compare on: the peers suite runs on sqlite and postgres",
    "sleepers": "the sleepers suite runs on SQLite only (--store sqlite)",
}


@dataclass(frozen=True)
class BenchOptions:
    """What the command line asked for."""

    scenarios: Sequence[str] = ()
    stores: Sequence[str] = ()
    peers: str | None = None
    quick: bool = False
    sqlite_synchronous: str = "full"
    """The ``synchronous`` level of the SQLite stores measured (``full`` or ``normal``)."""
    sqlite_writer: str = "thread"
    """Where the SQLite stores measured run their writes (``thread`` or ``loop``)."""
    gc_threshold: tuple[int, ...] | None = None
    """The cycle collector's thresholds to measure with (``gc.set_threshold``), if not the
    default ones."""
    json_path: Path | None = None
    report_dir: Path | None = None
    json_stdout: bool = False
    argv: Sequence[str] = ()
    from_path: Path | None = None
    """Render the results of an earlier run from this file instead of measuring."""


@dataclass
class Planned:
    """The units to run, and what is reported as not run before anything runs."""

    selection: Selection
    stores: StoreChoice
    plan: Plan
    units: list[tuple[str, str]] = field(default_factory=list)
    not_run: dict[str, list[str]] = field(default_factory=dict)


def prepare(options: BenchOptions) -> Planned:
    """Check the options and plan the units; :class:`~benchmarks.selection.SelectionError`
    on an unknown scenario, store or peer, before anything runs."""
    selection = select(options.scenarios, options.peers)
    stores = parse_store_args(options.stores, postgres_url(None))
    out = Planned(selection, stores, make_plan(options.quick, None))
    for suite in selection.suites:
        kinds = [k for k in stores.kinds if k in KINDS_OF.get(suite, stores.kinds)]
        skipped = out.not_run.setdefault(suite, [])
        if not kinds:
            skipped.append(WHY_NOT[suite])
        for kind in kinds:
            if kind == "postgres" and stores.postgres is None:
                skipped.append(f"postgres: {NO_POSTGRES}")
            else:
                out.units.append((suite, kind))
    return out


async def run_unit(suite: str, kind: str, planned: Planned) -> SuiteResult:
    """One suite on one store kind."""
    plan, stores, postgres = planned.plan, (kind,), planned.stores.postgres
    if suite == "store":
        return await run_store_suite(plan, stores, postgres)
    if suite == "runtime":
        result, _ = await run_runtime_suite(plan, stores, postgres, planned.selection.runtime_only)
        return result
    if suite == "peers":
        return await run_peers_suite(plan, stores, postgres)
    if suite == "streams":
        return await run_streams_suite(
            plan, stores, postgres, planned.selection.scenarios("streams"), planned.selection.peer
        )
    if suite == "hooks":
        only = planned.selection.scenarios("hooks")
        return await run_hooks_suite(plan, stores, postgres, only, planned.selection.peer)
    if suite == "otel":
        return await run_otel_suite(plan, stores, postgres)
    if suite == "sleepers":
        return await run_sleepers_suite(plan, planned.selection.peer)
    if suite == "orders":
        return await run_orders_suite(plan, stores, postgres, planned.selection.peer)
    if suite == "focused":
        return await run_focused_suite(plan, stores, postgres, planned.selection.peer)
    if suite == "reference":
        return await run_reference_suite(plan, stores, postgres, planned.selection.peer)
    raise ValueError(f"unknown suite {suite!r}")


def merge(name: str, parts: Sequence[SuiteResult], not_run: Sequence[str] = ()) -> SuiteResult:
    """One suite's results from its units (notes said once), plus what was not run."""
    out = SuiteResult(name)
    for part in parts:
        out.rows.extend(part.rows)
        out.comparisons.extend(part.comparisons)
        out.notes.extend(n for n in part.notes if n not in out.notes)
        out.skipped.extend(part.skipped)
        out.errors.extend(part.errors)
        out.peer.update(part.peer)
        out.series.extend(part.series)
    out.skipped.extend(not_run)
    return out


async def run_planned(planned: Planned) -> list[SuiteResult]:
    """Run every unit in order, saying how far along the run is."""
    total = estimate(planned.units, planned.plan.quick, planned.selection.peer is not None)
    what = ", ".join(planned.selection.suites)
    say(
        f"{what} on {', '.join(planned.stores.kinds)}"
        + (" (quick)" if planned.plan.quick else "")
        + f": {len(planned.units)} units, expected to take about {clock_text(total)}"
    )
    for suite, reasons in planned.not_run.items():
        for reason in reasons:
            say(f"{suite}: {reason}")
    progress = Progress(len(planned.units))
    parts: dict[str, list[SuiteResult]] = {s: [] for s in planned.selection.suites}
    for suite, kind in planned.units:
        progress.begin(f"{suite} on {kind}")
        parts[suite].append(await run_unit(suite, kind, planned))
        progress.end()
    progress.finish()
    return [merge(s, parts[s], planned.not_run.get(s, ())) for s in planned.selection.suites]


async def bench(options: BenchOptions) -> int:
    """Run ``actorflow bench``; the exit status (1 if a scenario failed)."""
    if options.from_path is not None:
        results, info = load_results(options.from_path)
        write_outputs(options, results, info)
        return 1 if any(r.errors for r in results) else 0
    try:
        use_sqlite_synchronous(options.sqlite_synchronous)
        use_sqlite_writer(options.sqlite_writer)
    except ValueError as error:
        raise SelectionError(str(error)) from None
    if options.gc_threshold is not None and options.peers is not None:
        raise SelectionError(
            "--gc-threshold measures actorflow alone: the peers run in processes of their "
            "own, at the collector's default thresholds"
        )
    planned = prepare(options)
    with collector_thresholds(options.gc_threshold):
        results = await run_planned(planned)
        thresholds = gc.get_threshold()
    postgres = planned.stores.postgres if any(k == "postgres" for _, k in planned.units) else None
    server = await postgres_version(postgres) if postgres is not None else None
    info = meta(options.argv, options.quick, postgres, server, program="actorflow")
    info["sqlite_synchronous"] = sqlite_synchronous()
    info["sqlite_writer"] = sqlite_writer()
    info["gc_threshold"] = list(thresholds)
    write_outputs(options, results, info)
    return 1 if any(r.errors for r in results) else 0


@contextlib.contextmanager
def collector_thresholds(thresholds: Sequence[int] | None) -> Iterator[None]:
    """Measure with the cycle collector's thresholds set to ``thresholds`` (the ones not
    given keep theirs), and restore them afterwards."""
    before = gc.get_threshold()
    if thresholds is not None:
        gc.set_threshold(*thresholds)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def load_results(path: Path) -> tuple[list[SuiteResult], dict[str, Any]]:
    """An earlier run's results from its JSON file (``--json PATH``, or ``results.json`` of
    ``--report DIR``); :class:`~benchmarks.report.ResultsFileError` if it is not one."""
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise ResultsFileError(f"cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise ResultsFileError(f"{path} is not JSON: {error}") from None
    return from_json(data, str(path))


def write_outputs(
    options: BenchOptions, results: Sequence[SuiteResult], info: dict[str, Any]
) -> None:
    """The report on stdout (Markdown, or JSON with ``json_stdout``) and the files asked for."""
    text = markdown(results, info)
    if options.json_stdout:
        sys.stdout.write(json.dumps(to_json(results, info), indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(text)
    sys.stdout.flush()
    if options.json_path is not None:
        write_json(options.json_path, results, info)
        say(f"wrote {options.json_path}")
    if options.report_dir is not None:
        options.report_dir.mkdir(parents=True, exist_ok=True)
        (options.report_dir / REPORT_MARKDOWN).write_text(text)
        write_json(options.report_dir / REPORT_JSON, results, info)
        plotted = write_html(options.report_dir, results, info)
        say(f"wrote {options.report_dir / REPORT_MARKDOWN}, {REPORT_JSON} and {REPORT_HTML}")
        if not plotted:
            say(f"{REPORT_HTML} has no plots: they need matplotlib, {INSTALL_HINT}")
