"""The ``actorflow`` command line's arguments: its commands and options, and usage errors.

``--store`` and ``--json`` are accepted anywhere: before the command, after it, or after its
arguments (``actorflow runs list --store X --json``). ``bench`` has its own: after it,
``--store`` takes store kinds or a PostgreSQL URL and ``--json PATH`` names the results file;
``actorflow --json bench`` (before the command) prints the results, and errors, as JSON.

A parsed command line has ``command`` (``"runs list"``; missing when none was given) and
``group``, the parser whose help to print when the command is incomplete (``actorflow runs``).
Malformed arguments raise ``UsageError`` with the usage of the command they were given to,
instead of exiting.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from persistence import RunStatus

from .cli_errors import UsageError

STATUSES = tuple(status.value for status in RunStatus)


class Parser(argparse.ArgumentParser):
    """An argument parser that raises ``UsageError`` instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.format_usage())


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse a command line; ``UsageError`` if it is malformed."""
    return parser().parse_args(argv)


def wants_json(argv: Sequence[str]) -> bool:
    """Whether ``--json`` was given (read before parsing, to report a usage error as JSON).

    After ``bench``, ``--json`` names the results file: only a ``--json`` before it counts.
    """
    options = list(argv)[: list(argv).index("--")] if "--" in argv else list(argv)
    if "bench" in options:
        options = options[: options.index("bench")]
    return "--json" in options


def parser() -> Parser:
    """The parser of the whole command line."""
    top = Parser(prog="actorflow", description="Durable workflows for Python.")
    _global_options(top, top=True)
    top.set_defaults(group=top)
    commands = top.add_subparsers(metavar="command")

    _command(commands, "demo", "run a sample workflow and print its timeline")
    _command(commands, "store", "open the store and print its URL and schema version")

    runs = _group(commands, "runs", "list, inspect, cancel, wake and rerun runs")
    listing = _command(runs, "list", "list runs, newest first", "runs list")
    listing.add_argument("--status", choices=STATUSES, help="only runs of this status")
    listing.add_argument("--workflow", help="only runs of this workflow")
    listing.add_argument("--limit", type=_positive_int, default=50, help="at most N (50)")
    _run_command(runs, "show", "a run's status, result or error, attempts and timeline")
    _run_command(runs, "events", "a run's event log")
    cancel = _run_command(runs, "cancel", "cancel a run")
    cancel.add_argument("--reason")
    _run_command(runs, "wake", "end a run's pending sleeps now")
    rerun = _run_command(runs, "rerun", "run a run again from a step")
    rerun.add_argument("--from", dest="step", required=True, help="a step id, or a step name")

    hooks = _group(commands, "hooks", "send payloads to hooks")
    resume = _command(hooks, "resume", "send a payload to the hook holding TOKEN", "hooks resume")
    resume.add_argument("token")
    resume.add_argument(
        "--payload", required=True, type=_json_value, metavar="JSON", help="the payload, as JSON"
    )
    resume.add_argument(
        "--idempotency-key", metavar="K", help="record the payload of this key once (retries)"
    )

    notes = _group(commands, "annotations", "a run's annotations")
    notes_list = _command(notes, "list", "list a run's annotations", "annotations list")
    notes_list.add_argument("run_id")
    notes_list.add_argument("--key", help="only this key")
    notes_list.add_argument("--key-prefix", help="only keys starting with this")
    notes_list.add_argument("--attempt", type=int, help="only this rerun generation")
    notes_list.add_argument("--limit", type=_positive_int, default=1000)
    _command(
        notes,
        "migrate-legacy",
        "persist the deprecated run metadata as legacy.metadata.* rows",
        "annotations migrate-legacy",
    )

    _bench(commands)

    worker = _command(commands, "worker", "host the workflows of a module until stopped")
    worker.add_argument(
        "module", help="module (found from the current directory) whose @workflow functions to host"
    )
    worker.add_argument(
        "--concurrency",
        type=_positive_int,
        metavar="N",
        help="hold at most N runs at once (default: no limit)",
    )
    worker.add_argument(
        "--grace",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="on SIGTERM or SIGINT, how long running steps may take to finish (default: 10)",
    )
    return top


BENCH_SCENARIOS = (
    "suites: store, runtime, streams, hooks, otel, sleepers, orders, focused, reference, peers, "
    "all (every suite but peers); or single scenarios, which run their suite with only those: "
    "runtime's ttfs, seq_gap, seq_gap_big_input, gather, one_step_runs; streams' ttfb, "
    "throughput, parallel, pipeline; hooks' resume (in-process), resume_xproc (from a client "
    "process, PostgreSQL) (default: all)"
)


def _bench(commands: Subparsers) -> Parser:
    """``bench``: its own ``--store`` (kinds or a PostgreSQL URL) and ``--json PATH`` (the
    results file); the global ``--json``, given before ``bench``, prints JSON instead."""
    text = "measure actorflow's stores and runtime (the benchmark harness)"
    bench: Parser = commands.add_parser("bench", help=text, description=text)
    bench.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=BENCH_SCENARIOS)
    bench.add_argument(
        "--store",
        dest="bench_stores",
        action="append",
        default=[],
        metavar="KIND|URL",
        help="memory, sqlite, postgres, or a postgresql:// URL (the postgres kind on that "
        "server); repeat it or separate with commas (default: all three; postgres runs only "
        "with a URL or $ACTORFLOW_BENCH_POSTGRES_URL)",
    )
    bench.add_argument("--peers", metavar="PEER", help="also run the peer comparison: dbos")
    bench.add_argument("--quick", action="store_true", help="small sizes: under a minute")
    bench.add_argument(
        "--sqlite-synchronous",
        choices=("full", "normal"),
        default="full",
        help="the synchronous level of the SQLite stores and floor measured (default full, "
        "the store's default; normal is faster and may lose the last commits on power loss)",
    )
    bench.add_argument(
        "--sqlite-writer",
        choices=("thread", "loop"),
        default="thread",
        help="where the SQLite stores measured run their writes: their writer thread "
        "(default) or the event loop's thread (?writer=loop)",
    )
    bench.add_argument(
        "--gc-threshold",
        type=_gc_threshold,
        metavar="N0[,N1[,N2]]",
        help="measure with the cycle collector's thresholds set so (gc.set_threshold; the "
        "others keep their default), e.g. 700,100 to promote fewer short-lived objects; "
        "not with --peers, which run at the default",
    )
    bench.add_argument(
        "--json", dest="json_path", type=Path, metavar="PATH", help="write the results as JSON"
    )
    bench.add_argument(
        "--report",
        dest="report_dir",
        type=Path,
        metavar="DIR",
        help="write the report (report.md), the results (results.json) and a page with plots "
        "(index.html; plots need the bench extra) into DIR",
    )
    bench.add_argument(
        "--from",
        dest="from_path",
        type=Path,
        metavar="PATH",
        help="measure nothing: render the results file of an earlier run (its --json, or "
        "results.json of its --report) again, e.g. with --report DIR",
    )
    bench.set_defaults(command="bench", bench_usage=bench.format_usage())
    return bench


def _global_options(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """``--store`` and ``--json``; below the top they are set only where given, so an
    option given before the command is not reset by the command's parser."""
    parser.add_argument(
        "--store",
        default=None if top else argparse.SUPPRESS,
        metavar="URL",
        help="store URL (default: $ACTORFLOW_STORE or the embedded SQLite file)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="machine-readable output, errors too",
    )


Subparsers = Any  # argparse's _SubParsersAction, which it does not export


def _group(commands: Subparsers, name: str, text: str) -> Subparsers:
    """A command with actions of its own (``runs``): alone, it prints its help."""
    group: Parser = commands.add_parser(name, help=text, description=text)
    _global_options(group)
    group.set_defaults(group=group)
    return group.add_subparsers(metavar="action")


def _command(commands: Subparsers, name: str, text: str, command: str | None = None) -> Parser:
    made: Parser = commands.add_parser(name, help=text, description=text)
    _global_options(made)
    made.set_defaults(command=command or name)
    return made


def _run_command(runs: Subparsers, name: str, text: str) -> Parser:
    made = _command(runs, name, text, f"runs {name}")
    made.add_argument("run_id")
    return made


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return value


def _gc_threshold(text: str) -> tuple[int, ...]:
    parts = text.split(",")
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        values = ()
    if not 1 <= len(values) <= 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected one to three whole numbers of 1 or more, separated by commas, got {text!r}"
        )
    return values


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # (also refuses nan)
        raise argparse.ArgumentTypeError(f"expected 0 or more seconds, got {text!r}")
    return value


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a JSON value, got {text!r}: {error}") from None
