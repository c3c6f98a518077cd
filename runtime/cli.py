"""The ``actorflow`` command line: the demo, runs, hooks, annotations, a worker, the store.

Each command is a handler in ``COMMANDS``, by the name ``runtime.cli_parser`` gives it
(``"runs show"``); errors and exit statuses are reported as ``runtime.cli_errors`` describes.
Every command but ``demo`` and ``worker`` opens the store with ``create=False``: on a store
that does not exist it fails and creates nothing (the commands that read, and those that act
on runs or hooks, which a new store would not have).

``runs list`` and ``runs show`` say of a run that has not ended, and whose workflow no live
worker hosts, that it waits for a worker hosting it (``"waiting_for_worker"`` with ``--json``);
``runs show`` draws the run's timeline (``runtime.cli_timeline``) and ``runs events --json``
decodes recorded values (``runtime.cli_events``). ``worker MODULE`` hosts the module's
workflows until SIGTERM or SIGINT drains it (``runtime.cli_worker``). ``bench`` runs the
benchmark harness (``benchmarks.command``), installed with actorflow.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec

from persistence import Event, open_store
from persistence.urls import resolve_url

from .cli_errors import USAGE, UsageError, report
from .cli_events import decoded, events_json
from .cli_parser import parse, wants_json
from .cli_timeline import draw, failed_attempts, lanes
from .cli_worker import serve
from .run import RunInfo
from .runtime import Runtime
from .waiting import hosted_workflows, waits_for_worker


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``actorflow`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse(argv)
    except UsageError as error:
        return report(error, wants_json(argv))
    args.argv = argv
    handler = COMMANDS.get(getattr(args, "command", ""))
    if handler is None:  # `actorflow` or `actorflow runs` alone: what can follow
        return _incomplete(args)
    try:
        result: int = asyncio.run(handler(args))
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a clear message, not a traceback
        return report(error, args.json)
    return result


def _incomplete(args: argparse.Namespace) -> int:
    """Print the help of the command that needs more (or, with ``--json``, a usage error)."""
    group: argparse.ArgumentParser = args.group
    if args.json:
        return report(UsageError(f"{group.prog} needs a command; see {group.prog} --help"), True)
    group.print_help()
    return USAGE


def _out(args: argparse.Namespace, value: Any, text: str) -> None:
    if args.json:
        print(msgspec.json.encode(value).decode())
    else:
        print(text)


@asynccontextmanager
async def _client(args: argparse.Namespace) -> AsyncIterator[Runtime]:
    """A client runtime on a store that exists (opened with ``create=False``): only ``demo``
    and ``worker`` create a store; reading or acting on runs never does."""
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
    async with _client(args) as rt:
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
    async with _client(args) as rt:
        info: RunInfo = await rt.get_run(args.run_id).info()
        run = await rt.store.get_run(args.run_id)
        waiting = waits_for_worker(info, await hosted_workflows(rt.store))
        events = await rt.get_run(args.run_id).events()
    result = None if run.output is None else decoded(run.output, "the run's output")
    if args.json:
        item = _with_waiting(info, waiting)
        item.update(
            generation=run.generation,
            result=result,
            timeline=[lane.as_json() for lane in lanes(events)],
        )
        print(msgspec.json.encode(item).decode())
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
    if run.generation:
        text.append(f"generation: {run.generation} (run again from a step)")
    text += [
        f"created:   {info.created_at.isoformat()}",
        f"started:   {info.started_at.isoformat() if info.started_at else '-'}",
        f"completed: {info.completed_at.isoformat() if info.completed_at else '-'}",
    ]
    if run.output is not None:
        text.append(f"result:    {json.dumps(msgspec.to_builtins(result), default=str)}")
    if info.error is not None:
        text.append(f"error:     [{info.error.code}] {info.error.type}: {info.error.message}")
    steps = [lane for lane in lanes(events) if lane.kind == "step"]
    tries = sum(len(lane.attempts) for lane in steps)
    failed = failed_attempts(events)
    text.append(
        f"steps:     {len(steps)} step{'' if len(steps) == 1 else 's'}, "
        f"{tries} attempt{'' if tries == 1 else 's'}"
        + (f" ({len(failed)} failed)" if failed else "")
    )
    width = shutil.get_terminal_size((100, 24)).columns
    text += ["", draw(events, datetime.now(UTC), width)]
    if failed:
        text += ["", "failed attempts:", *(f"  {line}" for line in failed)]
    print("\n".join(text))
    return 0


async def _runs_events(args: argparse.Namespace) -> int:
    async with _client(args) as rt:
        await rt.store.get_run(args.run_id)
        events = await rt.get_run(args.run_id).events()
    print(events_json(events) if args.json else timeline(events))
    return 0


async def _runs_cancel(args: argparse.Namespace) -> int:
    async with _client(args) as rt:
        cancelled = await rt.cancel(args.run_id, args.reason)
    _out(
        args,
        {"run_id": args.run_id, "cancelled": cancelled},
        f"run {args.run_id} {'cancelled' if cancelled else 'had already ended'}",
    )
    return 0


async def _runs_rerun(args: argparse.Namespace) -> int:
    async with _client(args) as rt:
        await rt.rerun_from(args.run_id, args.step)
        run = await rt.store.get_run(args.run_id)
    _out(
        args,
        {"run_id": args.run_id, "generation": run.generation},
        f"run {args.run_id} runs again from {args.step} (generation {run.generation})",
    )
    return 0


async def _runs_wake(args: argparse.Namespace) -> int:
    async with _client(args) as rt:
        woken = await rt.wake_up(args.run_id)
    text = f"run {args.run_id}: " + (
        f"woke {woken} sleep{'' if woken == 1 else 's'}" if woken else "no sleep to wake"
    )
    _out(args, {"run_id": args.run_id, "woken": woken}, text)
    return 0


async def _hooks_resume(args: argparse.Namespace) -> int:
    async with _client(args) as rt:
        run_id = await rt.resume_hook(
            args.token, args.payload, idempotency_key=args.idempotency_key
        )
    _out(
        args,
        {"token": args.token, "run_id": run_id},
        f"hook {args.token} of run {run_id} resumed",
    )
    return 0


async def _annotations_list(args: argparse.Namespace) -> int:
    async with _client(args) as rt:
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
    async with _client(args) as rt:
        count = await rt.annotations.migrate_legacy_metadata()
    _out(args, {"runs": count}, f"wrote legacy.metadata.* rows for {count} run(s)")
    return 0


async def _bench(args: argparse.Namespace) -> int:
    # The harness is imported here only: it is built on the runtime, not a part of it.
    from benchmarks.command import BenchOptions, bench
    from benchmarks.report import ResultsFileError
    from benchmarks.selection import SelectionError

    stores = args.bench_stores or ([args.store] if args.store else [])
    options = BenchOptions(
        scenarios=args.scenarios,
        stores=stores,
        peers=args.peers,
        quick=args.quick,
        sqlite_synchronous=args.sqlite_synchronous,
        sqlite_writer=args.sqlite_writer,
        gc_threshold=args.gc_threshold,
        json_path=args.json_path,
        report_dir=args.report_dir,
        json_stdout=args.json,
        argv=args.argv,
        from_path=args.from_path,
    )
    try:
        return await bench(options)
    except SelectionError as error:
        raise UsageError(str(error), args.bench_usage) from None
    except ResultsFileError as error:
        raise UsageError(str(error), args.bench_usage) from None


async def _worker(args: argparse.Namespace) -> int:
    return await serve(args.store, args.module, concurrency=args.concurrency, grace=args.grace)


COMMANDS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "demo": _demo,
    "store": _store_info,
    "runs list": _runs_list,
    "runs show": _runs_show,
    "runs events": _runs_events,
    "runs cancel": _runs_cancel,
    "runs rerun": _runs_rerun,
    "runs wake": _runs_wake,
    "hooks resume": _hooks_resume,
    "annotations list": _annotations_list,
    "annotations migrate-legacy": _annotations_migrate,
    "worker": _worker,
    "bench": _bench,
}


if __name__ == "__main__":
    sys.exit(main())
