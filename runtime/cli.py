"""The ``actorflow`` command line: the demo, runs, annotations, a worker, the store.

The commands that only read (``store``, ``runs list|show|events``, ``annotations list``) open
the store with ``create=False``: on a store that does not exist they fail and create nothing.
Errors and exit statuses are reported as ``runtime.cli_errors`` describes.

``runs list`` and ``runs show`` say of a run that has not ended, and whose workflow no live
worker hosts, that it waits for a worker hosting it (``"waiting_for_worker"`` with ``--json``).
``worker MODULE`` hosts the module's workflows until SIGTERM or SIGINT drains it
(``runtime.cli_worker``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import msgspec

from persistence import Event, codec, open_store
from persistence.urls import resolve_url

from .cli_errors import USAGE, report
from .cli_worker import serve
from .run import RunInfo
from .runtime import Runtime
from .waiting import hosted_workflows, waits_for_worker


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``actorflow`` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return USAGE
    try:
        result: int = asyncio.run(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a clear message, not a traceback
        return report(error, args.json)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="actorflow", description="Durable workflows for Python.")
    parser.add_argument(
        "--store", help="store URL (default: $ACTORFLOW_STORE or the embedded SQLite file)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(metavar="command")

    demo = commands.add_parser("demo", help="run a sample workflow and print its timeline")
    demo.set_defaults(handler=_demo)

    store = commands.add_parser("store", help="open the store and print its URL and schema version")
    store.set_defaults(handler=_store_info)

    runs = commands.add_parser("runs", help="list and inspect runs").add_subparsers(
        metavar="action"
    )
    listing = runs.add_parser("list", help="list runs, newest first")
    listing.add_argument("--status", help="pending, running, completed, failed or cancelled")
    listing.add_argument("--workflow", help="only runs of this workflow")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=_runs_list)
    show = runs.add_parser("show", help="a run's status, times and error")
    show.add_argument("run_id")
    show.set_defaults(handler=_runs_show)
    events = runs.add_parser("events", help="a run's event log")
    events.add_argument("run_id")
    events.set_defaults(handler=_runs_events)
    cancel = runs.add_parser("cancel", help="cancel a run")
    cancel.add_argument("run_id")
    cancel.add_argument("--reason")
    cancel.set_defaults(handler=_runs_cancel)

    rerun = runs.add_parser("rerun", help="run a run again from a step")
    rerun.add_argument("run_id")
    rerun.add_argument("--from", dest="step", required=True, help="a step id, or a step name")
    rerun.set_defaults(handler=_runs_rerun)

    notes = commands.add_parser("annotations", help="a run's annotations").add_subparsers(
        metavar="action"
    )
    notes_list = notes.add_parser("list", help="list a run's annotations")
    notes_list.add_argument("run_id")
    notes_list.add_argument("--key", help="only this key")
    notes_list.add_argument("--key-prefix", help="only keys starting with this")
    notes_list.add_argument("--attempt", type=int, help="only this rerun generation")
    notes_list.add_argument("--limit", type=int, default=1000)
    notes_list.set_defaults(handler=_annotations_list)
    migrate = notes.add_parser(
        "migrate-legacy", help="persist the deprecated run metadata as legacy.metadata.* rows"
    )
    migrate.set_defaults(handler=_annotations_migrate)

    worker = commands.add_parser("worker", help="host the workflows of a module until stopped")
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
    worker.set_defaults(handler=_worker)
    return parser


def _out(args: argparse.Namespace, value: Any, text: str) -> None:
    if args.json:
        print(msgspec.json.encode(value).decode())
    else:
        print(text)


@asynccontextmanager
async def _reading(args: argparse.Namespace) -> AsyncIterator[Runtime]:
    """A client runtime on the store, opened read-only: a missing store is not created."""
    store = await open_store(args.store, create=False)
    try:
        async with Runtime(store, role="client") as rt:
            yield rt
    finally:
        await store.close()


async def _store_info(args: argparse.Namespace) -> int:
    url = resolve_url(args.store)
    store = await open_store(url, create=False)
    try:
        info = {"url": store.url, "schema_version": store.schema_version}
        _out(args, info, f"store: {store.url}\nschema version: {store.schema_version}")
    finally:
        await store.close()
    return 0


async def _demo(args: argparse.Namespace) -> int:
    from .demo import order_flow

    async with Runtime(args.store, workflows=[order_flow]) as rt:
        run = await rt.start(order_flow, "o-1001")
        result = await run.result(timeout=60)
        log = await run.events()
    if args.json:
        print(msgspec.json.encode({"run_id": run.id, "result": result, "events": log}).decode())
        return 0
    print(f"run {run.id} of {order_flow.name} on {rt_url(args)}")
    print(timeline(log))
    print(f"result: {json.dumps(result)}")
    return 0


def rt_url(args: argparse.Namespace) -> str:
    return resolve_url(args.store)


def timeline(events: Sequence[Event]) -> str:
    """A run's events as lines of elapsed milliseconds, type and what they are about."""
    if not events:
        return "(no events)"
    start: datetime = events[0].created_at
    names: dict[str, str] = {}
    lines = []
    for event in events:
        name = getattr(event.data, "step_name", None)
        if name is not None and event.correlation_id:
            names[event.correlation_id] = str(name)
        elapsed = (event.created_at - start).total_seconds() * 1000
        lines.append(f"{elapsed:9.1f} ms  {event.event_type:<16} {_about(event, names)}")
    return "\n".join(lines)


def _about(event: Event, names: dict[str, str]) -> str:
    data = event.data
    name = names.get(event.correlation_id or "")
    if name is not None and not hasattr(data, "error"):
        return name
    error = getattr(data, "error", None)
    if error is not None:
        return f"{error.type}: {error.message}"
    resume_at = getattr(data, "resume_at", None)
    if resume_at is not None:
        return f"until {resume_at.isoformat(timespec='milliseconds')}"
    workflow_name = getattr(data, "workflow_name", None)
    if workflow_name is not None:
        return str(workflow_name)
    return event.correlation_id or ""


async def _runs_list(args: argparse.Namespace) -> int:
    async with _reading(args) as rt:
        runs = await rt.list_runs(status=args.status, workflow_name=args.workflow, limit=args.limit)
        hosted = await hosted_workflows(rt.store)
    waiting = [waits_for_worker(r, hosted) for r in runs]
    if args.json:
        items = [_with_waiting(r, w) for r, w in zip(runs, waiting, strict=True)]
        print(msgspec.json.encode(items).decode())
        return 0
    if not runs:
        print("(no runs)")
        return 0
    rows = [
        [
            r.run_id,
            r.status.value,
            r.workflow_name,
            r.created_at.isoformat(),
            f"waiting for a worker hosting {r.workflow_name}" if w else "",
        ]
        for r, w in zip(runs, waiting, strict=True)
    ]
    print(_table(["RUN ID", "STATUS", "WORKFLOW", "CREATED", "NOTE"], rows))
    return 0


def _with_waiting(info: RunInfo, waiting: bool) -> dict[str, Any]:
    """``info`` as JSON-ready builtins, with whether it waits for a worker hosting it."""
    item: dict[str, Any] = msgspec.to_builtins(info)
    item["waiting_for_worker"] = waiting
    return item


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns two spaces apart, under a header line."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


async def _runs_show(args: argparse.Namespace) -> int:
    async with _reading(args) as rt:
        info: RunInfo = await rt.get_run(args.run_id).info()
        run = await rt.store.get_run(args.run_id)
        waiting = waits_for_worker(info, await hosted_workflows(rt.store))
    if args.json:
        print(msgspec.json.encode(_with_waiting(info, waiting)).decode())
        return 0
    text = [
        f"run:       {info.run_id}",
        f"workflow:  {info.workflow_name}",
        f"status:    {info.status.value}",
    ]
    if waiting:
        text.append(
            f"waiting:   for a worker hosting {info.workflow_name} (no live worker hosts it)"
        )
    text += [
        f"created:   {info.created_at.isoformat()}",
        f"started:   {info.started_at.isoformat() if info.started_at else '-'}",
        f"completed: {info.completed_at.isoformat() if info.completed_at else '-'}",
    ]
    if run.output is not None:
        text.append(f"output:    {json.dumps(codec.decode(run.output), default=str)}")
    if info.error is not None:
        text.append(f"error:     [{info.error.code}] {info.error.type}: {info.error.message}")
    print("\n".join(text))
    return 0


async def _runs_events(args: argparse.Namespace) -> int:
    async with _reading(args) as rt:
        await rt.store.get_run(args.run_id)
        events = await rt.get_run(args.run_id).events()
    _out(args, events, timeline(events))
    return 0


async def _runs_cancel(args: argparse.Namespace) -> int:
    async with Runtime(args.store, role="client") as rt:
        cancelled = await rt.cancel(args.run_id, args.reason)
    _out(
        args,
        {"run_id": args.run_id, "cancelled": cancelled},
        f"run {args.run_id} {'cancelled' if cancelled else 'had already ended'}",
    )
    return 0


async def _runs_rerun(args: argparse.Namespace) -> int:
    async with Runtime(args.store, role="client") as rt:
        await rt.rerun_from(args.run_id, args.step)
        run = await rt.store.get_run(args.run_id)
    _out(
        args,
        {"run_id": args.run_id, "attempt": run.generation},
        f"run {args.run_id} runs again from {args.step} (attempt {run.generation})",
    )
    return 0


async def _annotations_list(args: argparse.Namespace) -> int:
    async with _reading(args) as rt:
        await rt.store.get_run(args.run_id)
        rows = await rt.annotations.list(
            args.run_id,
            key=args.key,
            key_prefix=args.key_prefix,
            attempt=args.attempt,
            limit=args.limit,
        )
    lines = [
        f"{r.created_at.isoformat()}  {r.key} = {json.dumps(r.value, default=str)}"
        f"  [{r.scope}{':' + r.scope_id if r.scope_id else ''}, attempt {r.attempt}]"
        for r in rows
    ]
    _out(args, rows, "\n".join(lines) or "(no annotations)")
    return 0


async def _annotations_migrate(args: argparse.Namespace) -> int:
    async with Runtime(args.store, role="client") as rt:
        count = await rt.annotations.migrate_legacy_metadata()
    _out(args, {"runs": count}, f"wrote legacy.metadata.* rows for {count} run(s)")
    return 0


async def _worker(args: argparse.Namespace) -> int:
    return await serve(args.store, args.module, concurrency=args.concurrency, grace=args.grace)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # (also refuses nan)
        raise argparse.ArgumentTypeError(f"expected 0 or more seconds, got {text!r}")
    return value


if __name__ == "__main__":
    sys.exit(main())
