"""The reference suite's cases on DBOS Transact, run by the interpreter of DBOS's venv.

Not imported by the harness (DBOS is not a dependency of actorflow): the reference suite runs
this file as a subprocess per store, launched once on a fresh system database (a new SQLite
file, or a new PostgreSQL schema, ``--schema-prefix`` + ``_1``, that the harness drops
afterwards), and sends it a round at a time on stdin: a line of JSON, the round's cases. Each
round's result is one line on stdout after :data:`RESULT_MARK`: raw samples in seconds keyed
like the harness's ``RefSamples`` (``ref_seq_noop:10`` → ``wall``, ``workflow``, ``ttfb``,
``slurp``), and the cases it did not run, with why (``not_run``). A case that fails is
reported there and the others still run. ``--cases`` (with ``--out``) runs one round alone.

The workflows are those of ``benchmarks/reference_workflows.py`` written as DBOS documents
them: async workflows and async steps, ``asyncio.gather`` for concurrent steps,
``asyncio.wait(FIRST_COMPLETED)`` on step tasks for the race, and streams written by steps
with ``DBOS.write_stream_async``/``DBOS.close_stream_async`` and read with
``DBOS.read_stream_async``. DBOS is imported only once the arguments are parsed, and reached
through values typed as ``Any``, so this file type-checks and its arguments parse without it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.metadata
import json
import logging
import sys
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

try:
    from .dbos_common import pattern, pipeline_output, xor_table
except ImportError:  # run as a script: the sibling module is first on sys.path
    from dbos_common import (  # type: ignore[import-not-found,no-redef]
        pattern,
        pipeline_output,
        xor_table,
    )

PAYLOAD_BYTES = 10 * 1024
TEXT_CHUNK_BYTES = 100
STREAM_BYTES = 1024 * 1024
STREAM_CHUNK = 64 * 1024
READ_POLL_S = 0.01
"""How often a stream reader re-reads when no notification came (DBOS's default is 1 s; on
SQLite, which has no LISTEN/NOTIFY, that would be each chunk's wait)."""
SCENARIOS = (
    "no_steps",
    "one_step",
    "seq",
    "gather",
    "race",
    "payload_seq",
    "payload_gather",
    "stream",
    "pipeline",
    "parallel_streams",
    "fanout_streams",
)


class WrongResult(RuntimeError):
    """A workflow returned another result than it must."""


def load_dbos() -> Any:
    """The ``dbos`` module; exits with a one-line reason if this interpreter lacks it."""
    try:
        return importlib.import_module("dbos")
    except ImportError as exc:
        raise SystemExit(
            f"dbos_reference.py: DBOS is not installed for {sys.executable} ({exc}); "
            "run it with the interpreter of the DBOS venv"
        ) from None


def text_chunk(index: int, size: int = TEXT_CHUNK_BYTES) -> bytes:
    """Chunk ``index`` of the small stream: ``chunk-NNN-xxx…\\n``."""
    head = f"chunk-{index:03d}-".encode()
    return head + b"x" * (size - len(head) - 1) + b"\n"


def checksum(data: str) -> int:
    """The CRC-32 of ``data`` (UTF-8)."""
    return zlib.crc32(data.encode())


@dataclass(frozen=True)
class Case:
    """One case as the harness sends it."""

    scenario: str
    size: int | None
    form: str
    sleep_ms: float

    @classmethod
    def of(cls, data: dict[str, Any]) -> Case:
        """The case of one JSON object; ``ValueError`` if it is not one."""
        scenario = str(data["scenario"])
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown reference scenario {scenario!r}")
        size = data.get("size")
        return cls(
            scenario,
            None if size is None else int(size),
            str(data.get("form", "")),
            float(data.get("sleep_ms", 0.0)),
        )

    @property
    def key(self) -> str:
        """The samples' key, as the harness names it."""
        name = "_".join(p for p in ("ref", self.scenario, self.form) if p)
        return f"{name}:{'' if self.size is None else self.size}"


def parse_cases(text: str) -> list[Case]:
    """``--cases``: a JSON list of case objects."""
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("--cases must be a JSON list of cases")
    return [Case.of(item) for item in data]


F = TypeVar("F", bound=Callable[..., Any])


def registered(decorator: Any, name: str) -> Callable[[F], F]:
    """DBOS's ``decorator`` (``DBOS.step``, ``DBOS.workflow``) under ``name``, typed: the
    function keeps its signature for the type checker."""

    def wrap(fn: F) -> F:
        return cast(F, decorator(name=name)(fn))

    return wrap


class Workflows:
    """The suite's workflows and steps, registered with DBOS (``dbos`` is the module)."""

    def __init__(self, dbos: Any) -> None:
        self.DBOS: Any = dbos.DBOS
        self._define()

    def _define(self) -> None:
        DBOS = self.DBOS

        async def read(source: str) -> AsyncIterator[Any]:
            async for value in DBOS.read_stream_async(
                DBOS.workflow_id, source, polling_interval_sec=READ_POLL_S
            ):
                yield value

        @registered(DBOS.step, "ref_do_work")
        async def do_work(sleep_ms: float) -> int:
            if sleep_ms:
                await asyncio.sleep(sleep_ms / 1000)
            return 42

        @registered(DBOS.step, "ref_numbered_work")
        async def numbered_work(index: int, sleep_ms: float) -> int:
            if sleep_ms:
                await asyncio.sleep(sleep_ms / 1000)
            return index

        @registered(DBOS.step, "ref_process_payload")
        async def process_payload(data: str) -> dict[str, Any]:
            return {"data": data, "len": len(data), "checksum": checksum(data)}

        @registered(DBOS.step, "ref_write_text")
        async def write_text(key: str, chunks: int, interval_ms: float) -> int:
            for index in range(chunks):
                if index and interval_ms:
                    await asyncio.sleep(interval_ms / 1000)
                await DBOS.write_stream_async(key, text_chunk(index))
            await DBOS.close_stream_async(key)
            return chunks

        @registered(DBOS.step, "ref_upper_case")
        async def upper_case(source: str, target: str) -> int:
            count = 0
            async for piece in read(source):
                await DBOS.write_stream_async(target, bytes(piece).upper())
                count += len(piece)
            await DBOS.close_stream_async(target)
            return count

        @registered(DBOS.step, "ref_write_bytes")
        async def write_bytes(key: str, total: int, chunk: int) -> int:
            data = pattern(total)
            for offset in range(0, total, chunk):
                await DBOS.write_stream_async(key, data[offset : offset + chunk])
            await DBOS.close_stream_async(key)
            return total

        @registered(DBOS.step, "ref_transform")
        async def transform(source: str, target: str, mask: int) -> int:
            table = xor_table(mask)
            count = 0
            async for piece in read(source):
                await DBOS.write_stream_async(target, bytes(piece).translate(table))
                count += len(piece)
            await DBOS.close_stream_async(target)
            return count

        @registered(DBOS.step, "ref_consume_and_verify")
        async def consume_and_verify(keys: list[str], masks: list[int], total: int) -> list[int]:
            expected = pattern(total)

            async def one(key: str, mask: int) -> tuple[int, bool]:
                data = bytearray()
                async for piece in read(key):
                    data += piece
                return len(data), bytes(data) == expected.translate(xor_table(mask))

            results = await asyncio.gather(*[one(k, m) for k, m in zip(keys, masks, strict=True)])
            return [sum(n for n, _ in results), sum(1 for _, ok in results if ok)]

        @registered(DBOS.workflow, "ref_no_steps")
        async def no_steps(x: int) -> int:
            return x * 2

        @registered(DBOS.workflow, "ref_one_step")
        async def one_step(x: int, sleep_ms: float) -> int:
            return int(await do_work(sleep_ms)) + x

        @registered(DBOS.workflow, "ref_sequential")
        async def sequential(count: int, sleep_ms: float) -> int:
            for _ in range(count):
                await do_work(sleep_ms)
            return count

        @registered(DBOS.workflow, "ref_gather")
        async def gather(count: int, sleep_ms: float) -> int:
            results = await asyncio.gather(*[numbered_work(i, sleep_ms) for i in range(count)])
            return len(results)

        @registered(DBOS.workflow, "ref_race")
        async def race(count: int, sleep_ms: float) -> int:
            pending = {asyncio.ensure_future(numbered_work(i, sleep_ms)) for i in range(count)}
            finished = 0
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                finished += len(done)
            return finished

        @registered(DBOS.workflow, "ref_payload_sequential")
        async def payload_sequential(count: int, size: int) -> int:
            data = "x" * size
            last = 0
            for _ in range(count):
                result = await process_payload(data)
                if result["checksum"] != checksum(data):
                    raise WrongResult(f"payload checksum {result['checksum']}")
                last = int(result["len"])
            if last != size:
                raise WrongResult(f"the last payload step saw {last} bytes, not {size}")
            return last

        @registered(DBOS.workflow, "ref_payload_gather")
        async def payload_gather(count: int, size: int) -> int:
            data = "x" * size
            results = await asyncio.gather(*[process_payload(data) for _ in range(count)])
            whole = sum(1 for r in results if r["len"] == size and r["data"] == data)
            if whole != count:
                raise WrongResult(f"{whole} of {count} payload steps returned it whole")
            return whole

        @registered(DBOS.workflow, "ref_text_stream")
        async def text_stream(chunks: int, interval_ms: float) -> int:
            counts = await asyncio.gather(
                write_text("text", chunks, interval_ms), upper_case("text", "upper")
            )
            return int(counts[1])

        @registered(DBOS.workflow, "ref_pipeline")
        async def pipeline(stages: int, total: int, chunk: int) -> int:
            counts = await asyncio.gather(
                write_bytes("s0", total, chunk),
                *[transform(f"s{i}", f"s{i + 1}", (i + 1) % 256) for i in range(stages)],
            )
            return int(counts[-1])

        @registered(DBOS.workflow, "ref_parallel_streams")
        async def parallel_streams(streams: int, total: int, chunk: int) -> list[int]:
            keys = [f"p{i}" for i in range(streams)]
            writers = asyncio.gather(*[write_bytes(key, total, chunk) for key in keys])
            _, verdict = await asyncio.gather(
                writers, consume_and_verify(keys, [0] * streams, total)
            )
            return verdict

        @registered(DBOS.workflow, "ref_fan_out_fan_in")
        async def fan_out_fan_in(streams: int, total: int, chunk: int) -> list[int]:
            masks = [(i + 1) % 256 for i in range(streams)]
            writers = asyncio.gather(
                *[write_bytes(f"g{i}", total, chunk) for i in range(streams)],
                *[transform(f"g{i}", f"x{i}", masks[i]) for i in range(streams)],
            )
            checker = consume_and_verify([f"x{i}" for i in range(streams)], masks, total)
            _, verdict = await asyncio.gather(writers, checker)
            return verdict

        self.no_steps, self.one_step, self.sequential = no_steps, one_step, sequential
        self.gather, self.race = gather, race
        self.payload_sequential, self.payload_gather = payload_sequential, payload_gather
        self.text_stream, self.pipeline = text_stream, pipeline
        self.parallel_streams, self.fan_out_fan_in = parallel_streams, fan_out_fan_in


@dataclass
class Measured:
    """One run: its result, when it began, its wall time, the workflow's id, the reader's
    first and last chunk times (``perf_counter``) and bytes, if it read a stream."""

    result: Any
    begin: float
    wall: float
    workflow_id: str
    first: float = 0.0
    last: float = 0.0
    data: bytes = b""


class Runner:
    """Runs cases on a launched DBOS and records their samples."""

    def __init__(self, DBOS: Any, flows: Workflows, whole_seconds: bool = False) -> None:
        self.DBOS = DBOS
        self.flows = flows
        self.whole_seconds = whole_seconds
        self.samples: dict[str, dict[str, list[float]]] = {}
        self.not_run: dict[str, str] = {}

    async def _plain(self, fn: Callable[..., Awaitable[Any]], *args: object) -> Measured:
        begin = time.perf_counter()
        handle = await self.DBOS.start_workflow_async(fn, *args)
        result = await handle.get_result()
        return Measured(result, begin, time.perf_counter() - begin, handle.get_workflow_id())

    async def _read(self, fn: Callable[..., Awaitable[Any]], key: str, *args: object) -> Measured:
        begin = time.perf_counter()
        handle = await self.DBOS.start_workflow_async(fn, *args)
        workflow_id = handle.get_workflow_id()
        data = bytearray()
        first = last = 0.0

        async def reader() -> None:
            nonlocal first, last
            async for piece in self.DBOS.read_stream_async(
                workflow_id, key, polling_interval_sec=READ_POLL_S
            ):
                last = time.perf_counter()
                if not data:
                    first = last
                data.extend(piece)

        _, result = await asyncio.gather(reader(), handle.get_result())
        wall = time.perf_counter() - begin
        return Measured(result, begin, wall, workflow_id, first, last, bytes(data))

    async def run(self, case: Case) -> Measured:
        """Run ``case`` once, checking its result; :class:`WrongResult` if wrong."""
        f, n, pause = self.flows, case.size or 0, case.sleep_ms
        want: Any
        if case.scenario == "no_steps":
            out, want = await self._plain(f.no_steps, 42), 84
        elif case.scenario == "one_step":
            out, want = await self._plain(f.one_step, 100, pause), 142
        elif case.scenario in ("seq", "gather", "race"):
            fn = {"seq": f.sequential, "gather": f.gather, "race": f.race}[case.scenario]
            out, want = await self._plain(fn, n, pause), n
        elif case.scenario == "payload_seq":
            out, want = await self._plain(f.payload_sequential, n, PAYLOAD_BYTES), PAYLOAD_BYTES
        elif case.scenario == "payload_gather":
            out, want = await self._plain(f.payload_gather, n, PAYLOAD_BYTES), n
        elif case.scenario == "stream":
            out = await self._read(f.text_stream, "upper", n, pause)
            wanted = b"".join(text_chunk(i) for i in range(n)).upper()
            if out.data != wanted:
                raise WrongResult(f"the upper-case stream had {len(out.data)} wrong bytes")
            want = len(wanted)
        elif case.scenario == "pipeline":
            out = await self._read(f.pipeline, f"s{n}", n, STREAM_BYTES, STREAM_CHUNK)
            if out.data != pipeline_output(STREAM_BYTES, n):
                raise WrongResult(f"the pipeline's last stream had {len(out.data)} wrong bytes")
            want = STREAM_BYTES
        else:
            parallel = case.scenario == "parallel_streams"
            streams = f.parallel_streams if parallel else f.fan_out_fan_in
            out = await self._plain(streams, n, STREAM_BYTES, STREAM_CHUNK)
            want = [n * STREAM_BYTES, n]
        if out.result != want:
            raise WrongResult(f"the workflow returned {out.result!r}, not {want!r}")
        return out

    async def measure(self, case: Case) -> None:
        """Run ``case`` once and record its samples, or why it could not run."""
        try:
            out = await self.run(case)
        except Exception as exc:  # a failed case is reported; the rest still run
            self.not_run[case.key] = f"failed: {type(exc).__name__}: {exc}"
            return
        into = self.samples.setdefault(case.key, {})
        into.setdefault("wall", []).append(out.wall)
        status = await self.DBOS.get_workflow_status_async(out.workflow_id)
        if self.whole_seconds:
            pass  # DBOS's SQLite times are whole seconds: no workflow time to report
        elif status is not None and status.created_at and status.updated_at:
            seconds = (status.updated_at - status.created_at) / 1000
            into.setdefault("workflow", []).append(seconds)
        if case.scenario == "stream":
            into.setdefault("ttfb", []).append(out.first - out.begin)
            into.setdefault("slurp", []).append(out.last - out.first)


class Target:
    """Where the fresh system database goes."""

    def __init__(self, store: str, directory: Path | None, dsn: str | None, prefix: str) -> None:
        self.store = store
        self.directory = directory
        self.dsn = dsn
        self.prefix = prefix

    def config(self) -> dict[str, Any]:
        """A DBOS config for a new, empty system database."""
        config: dict[str, Any] = {"name": "actorflow-bench-reference", "log_level": "WARNING"}
        if self.store == "sqlite":
            if self.directory is None:
                raise ValueError("--dir is required with --store sqlite")
            config["system_database_url"] = f"sqlite:///{self.directory / 'dbos-ref.sqlite'}"
        else:
            if self.dsn is None:
                raise ValueError("--dsn is required with --store postgres")
            config["system_database_url"] = self.dsn
            config["dbos_system_schema"] = f"{self.prefix}_1"
        return config


RESULT_MARK = "@@dbos-reference-round "
"""What starts the line of a round's result on stdout, in ``--serve`` mode (other lines on
stdout, DBOS's own, are not results)."""


@asynccontextmanager
async def launched(DBOS: Any, target: Target) -> AsyncIterator[None]:
    """A launched DBOS on a fresh system database, destroyed afterwards."""
    DBOS(config=target.config())
    DBOS.launch()
    try:
        yield
    finally:
        DBOS.destroy()


async def run_round(dbos: Any, flows: Workflows, store: str, cases: list[Case]) -> dict[str, Any]:
    """Every case once, in order, on the launched DBOS; the round's JSON result."""
    runner = Runner(dbos.DBOS, flows, whole_seconds=store == "sqlite")
    for case in cases:
        await runner.measure(case)
    print(f"[bench] dbos {store}: round done", file=sys.stderr, flush=True)
    return {
        "engine": "dbos",
        "version": importlib.metadata.version("dbos"),
        "python": sys.version.split()[0],
        "samples": runner.samples,
        "not_run": runner.not_run,
    }


async def serve(dbos: Any, target: Target, rounds: Callable[[], str]) -> None:
    """Launch DBOS once and run a round per line that ``rounds`` reads (a JSON list of
    cases), printing each result after :data:`RESULT_MARK`; until an empty line or the end."""
    flows = Workflows(dbos)
    async with launched(dbos.DBOS, target):
        while line := (await asyncio.to_thread(rounds)).strip():
            result = await run_round(dbos, flows, target.store, parse_cases(line))
            print(RESULT_MARK + json.dumps(result), flush=True)


async def once(dbos: Any, target: Target, cases: list[Case]) -> dict[str, Any]:
    """One round of ``cases`` on a fresh system database."""
    flows = Workflows(dbos)
    async with launched(dbos.DBOS, target):
        return await run_round(dbos, flows, target.store, cases)


def parser() -> argparse.ArgumentParser:
    """The script's arguments."""
    p = argparse.ArgumentParser(
        prog="dbos_reference.py", description=__doc__.splitlines()[0] if __doc__ else None
    )
    p.add_argument("--store", choices=["sqlite", "postgres"], required=True)
    p.add_argument(
        "--cases",
        type=parse_cases,
        help="JSON list of the cases of one round (without it: a round per line of stdin)",
    )
    p.add_argument("--out", type=Path, help="where the result of --cases goes")
    p.add_argument("--dir", type=Path, help="directory for the SQLite file")
    p.add_argument("--dsn", help="PostgreSQL URL of the database to use")
    p.add_argument("--schema-prefix", default="bench_dbosref")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and measure: one round to ``--out``, or rounds read from stdin."""
    p = parser()
    args = p.parse_args(argv)
    if args.store == "sqlite" and args.dir is None:
        p.error("--dir is required with --store sqlite")
    if args.store == "postgres" and args.dsn is None:
        p.error("--dsn is required with --store postgres")
    if args.cases is not None and args.out is None:
        p.error("--out is required with --cases")
    dbos = load_dbos()
    logging.getLogger("dbos").setLevel(logging.WARNING)
    target = Target(args.store, args.dir, args.dsn, args.schema_prefix)
    if args.cases is None:
        asyncio.run(serve(dbos, target, sys.stdin.readline))
    else:
        args.out.write_text(json.dumps(asyncio.run(once(dbos, target, args.cases))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
