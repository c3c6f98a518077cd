"""Ownership across processes: real worker processes on one store, under kills and stops.

Each step body records its start and end in a ledger file outside the engine (see
``tests/cluster.py``), so "no completed step ran again" and "no step body started while
another attempt of it was running" are judged from what the processes did, not from what
the engine says it did.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from persistence import RunStatus, Store, open_store
from runtime import HookNotFoundError, Runtime, create_hook, sleep, step, workflow

from ..cluster import LEDGER_STEP, Entry, overlaps, read_ledger, wait_for
from ..scripts import script_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

FLOWS = (
    textwrap.dedent(
        """
    import asyncio, os, sys
    from runtime import Runtime, create_hook, sleep, step, step_metadata, workflow
    """
    )
    + LEDGER_STEP
    + textwrap.dedent(
        """
    LEDGER = os.environ["LEDGER"]

    @step(name="own:work")
    async def work(key: str, index: int, seconds: float) -> int:
        meta = step_metadata()
        record(LEDGER, "start", run=key, step=index, attempt=meta.attempt)
        await asyncio.sleep(seconds)
        record(LEDGER, "end", run=key, step=index, attempt=meta.attempt)
        return index

    @workflow(name="own:chain")
    async def chain(key: str, steps: int, seconds: float) -> int:
        total = 0
        for index in range(steps):
            total += await work(key, index, seconds)
            await sleep(0.01)
        return total

    @workflow(name="own:other")
    async def other(key: str) -> str:
        await work(key, 0, 0.01)
        return "other"

    @workflow(name="own:waits")
    async def waits(token: str) -> object:
        return await create_hook(token=token)

    HOSTED = {"chain": [chain], "other": [other], "both": [chain, other], "waits": [waits]}

    async def main() -> None:
        url, hosted = sys.argv[1], sys.argv[2]
        lease = float(os.environ.get("LEASE", "2"))
        async with Runtime(url, workflows=HOSTED[hosted], lease_seconds=lease) as rt:
            print("ready", rt.worker_id, flush=True)
            await asyncio.Event().wait()

    if __name__ == "__main__":
        asyncio.run(main())
    """
    )
)


class Workers:
    """Worker processes of one test, all killed when it ends."""

    def __init__(self, tmp_path: Path, url: str, lease: float = 2.0) -> None:
        self.script = tmp_path / "flows.py"
        self.script.write_text(FLOWS)
        self.ledger = tmp_path / "ledger.jsonl"
        self.url = url
        self.env = {**script_env(), "LEDGER": str(self.ledger), "LEASE": str(lease)}
        self.env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{self.env['PYTHONPATH']}"
        self.procs: list[subprocess.Popen[str]] = []
        self.killed: dict[int, float] = {}  # pid -> when it was killed

    def start(self, hosted: str = "chain") -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, str(self.script), self.url, hosted],
            env=self.env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("ready"), f"a worker did not start: {line!r}"
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[str]) -> None:
        self.killed[proc.pid] = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

    def entries(self) -> list[Entry]:
        """The ledger, with the bodies of killed processes ended when they were killed."""
        entries = read_ledger(self.ledger)
        open_: Counter[tuple[int, str, int]] = Counter()
        for entry in entries:
            ident = (entry.pid, entry["run"], entry["step"])
            open_[ident] += 1 if entry.what == "start" else -1
        for (pid, run, index), count in open_.items():
            if count > 0 and pid in self.killed:
                entries.append(Entry("end", pid, self.killed[pid], {"run": run, "step": index}))
        return sorted(entries, key=lambda e: e.t)


@pytest.fixture
def workers(tmp_path: Path, store_url: str):  # type: ignore[no-untyped-def]
    made: list[Workers] = []

    def make(lease: float = 2.0) -> Workers:
        made.append(Workers(tmp_path, store_url, lease))
        return made[-1]

    yield make
    for each in made:
        each.stop_all()


def ends(pool: Workers) -> int:
    return sum(1 for e in read_ledger(pool.ledger) if e.what == "end")


async def recorded_attempts(url: str, run_ids: list[str]) -> dict[tuple[str, int], int]:
    """(run key, step index) -> the attempt whose completion the log recorded."""
    from persistence import codec

    store = await open_store(url)
    found = {}
    try:
        for run_id in run_ids:
            for step in await store.list_steps(run_id):
                key, index, _ = codec.decode(step.input)[0]
                if step.status == "completed":
                    found[(key, index)] = step.attempt
    finally:
        await store.close()
    return found


def ended_once(entries: list[Entry]) -> Counter[tuple[str, int]]:
    """How many times each step's body ran to its end."""
    return Counter(
        (e["run"], e["step"]) for e in entries if e.what == "end" and "attempt" in e.fields
    )


async def wait_all(url: str, run_ids: list[str], timeout: float) -> dict[str, RunStatus]:
    store = await open_store(url)
    try:
        with anyio.fail_after(timeout):
            while True:
                statuses = {r: (await store.get_run(r)).status for r in run_ids}
                if all(s.terminal for s in statuses.values()):
                    return statuses
                await anyio.sleep(0.2)
    finally:
        await store.close()


@pytest.mark.parametrize("store_kind", ["postgres"])
async def test_three_workers_and_one_killed_finish_every_run_once(store_url: str, workers) -> None:  # type: ignore[no-untyped-def]
    pool = workers(lease=2.0)
    procs = [pool.start() for _ in range(3)]
    async with Runtime(store_url, role="client") as client:
        runs = [(await client.start("own:chain", f"r{i}", 5, 0.02)).id for i in range(300)]
        await anyio.to_thread.run_sync(
            lambda: wait_for(
                lambda: len([e for e in read_ledger(pool.ledger) if e.what == "end"]) > 300, 60
            )
        )
        victim = procs[1]
        pool.kill(victim)
        killed_at = pool.killed[victim.pid]
        statuses = await wait_all(store_url, runs, 120)
    assert set(statuses.values()) == {RunStatus.COMPLETED}
    entries = pool.entries()
    recorded = await recorded_attempts(store_url, runs)
    for entry in entries:  # a body ran again only if its end was never recorded: the kill
        if entry.what == "end" and "attempt" in entry.fields:
            attempt, last = entry["attempt"], recorded[(entry["run"], entry["step"])]
            assert attempt <= last, entry
            assert attempt == last or entry.pid == victim.pid, entry
    assert len(recorded) == 300 * 5
    assert not overlaps(entries, ("run", "step"))
    # the victim's runs were taken over within a lease (plus the renewal period and slack)
    resumed = [
        e.t for e in entries if e.what == "start" and e.pid != victim.pid and e.t > killed_at
    ]
    victims_runs = {e["run"] for e in entries if e.pid == victim.pid}
    taken = [
        e.t
        for e in entries
        if e.what == "start"
        and e.pid != victim.pid
        and e.t > killed_at
        and e["run"] in victims_runs
    ]
    assert resumed and taken
    assert min(taken) - killed_at < 2.0 + 1.0 + 2.0


@pytest.mark.parametrize("store_kind", ["postgres", "sqlite"])
async def test_workers_hosting_different_workflows_never_fail_each_others_runs(
    store_url: str, workers
) -> None:  # type: ignore[no-untyped-def]
    pool = workers()
    pool.start("chain")
    pool.start("other")
    async with Runtime(store_url, role="client") as client:
        runs = [(await client.start("own:chain", f"c{i}", 2, 0.005)).id for i in range(20)]
        runs += [(await client.start("own:other", f"o{i}")).id for i in range(20)]
        statuses = await wait_all(store_url, runs, 60)
    assert set(statuses.values()) == {RunStatus.COMPLETED}
    ends = ended_once(pool.entries())
    assert set(ends.values()) == {1} and len(ends) == 20 * 2 + 20


async def test_two_copies_of_a_script_on_the_default_file_never_run_a_step_twice_at_once(
    tmp_path: Path,
) -> None:
    """Two copies of a script, each with a default ``Runtime()`` (the embedded SQLite file of
    the directory they run in) hosting the same workflow: the second starts while the first
    is running its runs, and takes none of them; no step body starts while another attempt
    of it is running, and no run fails."""
    script = tmp_path / "twin.py"
    script.write_text(
        FLOWS.replace('if __name__ == "__main__":\n    asyncio.run(main())', "")
        + textwrap.dedent(
            """
            async def twin() -> None:
                async with Runtime(workflows=[chain], lease_seconds=2) as rt:
                    runs = [await rt.start(chain, f"{sys.argv[1]}{i}", 3, 0.05) for i in range(30)]
                    for run in runs:
                        assert await run.result(timeout=60) == 3

            asyncio.run(twin())
            """
        )
    )
    ledger = tmp_path / "ledger.jsonl"
    env = {**script_env(), "LEDGER": str(ledger)}
    env.pop("ACTORFLOW_STORE", None)
    first = subprocess.Popen([sys.executable, str(script), "a"], env=env, cwd=tmp_path)
    await anyio.to_thread.run_sync(
        lambda: wait_for(lambda: sum(e.what == "end" for e in read_ledger(ledger)) >= 10, 60)
    )
    second = subprocess.Popen([sys.executable, str(script), "b"], env=env, cwd=tmp_path)
    assert first.wait(timeout=120) == 0 and second.wait(timeout=120) == 0
    assert (tmp_path / ".actorflow" / "actorflow.db").exists()
    entries = read_ledger(ledger)
    assert not overlaps(entries, ("run", "step"))
    ends = ended_once(entries)
    assert len(ends) == 2 * 30 * 3 and set(ends.values()) == {1}
    by = {e["run"][0]: set() for e in entries}
    for entry in entries:
        by[entry["run"][0]].add(entry.pid)
    assert by == {"a": {first.pid}, "b": {second.pid}}  # each ran its own runs only


@pytest.mark.parametrize("store_kind", ["postgres"])
async def test_a_stopped_worker_loses_its_runs_and_writes_nothing_after(
    store_url: str, workers
) -> None:  # type: ignore[no-untyped-def]
    """SIGSTOP a worker past its lease: another takes its runs; after SIGCONT its late
    writes are refused and it starts no new step of a run it lost."""
    pool = workers(lease=1.0)
    first = pool.start()
    async with Runtime(store_url, role="client") as client:
        runs = [(await client.start("own:chain", f"s{i}", 4, 0.3)).id for i in range(10)]
        await anyio.to_thread.run_sync(
            lambda: wait_for(lambda: any(e.what == "start" for e in read_ledger(pool.ledger)), 30)
        )
        first.send_signal(signal.SIGSTOP)
        stopped_at = time.time()
        second = pool.start()
        await anyio.sleep(4.0)  # well past the first worker's lease
        first.send_signal(signal.SIGCONT)
        resumed_at = time.time()
        statuses = await wait_all(store_url, runs, 60)
    assert set(statuses.values()) == {RunStatus.COMPLETED}
    entries = read_ledger(pool.ledger)
    recorded = await recorded_attempts(store_url, runs)
    assert len(recorded) == 10 * 4
    taken = {e["run"] for e in entries if e.pid == second.pid and e.t > stopped_at}
    assert taken
    for entry in entries:
        if entry.pid != first.pid or entry["run"] not in taken or entry.t < resumed_at:
            continue
        # after it woke up, the stopped worker ran only attempts it had started before it
        # was stopped, and the new owner ran them again: it started nothing new
        assert entry["attempt"] < recorded[(entry["run"], entry["step"])], entry
    for (run, index), attempt in recorded.items():  # every recorded end is a live owner's
        (end,) = [
            e
            for e in entries
            if e.what == "end" and (e["run"], e["step"], e["attempt"]) == (run, index, attempt)
        ]
        assert end.pid == second.pid or end.t < stopped_at, end


slow_bodies: Counter[str] = Counter()


@step(name="own:slow")
async def slow(key: str) -> str:
    slow_bodies[key] += 1
    await asyncio.sleep(0.8)
    return key


@workflow(name="own:slow_flow")
async def slow_flow(key: str) -> str:
    return await slow(key)


@pytest.mark.parametrize("store_kind", ["memory", "sqlite", "postgres"])
async def test_a_worker_whose_lease_lapsed_cannot_write_or_start_anything(
    shared_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that stops renewing (a long pause) loses its run to another; its late write
    is refused by the lease fence and it starts nothing more of that run."""
    from runtime.leases import Leases

    key = uuid.uuid4().hex
    keep = Leases.keep

    async def stalled(self: Leases) -> None:  # the stalled worker renews and claims nothing
        if self.worker_id != "stalled":
            await keep(self)
        else:
            await anyio.sleep_forever()

    monkeypatch.setattr(Leases, "keep", stalled)
    async with Runtime(
        shared_store, workflows=[slow_flow], worker_id="stalled", lease_seconds=0.3
    ) as first:
        run = await first.start(slow_flow, key)
        with anyio.fail_after(5):
            while not slow_bodies[key]:
                await anyio.sleep(0.01)
        async with Runtime(
            shared_store, workflows=[slow_flow], worker_id="heir", lease_seconds=0.3
        ) as second:
            assert await second.get_run(run.id).result(timeout=15) == key
            await anyio.sleep(1.0)  # the stalled worker's body ends, and its write is refused
            assert first.stats()["live_runs"] == 0
    events = [e.event_type for e in await _events(shared_store, run.id)]
    assert events.count("step_completed") == 1
    assert events.count("step_started") == 2  # the stalled attempt and the heir's
    assert slow_bodies[key] == 2  # and no third: the stalled worker restarted nothing


async def test_a_waiter_on_a_run_that_leaves_this_worker_is_woken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run live here is re-checked only every 5 s (its end is notified here); once it
    leaves (its lease went to another worker, whose commits this process is not told of),
    its waiter is woken to poll the store again."""
    from runtime.leases import Leases

    key = uuid.uuid4().hex
    keep = Leases.keep

    async def stalled(self: Leases) -> None:
        if self.worker_id != "stalled":
            await keep(self)
        else:
            await anyio.sleep_forever()

    monkeypatch.setattr(Leases, "keep", stalled)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    async with Runtime(url, workflows=[slow_flow], worker_id="stalled", lease_seconds=0.3) as first:
        run = await first.start(slow_flow, key)
        async with Runtime(url, workflows=[slow_flow], worker_id="heir", lease_seconds=0.3):
            with anyio.fail_after(3.5):  # the heir ends it in ~1.2 s; the stalled body in 0.8
                assert await run.result(timeout=30) == key


async def _events(store: Store, run_id: str) -> list[Any]:
    return (await store.list_events(run_id)).items


restart_bodies: Counter[str] = Counter()


@step(name="own:restart_step")
async def restart_step(key: str, seconds: float) -> str:
    restart_bodies[key] += 1
    await asyncio.sleep(seconds)
    return key


@workflow(name="own:restart_flow")
async def restart_flow(key: str, nap: float, seconds: float) -> str:
    await sleep(nap)
    first = await restart_step(f"{key}:1", seconds)
    await sleep(nap)
    return first + "+" + await restart_step(f"{key}:2", seconds)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_runs_finish_across_a_postgresql_restart_without_restarting_the_worker(
    mode: str,
) -> None:
    """PostgreSQL restarts while runs are mid-step and passivated sleeps come due: the
    worker's reads and writes fail, back off and go on; every run ends, each step once."""
    from ..cluster import private_postgres

    with private_postgres() as server:
        async with Runtime(
            server.url, workflows=[restart_flow], passivate_after=0, lease_seconds=10
        ) as rt:
            tag = uuid.uuid4().hex
            runs = [
                await rt.start(restart_flow, f"{tag}-{i}", 0.4 + 0.02 * i, 0.5) for i in range(40)
            ]
            await anyio.sleep(0.5)  # some runs are in a step, others asleep and passivated
            await anyio.to_thread.run_sync(server.restart, mode)
            with anyio.fail_after(60):
                results = [await run.result(timeout=60) for run in runs]
    assert results == [f"{tag}-{i}:1+{tag}-{i}:2" for i in range(40)]
    ran = [restart_bodies[f"{tag}-{i}:{n}"] for i in range(40) for n in (1, 2)]
    assert set(ran) == {1}  # the worker lived on: each body ran once, its end written later


@step(name="own:one")
async def one(i: int) -> int:
    return i


@workflow(name="own:one_step")
async def one_step(i: int) -> int:
    return await one(i)


@pytest.mark.parametrize("store_kind", ["postgres"])
async def test_two_thousand_concurrent_starts_lose_no_lease(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="actorflow.runtime")
    async with Runtime(store_url, workflows=[one_step], lease_seconds=2) as rt:
        with anyio.fail_after(120):
            runs = await asyncio.gather(*[rt.start(one_step, i) for i in range(2000)])
            results = [await run.result(timeout=60) for run in runs]
    assert results == list(range(2000))
    assert not [r for r in caplog.records if "lost the lease" in r.getMessage()]


@workflow(name="own:approval")
async def approval(token: str) -> object:
    return await create_hook(token=token)


@pytest.mark.parametrize("store_kind", ["postgres"])
async def test_two_workers_resuming_each_others_hooks_finish_every_run(store_url: str) -> None:
    """Each worker waits on 1,200 hooks that the other one resumes: every payload wakes its
    run's owner (notifications, not counting), and every run ends within seconds."""
    tag = uuid.uuid4().hex
    async with (
        Runtime(store_url, workflows=[approval], worker_id="left", poll_interval=30) as left,
        Runtime(store_url, workflows=[approval], worker_id="right", poll_interval=30) as right,
    ):
        mine = {
            rt: await asyncio.gather(
                *[rt.start(approval, f"{tag}:{rt.worker_id}:{i}") for i in range(1200)]
            )
            for rt in (left, right)
        }

        async def resume(resumer: Runtime, token: str, value: int) -> None:
            while True:
                try:
                    await resumer.resume_hook(token, value)
                    return
                except HookNotFoundError:  # its run has not made the hook yet
                    await anyio.sleep(0.01)

        began = time.monotonic()
        with anyio.fail_after(60):
            await asyncio.gather(
                *[
                    resume(resumer, f"{tag}:{owner.worker_id}:{i}", i)
                    for owner, resumer in ((left, right), (right, left))
                    for i in range(1200)
                ]
            )
            for runs in mine.values():
                assert [await run.result(timeout=60) for run in runs] == list(range(1200))
    assert time.monotonic() - began < 30
