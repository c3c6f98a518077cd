"""Scaling out on PostgreSQL: what one server carries, runs/s with 1, 2 and 3 workers, takeover.

``python -m benchmarks.scaling --postgres URL [--runs N] [--workers 1,2,3] [--leases 2,5]``

- *events/s*: ``create_batch`` of 100 ``run_created`` events, from 1 and from 4 writers;
- *runs/s*: a client starts N runs of three no-op steps (12 events each) and W worker
  processes execute them; from the first start to the last end;
- *takeover*: a worker holding runs is killed (SIGKILL: its process is gone, seen at once on
  the same host) or stopped (SIGSTOP: a hung or cut-off worker, whose leases must lapse);
  the time until another worker starts a step of one of its runs.

Each measurement uses a schema of its own, dropped afterwards. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

from persistence import NewEvent, open_store
from persistence import events as ev
from persistence.urls import postgres_parts

WORKER = textwrap.dedent(
    """
    import asyncio, json, os, sys, time
    from runtime import Runtime, step, workflow

    LEDGER = os.environ["LEDGER"]

    @step(name="scale:noop")
    async def noop(i: int) -> int:
        return i

    @step(name="scale:held")
    async def held(key: str) -> str:
        line = json.dumps({"run": key, "pid": os.getpid(), "t": time.time()}) + "\\n"
        fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, line.encode())
        os.close(fd)
        await asyncio.sleep(3600)
        return key

    @workflow(name="scale:flow")
    async def flow(i: int) -> int:
        return await noop(i) + await noop(i) + await noop(i)

    @workflow(name="scale:hold")
    async def hold(key: str) -> str:
        return await held(key)

    async def main() -> None:
        lease = float(os.environ["LEASE"])
        async with Runtime(sys.argv[1], workflows=[flow, hold], lease_seconds=lease) as rt:
            print("ready", flush=True)
            await asyncio.Event().wait()

    asyncio.run(main())
    """
)


def schema_url(base: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}schema=scale_{uuid.uuid4().hex[:12]}"


async def drop(url: str) -> None:
    import asyncpg

    clean, ours = postgres_parts(url)
    conn = await asyncpg.connect(clean)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{ours["schema"]}" CASCADE')
    finally:
        await conn.close()


class Pool:
    """Worker processes on one store."""

    def __init__(self, url: str, lease: float, directory: Path) -> None:
        self.script = directory / "scale_worker.py"
        self.script.write_text(WORKER)
        self.ledger = directory / f"ledger-{uuid.uuid4().hex[:6]}.jsonl"
        self.url = url
        self.env = {
            **os.environ,
            "LEDGER": str(self.ledger),
            "LEASE": str(lease),
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        }
        self.procs: list[subprocess.Popen[str]] = []

    def start(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, str(self.script), self.url],
            env=self.env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().startswith("ready")
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            proc.wait(timeout=30)

    def starts(self) -> list[dict[str, object]]:
        if not self.ledger.exists():
            return []
        return [json.loads(line) for line in self.ledger.read_text().splitlines()]


async def events_per_second(base: str, writers: int, seconds: float = 3.0) -> float:
    """``create_batch`` of 100 new runs' events, from ``writers`` connections at once."""
    url = schema_url(base)
    stores = [await open_store(url) for _ in range(writers)]
    written = 0
    deadline = time.perf_counter() + seconds

    async def write(store: object) -> None:
        nonlocal written
        while time.perf_counter() < deadline:
            batch = [
                NewEvent(f"r{uuid.uuid4().hex}", ev.RunCreated(workflow_name="w", input=b"\x90"))
                for _ in range(100)
            ]
            await store.create_batch(batch)  # type: ignore[attr-defined]
            written += len(batch)

    began = time.perf_counter()
    try:
        await asyncio.gather(*[write(store) for store in stores])
    finally:
        for store in stores:
            await store.close()
        await drop(url)
    return written / (time.perf_counter() - began)


async def runs_per_second(base: str, workers: int, runs: int, directory: Path) -> float:
    from runtime import Runtime

    url = schema_url(base)
    pool = Pool(url, 10.0, directory)
    try:
        async with Runtime(url, role="client") as client:
            for _ in range(workers):
                pool.start()
            began = time.perf_counter()
            limit = asyncio.Semaphore(200)

            async def start(i: int) -> str:
                async with limit:
                    return (await client.start("scale:flow", i)).id

            ids = await asyncio.gather(*[start(i) for i in range(runs)])
            for run_id in ids:
                await client.get_run(run_id).result(timeout=600)
            return runs / (time.perf_counter() - began)
    finally:
        pool.close()
        await drop(url)


async def takeover(base: str, lease: float, how: signal.Signals, directory: Path) -> float:
    """Seconds from a worker's death (or stop) to another worker running one of its runs."""
    from runtime import Runtime

    url = schema_url(base)
    pool = Pool(url, lease, directory)
    try:
        victim = pool.start()
        async with Runtime(url, role="client") as client:
            for i in range(10):
                await client.start("scale:hold", f"k{i}")
            while True:  # every run is in its step (the victim holds them all)
                if len(pool.starts()) >= 10:
                    break
                await asyncio.sleep(0.05)
            heir = pool.start()
            victim.send_signal(how)
            struck = time.time()
            while True:
                taken = [s for s in pool.starts() if s["pid"] == heir.pid]
                if taken:
                    return min(float(s["t"]) for s in taken) - struck  # type: ignore[arg-type]
                await asyncio.sleep(0.02)
    finally:
        pool.close()
        await drop(url)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling")
    parser.add_argument("--postgres", required=True, metavar="URL")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--leases", default="2,5")
    args = parser.parse_args(argv)
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for writers in (1, 4):
            rate = await events_per_second(args.postgres, writers)
            rows.append(
                (f"create_batch of 100 events, {writers} writer(s)", f"{rate:,.0f} events/s")
            )
        for count in (int(w) for w in args.workers.split(",")):
            rate = await runs_per_second(args.postgres, count, args.runs, directory)
            rows.append(
                (
                    f"{args.runs} runs of 3 steps, {count} worker process(es)",
                    f"{rate:,.0f} runs/s ({rate * 12:,.0f} events/s)",
                )
            )
        for lease in (float(x) for x in args.leases.split(",")):
            for how, what in ((signal.SIGKILL, "killed"), (signal.SIGSTOP, "stopped")):
                seconds = await takeover(args.postgres, lease, how, directory)
                rows.append(
                    (f"takeover, lease_seconds={lease:g}, worker {what}", f"{seconds:.2f} s")
                )
    print("| measure | result |\n|---|---:|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
