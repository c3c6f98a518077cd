"""The command line: ``python -m benchmarks SUITE …`` (``--help`` lists the suites).

Prints a Markdown report to stdout (progress goes to stderr) and, with ``--json PATH``,
writes every number as JSON. Exits 1 if a scenario failed, 2 on bad arguments; a store or
peer that is not available (no PostgreSQL URL, PyPI unreachable) is reported as skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from .config import POSTGRES_ENV, STORE_KINDS, make_plan, parse_stores, postgres_url
from .focused_bench import run_focused_suite
from .hook_bench import run_hooks_suite
from .machine import postgres_version
from .model import SuiteResult
from .orders_bench import run_orders_suite
from .otel_bench import run_otel_suite
from .peers.suite import run_peers_suite
from .progress import say
from .reference_bench import run_reference_suite
from .report import markdown, meta, write_json
from .runtime_bench import run_runtime_suite
from .sleepers_bench import run_sleepers_suite
from .store_bench import run_store_suite
from .stream_bench import run_streams_suite

SUITES = (
    "store",
    "runtime",
    "peers",
    "streams",
    "hooks",
    "otel",
    "sleepers",
    "orders",
    "focused",
    "reference",
    "all",
)


def parser() -> argparse.ArgumentParser:
    """The argument parser."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of actorflow's stores and runtime, and a peer comparison.",
    )
    p.add_argument("suite", choices=SUITES, help="which suite to run")
    p.add_argument("--quick", action="store_true", help="small sizes and few repetitions")
    p.add_argument("--repeat", type=int, default=None, help="repetitions per scenario")
    p.add_argument(
        "--stores",
        default=",".join(STORE_KINDS),
        help="comma-separated store kinds: memory,sqlite,postgres (default: all)",
    )
    p.add_argument(
        "--postgres",
        default=None,
        metavar="URL",
        help=f"PostgreSQL server to measure on (default: ${POSTGRES_ENV}; none skips it)",
    )
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="write JSON here")
    return p


async def run(suite: str, argv: Sequence[str], args: argparse.Namespace) -> list[SuiteResult]:
    """Run the chosen suite(s) in order: store, runtime, peers, streams, hooks, otel,
    sleepers (SQLite only), orders, focused, reference (actorflow alone: ``actorflow bench
    focused --peers dbos`` adds DBOS)."""
    plan = make_plan(args.quick, args.repeat)
    stores = parse_stores(args.stores)
    postgres = postgres_url(args.postgres)
    if "postgres" in stores and postgres is None:
        say(f"no PostgreSQL URL (--postgres or ${POSTGRES_ENV}): PostgreSQL rows are skipped")
    results: list[SuiteResult] = []
    if suite in ("store", "all"):
        results.append(await run_store_suite(plan, stores, postgres))
    if suite in ("runtime", "all"):
        runtime_result, _ = await run_runtime_suite(plan, stores, postgres)
        results.append(runtime_result)
    if suite in ("peers", "all"):
        results.append(await run_peers_suite(plan, stores, postgres))
    if suite in ("streams", "all"):
        results.append(await run_streams_suite(plan, stores, postgres))
    if suite in ("hooks", "all"):
        results.append(await run_hooks_suite(plan, stores, postgres))
    if suite in ("otel", "all"):
        results.append(await run_otel_suite(plan, stores, postgres))
    if suite in ("sleepers", "all") and "sqlite" in stores:
        results.append(await run_sleepers_suite(plan))
    if suite in ("orders", "all"):
        results.append(await run_orders_suite(plan, stores, postgres))
    if suite in ("focused", "all"):
        results.append(await run_focused_suite(plan, stores, postgres))
    if suite in ("reference", "all"):
        results.append(await run_reference_suite(plan, stores, postgres))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(arguments)
    if args.repeat is not None and args.repeat < 1:
        parser().error("--repeat must be at least 1")
    try:
        parse_stores(args.stores)
    except ValueError as exc:
        parser().error(str(exc))
    results = asyncio.run(run(args.suite, arguments, args))
    postgres = postgres_url(args.postgres)
    server = asyncio.run(postgres_version(postgres)) if postgres is not None else None
    info = meta(arguments, args.quick, postgres, server)
    sys.stdout.write(markdown(results, info))
    sys.stdout.flush()
    if args.json is not None:
        write_json(args.json, results, info)
        say(f"wrote {args.json}")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
