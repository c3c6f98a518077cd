"""A worker's leases on every store: claims of new runs taken together, leases of ended runs
let go by the write that ends them, and claims whose caller left given back."""

from __future__ import annotations

import asyncio
import logging
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from persistence import (
    Lease,
    RunNotFoundError,
    Store,
    StoreConfigurationError,
    StoreError,
    StoreUnavailableError,
    WorkerInfo,
)
from runtime import Runtime, RuntimeClosedError, sleep, step, workflow
from runtime.leases import Leases

from ..faults import LEASE_METHODS, FaultyStore
from ..scripts import kill_when, start

pytestmark = pytest.mark.anyio
bodies: Counter[str] = Counter()  # step bodies run, counted outside the store


@step(name="lease-test:echo")
async def echo(value: str) -> str:
    return value


@workflow(name="lease-test:one")
async def one_step(value: str) -> str:
    return await echo(value)


async def test_runs_started_together_share_claims_and_end_without_releases(
    shared_store: Store,
) -> None:
    store = FaultyStore(shared_store)
    tag = uuid.uuid4().hex
    async with Runtime(store, workflows=[one_step], worker_id=f"w-{tag}") as rt:  # type: ignore[arg-type]
        with anyio.fail_after(60):
            runs = await asyncio.gather(*(rt.start(one_step, f"{tag}-{i}") for i in range(300)))
            results = await asyncio.gather(*(run.result() for run in runs))
        assert results == [f"{tag}-{i}" for i in range(300)]
        assert store.calls["claim_each"] <= 30, store.calls  # not one claim per start
        assert store.calls["release_leases"] == 0  # the ending writes let the leases lapse
        assert await shared_store.renew_leases(f"w-{tag}", 30) == set()


@pytest.mark.parametrize("folded", [True, False], ids=["claim-in-write", "claim-apart"])
async def test_a_new_runs_first_write_takes_its_lease_where_the_store_can(
    shared_store: Store, folded: bool
) -> None:
    """Every built-in store takes a new run's lease in its first write; a store that cannot
    (``claims_in_write`` false) gets one ``claim_each`` first."""
    assert shared_store.claims_in_write  # memory, SQLite and PostgreSQL take it in the write
    store = FaultyStore(shared_store, claims_in_write=None if folded else False)
    tag = uuid.uuid4().hex
    async with Runtime(store, workflows=[one_step], worker_id=f"w-{tag}") as rt:  # type: ignore[arg-type]
        before = dict(store.calls)
        run = await rt.start(one_step, "x")
        assert await run.result(timeout=10) == "x"
        claims = store.calls["claim_each"] - before.get("claim_each", 0)
        writes = store.calls["create_batch"] - before.get("create_batch", 0)
        assert (claims, writes) == ((0 if folded else 1), 2)  # start + first step; end
        second = await rt.start(one_step, "y")  # a run still running holds its lease here
        assert await second.result(timeout=10) == "y"
    assert await shared_store.renew_leases(f"w-{tag}", 30) == set()  # ended: lapsed


@pytest.mark.parametrize("folded", [True, False], ids=["claim-in-write", "claim-apart"])
async def test_a_claim_that_fails_fails_its_start_and_stores_nothing(
    shared_store: Store, folded: bool
) -> None:
    store = FaultyStore(shared_store, claims_in_write=None if folded else False)
    run_id = f"lease-test-failed-claim-{uuid.uuid4().hex}"
    async with Runtime(store, workflows=[one_step]) as rt:  # type: ignore[arg-type]
        if folded:  # the lease is taken by the first write
            store.fail_next(1, error=lambda: StoreConfigurationError("injected: read-only"))
            expected: type[StoreError] = StoreConfigurationError
        else:
            store.fail_next(1, methods=["claim_each"])
            expected = StoreUnavailableError
        with pytest.raises(expected):
            await rt.start(one_step, "x", run_id=run_id)
        with pytest.raises(RunNotFoundError):
            await shared_store.get_run(run_id)
        run = await rt.start(one_step, "y", run_id=run_id)  # tried again
        assert await run.result(timeout=10) == "y"


async def test_a_claim_whose_caller_left_is_given_back(shared_store: Store) -> None:
    store = FaultyStore(shared_store)
    tag = uuid.uuid4().hex
    async with Runtime(store, workflows=[one_step], worker_id=f"w-{tag}") as rt:  # type: ignore[arg-type]
        store.delay = 0.3
        with anyio.move_on_after(0.1):  # the caller gives up while the claim is out
            await rt.start(one_step, "x", run_id=f"left-{tag}")
        store.delay = 0
        with anyio.fail_after(10):
            while await shared_store.renew_leases(f"w-{tag}", 30):
                await anyio.sleep(0.05)
        with pytest.raises(RunNotFoundError):
            await shared_store.get_run(f"left-{tag}")
        assert await shared_store.claim_run("other", f"left-{tag}", 30) is not None


async def test_a_second_start_of_an_id_goes_on_when_the_first_caller_leaves(
    shared_store: Store,
) -> None:
    store = FaultyStore(shared_store)
    tag = uuid.uuid4().hex
    async with Runtime(store, workflows=[one_step]) as rt:  # type: ignore[arg-type]
        store.delay = 0.3
        first = asyncio.ensure_future(rt.start(one_step, "a", run_id=f"twice-{tag}"))
        await anyio.sleep(0.05)
        second = asyncio.ensure_future(rt.start(one_step, "a", run_id=f"twice-{tag}"))
        await anyio.sleep(0.05)
        first.cancel()  # while its claim is out: the second start must not inherit that
        store.delay = 0
        with anyio.fail_after(10):
            run = await second
            assert await run.result() == "a"
        with pytest.raises(asyncio.CancelledError):
            await first


async def test_a_start_waiting_on_its_claim_when_the_runtime_closes_is_told(
    shared_store: Store,
) -> None:
    store = FaultyStore(shared_store)
    outcome: list[BaseException | str] = []
    async with Runtime(store, workflows=[one_step], shutdown_grace=0.1) as rt:  # type: ignore[arg-type]

        async def start() -> None:
            try:
                outcome.append((await rt.start(one_step, "x")).id)
            except BaseException as error:
                outcome.append(error)

        store.delay = 5.0  # the claim is out when the runtime leaves
        task = asyncio.ensure_future(start())
        await anyio.sleep(0.1)
    with anyio.fail_after(10):
        await task
    assert len(outcome) == 1 and isinstance(outcome[0], RuntimeClosedError), outcome


async def test_a_lease_under_this_workers_id_that_it_does_not_hold_is_given_back(
    shared_store: Store,
) -> None:
    """A worker restarted with the same id (a second runtime in the process, or a container
    whose host name and pid come back the same) meets a live lease of its own id that an
    earlier incarnation took and never released. Its renewals must not keep that lease alive
    for a run nobody executes: it is given back, claimed and the run finishes."""
    tag = uuid.uuid4().hex
    worker = f"w-{tag}"
    async with Runtime(shared_store, role="client") as client:
        run = await client.start("lease-test:one", tag)
    assert [lease.run_id for lease in await shared_store.claim_each(worker, [run.id], 30)] == [
        run.id
    ]  # the earlier incarnation's lease: live for 30 s
    async with Runtime(shared_store, workflows=[one_step], worker_id=worker, lease_seconds=1) as rt:
        with anyio.fail_after(15):  # well before the old lease's 30 s
            assert await rt.get_run(run.id).result() == tag


class _RenewingStore:
    """Just what ``Leases.renew`` calls: a renewal that sees ``during`` happen while it is out
    and answers ``held``."""

    def __init__(self, held: set[str], during: Callable[[], None]) -> None:
        self.held, self.during = held, during
        self.released: list[list[str]] = []

    async def beat(self, worker: object) -> None:
        return None

    async def renew_leases(self, owner: str, lease_seconds: float) -> set[str]:
        await asyncio.sleep(0)
        self.during()
        return set(self.held)

    async def release_leases(self, owner: str, run_ids: list[str]) -> None:
        self.released.append(sorted(run_ids))

    async def claim_each(self, owner: str, run_ids: list[str], seconds: float) -> list[object]:
        await asyncio.Event().wait()  # a claim that stays out
        return []

    async def list_workers(self) -> list[object]:
        return []

    async def claim_runs(self, *args: object, **kwargs: object) -> list[object]:
        await asyncio.Event().wait()  # a sweep that stays out
        return []


async def test_only_leases_nobody_here_holds_or_let_go_meanwhile_are_given_back() -> None:
    """Of the runs a renewal finds under this worker's id: the ones it executes, the one that
    ended while the renewal was out and the one being started are its own; the other is a
    stray, given back and swept for."""
    leases: Leases
    store = _RenewingStore({"mine", "ended", "starting", "stray"}, lambda: leases.forget("ended"))
    leases = Leases(store, "w", 10.0, lambda: [], lambda *_: None, lambda _: None)  # type: ignore[arg-type]
    leases.owned.update(mine=1, ended=1)
    leases.starting("starting")
    await leases.renew()
    assert store.released == [["stray"]]
    assert leases.owned == {"mine": 1}
    store.held, store.released = {"mine"}, []
    await leases.renew()
    assert store.released == []  # nothing stray: nothing given back
    claim = asyncio.ensure_future(leases.claim("claimed"))  # its answer is not in hand yet
    await asyncio.sleep(0)
    store.held = {"mine", "claimed"}
    await leases.renew()
    assert store.released == []  # a claim is out: what it took may not be known yet
    await leases.stop()
    with pytest.raises(RuntimeClosedError):
        await claim
    sweep = asyncio.ensure_future(leases.claim_lapsed())  # what it takes is not known yet
    await asyncio.sleep(0)
    await leases.renew()
    assert store.released == []
    sweep.cancel()


async def test_runs_ending_while_leases_are_renewed_are_not_taken_for_strays(
    shared_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A run that ends (or is let go) while a renewal is out was renewed by it; it is not a
    lease this worker holds without knowing, so nothing is given back and nothing logged."""
    store = FaultyStore(shared_store)
    tag = uuid.uuid4().hex
    async with Runtime(
        store,  # type: ignore[arg-type]
        workflows=[one_step],
        worker_id=f"w-{tag}",
        lease_seconds=0.2,  # a renewal every 40 ms, while runs start and end
    ) as rt:
        with anyio.fail_after(60):
            for round_ in range(10):
                runs = await asyncio.gather(
                    *(rt.start(one_step, f"{tag}-{round_}-{i}") for i in range(100))
                )
                await asyncio.gather(*(run.result() for run in runs))
    assert store.calls["renew_leases"] >= 5
    assert "it does not execute" not in caplog.text
    assert store.calls["release_leases"] <= 1  # (the runtime's leaving)


async def test_an_empty_worker_id_is_refused() -> None:
    refused = r"worker_id must be a non-empty string \(or None\), got ''"
    with pytest.raises(ValueError, match=refused):
        Runtime("memory://", worker_id="")


# -- strays: what goes wrong while they are given back -------------------------------------


@step(name="stray-test:note")
async def note(key: str, index: int) -> int:
    bodies[f"{key}:{index}"] += 1
    await asyncio.sleep(0.05)  # long enough for renewals to happen while it runs
    return index


@workflow(name="stray-test:three")
async def three_notes(key: str) -> int:
    return sum([await note(key, index) for index in range(3)])


async def _strays(store: Store, worker: str, keys: list[str]) -> list[str]:
    """Runs of ``three_notes`` (one per key) that a client starts and an earlier incarnation
    of ``worker`` claimed for 30 s and never executed: strays of the next one."""
    async with Runtime(store, role="client") as client:
        run_ids = [(await client.start("stray-test:three", key)).id for key in keys]
    claimed = await store.claim_each(worker, run_ids, 30)
    assert sorted(lease.run_id for lease in claimed) == sorted(run_ids)
    return run_ids


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("failure", ["unavailable", "dropped-after-commit"])
async def test_a_give_back_that_fails_is_told_and_done_again(
    shared_store: Store, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    """The store fails while the strays are given back: before the give-back reached it (down)
    or after it was stored (the connection dropped before the answer). The warning says the
    give-back failed, the runtime goes on, the next renewal gives back what is still held, and
    the run finishes, well before the earlier incarnation's lease would have lapsed."""
    caplog.set_level(logging.WARNING, logger="actorflow.runtime")
    tag = uuid.uuid4().hex
    worker = f"w-{tag}"
    [run_id] = await _strays(shared_store, worker, [tag])
    store = FaultyStore(shared_store)
    if failure == "unavailable":
        store.fail_next(1, methods=["release_leases"])
    else:
        dropped = ConnectionResetError("injected: connection dropped")
        store.fail_next(1, methods=["release_leases"], error=lambda: dropped, after=True)
    async with Runtime(store, workflows=[three_notes], worker_id=worker, lease_seconds=1) as rt:  # type: ignore[arg-type]
        with anyio.fail_after(15):
            assert await rt.get_run(run_id).result() == 3
    assert store.failures["release_leases"] == 1
    [failed] = _warnings(caplog, "could not give back")
    assert run_id in failed and ("injected" in failed), failed
    given = _warnings(caplog, "given back, to be claimed again")
    if failure == "unavailable":  # still held: the next renewal found it and gave it back
        assert len(given) == 1 and run_id in given[0], caplog.text
    else:  # stored after all: nothing left to give back, the run was claimed
        assert given == [], caplog.text
    assert _warnings(caplog, "could not renew") == []
    assert [bodies[f"{tag}:{index}"] for index in range(3)] == [1, 1, 1]


STRAY_FINDER = textwrap.dedent(
    """
    import asyncio, pathlib, sys
    from persistence import open_store
    from runtime import Runtime, step, workflow
    from tests.faults import FaultyStore

    url, worker, marks = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    bodies = marks / "bodies"

    @step(name="stray-test:note")
    async def note(key: str, index: int) -> int:
        with bodies.open("a") as f:
            f.write(f"{key}:{index}\\n")
        return index

    @workflow(name="stray-test:three")
    async def three_notes(key: str) -> int:
        return sum([await note(key, index) for index in range(3)])

    class GiveBackNeverArrives(FaultyStore):
        async def release_leases(self, owner, run_ids):
            marks.joinpath("found").write_text(" ".join(sorted(run_ids)))
            await asyncio.Event().wait()  # killed here, before the store hears of it

    async def main():
        store = GiveBackNeverArrives(await open_store(url))
        async with Runtime(store, workflows=[three_notes], worker_id=worker, lease_seconds=1):
            await asyncio.sleep(60)

    asyncio.run(main())
    """
)


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
async def test_a_worker_killed_as_it_gives_back_strays_leaves_them_to_the_next(
    shared_store: Store, store_url: str, tmp_path: Path
) -> None:
    """A worker process finds strays under its id and is killed (SIGKILL) before its give-back
    reaches the store. Its renewals had cut their leases to its own 1 s; a worker of another
    id takes the runs over and runs each step once (the killed one ran none)."""
    tag = uuid.uuid4().hex
    keys = [f"{tag}-{i}" for i in range(3)]
    run_ids = await _strays(shared_store, f"doomed-{tag}", keys)
    script = tmp_path / "finder.py"
    script.write_text(STRAY_FINDER)
    marks = tmp_path / "marks"
    marks.mkdir()
    finder = start(script, store_url, f"doomed-{tag}", str(marks))
    await kill_when(finder, marks / "found", timeout=15)
    assert (marks / "found").read_text().split() == sorted(run_ids)

    async with Runtime(
        shared_store, workflows=[three_notes], worker_id=f"heir-{tag}", lease_seconds=1
    ) as heir:
        with anyio.fail_after(20):  # not the 30 s of the leases the strays had
            results = [await heir.get_run(run_id).result() for run_id in run_ids]
    assert results == [3, 3, 3]
    assert not (marks / "bodies").exists()  # the killed worker ran no step of them
    ran = {key: [bodies[f"{key}:{index}"] for index in range(3)] for key in keys}
    assert ran == {key: [1, 1, 1] for key in keys}


@pytest.mark.timeout(60)
async def test_two_runtimes_of_one_process_have_ids_of_their_own_and_run_each_step_once(
    shared_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Two workers of one process on one store, both with the default id: each has its own
    (were it ``host:pid`` for both, each would renew the other's leases, take its runs for
    strays, give them back, claim them and run their steps again)."""
    caplog.set_level(logging.WARNING, logger="actorflow.runtime")
    tag = uuid.uuid4().hex
    async with (
        Runtime(shared_store, workflows=[three_notes], lease_seconds=0.5) as a,
        Runtime(shared_store, workflows=[three_notes], lease_seconds=0.5) as b,
    ):
        assert a.worker_id != b.worker_id
        with anyio.fail_after(40):
            runs = await asyncio.gather(
                *((a if i % 2 else b).start(three_notes, f"{tag}-{i}") for i in range(20))
            )
            await anyio.sleep(1.0)  # several renewals of each while the runs go on
            results = await asyncio.gather(*(run.result() for run in runs))
    assert results == [3] * 20
    ran = {i: [bodies[f"{tag}-{i}:{index}"] for index in range(3)] for i in range(20)}
    assert ran == {i: [1, 1, 1] for i in range(20)}
    assert _warnings(caplog, "does not execute") == []
    assert _warnings(caplog, "lost the lease") == []


async def test_a_worker_id_open_in_this_process_is_refused_to_a_second_worker(
    shared_store: Store,
) -> None:
    """Two open workers of one process with one id would take each other's runs for their
    own: the second is refused before it opens anything; a client may use the id, and the
    id is free again once its worker has closed."""
    worker = f"w-{uuid.uuid4().hex}"
    async with Runtime(shared_store, workflows=[one_step], worker_id=worker) as first:
        second = Runtime(shared_store, workflows=[one_step], worker_id=worker)
        with pytest.raises(ValueError, match=f"worker id '{worker}' is used by another open"):
            async with second:
                pass
        async with Runtime(shared_store, role="client", worker_id=worker) as client:
            run = await client.start("lease-test:one", "by a client")
        assert await first.get_run(run.id).result(timeout=10) == "by a client"
    async with Runtime(shared_store, workflows=[one_step], worker_id=worker) as again:
        assert await (await again.start(one_step, "again")).result(timeout=10) == "again"


class _LateClaims(FaultyStore):
    """A store whose claims, once ``holding``, take their leases at once but answer only when
    ``answer`` is set (a slow network, a busy server)."""

    def __init__(self, inner: Store, claims_in_write: bool | None = None) -> None:
        super().__init__(inner, claims_in_write)
        self.holding = False
        self.reached = asyncio.Event()
        self.answer = asyncio.Event()

    async def claim_runs(self, *args: Any, **kwargs: Any) -> list[Lease]:
        return await self._late(await self.inner.claim_runs(*args, **kwargs))

    async def claim_each(self, *args: Any, **kwargs: Any) -> list[Lease]:
        return await self._late(await self.inner.claim_each(*args, **kwargs))

    async def _late(self, leases: list[Lease]) -> list[Lease]:
        if self.holding and leases:
            self.reached.set()
            await self.answer.wait()
        return leases


@pytest.mark.timeout(30)
async def test_runs_a_sweep_takes_while_its_worker_leaves_are_released_with_the_rest(
    shared_store: Store,
) -> None:
    """A worker leaving while a sweep's claim is out waits for its answer, and releases the
    runs it took with the others: they are claimable at once, not held under the id of a
    worker that is gone until their leases lapse."""
    store = _LateClaims(shared_store)
    tag = uuid.uuid4().hex
    worker = f"w-{tag}"

    async def answer_late() -> None:
        await anyio.sleep(0.3)  # the worker is leaving; the claim's answer is not back
        store.answer.set()

    async with Runtime(store, workflows=[one_step], worker_id=worker, shutdown_grace=0.1):  # type: ignore[arg-type]
        store.holding = True
        async with Runtime(shared_store, role="client") as client:
            run = await client.start("lease-test:one", tag)  # the worker's sweep claims it
        with anyio.fail_after(10):
            await store.reached.wait()
        answering = asyncio.ensure_future(answer_late())
    await answering
    assert await shared_store.renew_leases(worker, 30) == set()
    async with Runtime(shared_store, workflows=[one_step]) as other:
        with anyio.fail_after(10):  # well before the lease's 10 s
            assert await other.get_run(run.id).result() == tag


@pytest.mark.timeout(30)
async def test_a_claim_out_while_its_worker_leaves_is_seen_through_and_released(
    shared_store: Store,
) -> None:
    """A start's own claim of its run (on a store that claims apart from its writes) is out
    when the worker leaves: its answer is waited for and the lease released with the rest,
    not left under the id of a worker that is gone until it lapses."""
    store = _LateClaims(shared_store, claims_in_write=False)
    tag = uuid.uuid4().hex
    worker = f"w-{tag}"
    outcome: list[BaseException | str] = []

    async def start(rt: Runtime) -> None:
        try:
            outcome.append((await rt.start(one_step, tag, run_id=f"run-{tag}")).id)
        except BaseException as error:
            outcome.append(error)

    async def answer_late() -> None:
        await anyio.sleep(0.3)  # the worker is leaving; the claim's answer is not back
        store.answer.set()

    async with Runtime(store, workflows=[one_step], worker_id=worker, shutdown_grace=0.1) as rt:  # type: ignore[arg-type]
        store.holding = True
        starting = asyncio.ensure_future(start(rt))
        with anyio.fail_after(10):
            await store.reached.wait()
        answering = asyncio.ensure_future(answer_late())
    with anyio.fail_after(10):
        await answering
        await starting
    assert len(outcome) == 1, outcome
    assert await shared_store.renew_leases(worker, 30) == set()


class _SharedId(FaultyStore):
    """A store that, once ``sharing``, lists ``worker_id`` as announced by another process
    too (another host's, live): what a worker sees when another live process uses its id."""

    def __init__(self, inner: Store, worker_id: str) -> None:
        super().__init__(inner)
        self.worker_id = worker_id
        self.sharing = False

    async def list_workers(self) -> list[WorkerInfo]:
        workers: list[WorkerInfo] = await self.inner.list_workers()
        if self.sharing:
            now = datetime.now(UTC)
            until = now + timedelta(seconds=30)
            workers.append(
                WorkerInfo(
                    worker_id=self.worker_id,
                    host="elsewhere",
                    pid=4242,
                    workflows=(),
                    seen_at=now,
                    expires_at=until,
                )
            )
        return workers


@pytest.mark.timeout(30)
async def test_a_worker_id_another_live_process_announces_is_told_once(
    shared_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Two live processes must not share a worker id (each would renew, and take for strays,
    the other's leases). A worker that finds its id announced by another process says so, as
    an error naming that process, once; its own announcement is not another's."""
    caplog.set_level(logging.ERROR, logger="actorflow.runtime")
    worker = f"w-{uuid.uuid4().hex}"
    store = _SharedId(shared_store, worker)
    async with Runtime(store, workflows=[one_step], worker_id=worker, lease_seconds=0.5) as rt:  # type: ignore[arg-type]
        assert await (await rt.start(one_step, "x")).result(timeout=10) == "x"
        await anyio.sleep(0.3)  # sweeps that list only its own announcement
        assert _warnings(caplog, "is also announced by") == []
        store.sharing = True
        await anyio.sleep(0.6)  # several sweeps (one each fifth of a lease)
    [told] = _warnings(caplog, "is also announced by")
    assert worker in told and "elsewhere:4242" in told, told


class _LateRelease(_LateClaims):
    """A store whose first release once ``holding_release`` waits until the worker is
    ``leaving``, then a little more (a slow network) before it reaches the store, or (``hung``)
    never reaches it (a connection that hangs: the call is cut when the runtime closes)."""

    def __init__(self, inner: Store, claims_in_write: bool | None = None) -> None:
        super().__init__(inner, claims_in_write)
        self.holding_release = False
        self.hung = False
        self.releasing = asyncio.Event()
        self.leaving = asyncio.Event()

    async def release_leases(self, owner: str, run_ids: list[str]) -> None:
        if self.holding_release:
            self.holding_release = False
            self.releasing.set()
            await self.leaving.wait()
            await asyncio.sleep(3600 if self.hung else 0.3)  # the worker is leaving meanwhile
        await self.inner.release_leases(owner, run_ids)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("release", ["slow", "hung"])
async def test_a_release_out_while_its_worker_leaves_is_seen_through(
    shared_store: Store, release: str
) -> None:
    """A claim whose caller left is given back by a release of its own; that release is out
    when the worker leaves. The worker waits for it (slow), or after a second releases its
    runs with the rest (hung): right after it has left, nothing is held under its id and
    another worker claims the run at once, not when its lease lapses."""
    store = _LateRelease(shared_store, claims_in_write=False)
    store.hung = release == "hung"
    tag = uuid.uuid4().hex
    worker = f"w-{tag}"
    async with Runtime(store, workflows=[one_step], worker_id=worker, shutdown_grace=0.1) as rt:  # type: ignore[arg-type]
        store.holding = store.holding_release = True
        starting = asyncio.ensure_future(rt.start(one_step, tag, run_id=f"left-{tag}"))
        with anyio.fail_after(10):
            await store.reached.wait()  # the claim is out: its caller leaves
            starting.cancel()
            store.answer.set()  # the claim took the lease: it is given back
            await store.releasing.wait()
        store.leaving.set()
        began = time.monotonic()
    assert time.monotonic() - began < 3  # a hung release holds the worker up to its budget
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert await shared_store.renew_leases(worker, 30) == set()
    assert await shared_store.claim_run("other", f"left-{tag}", 30) is not None


@workflow(name="lease-test:nap")
async def nap() -> str:
    await sleep(3600)
    return "awake"


class _ReleaseOnCue(FaultyStore):
    """A store whose releases, once ``holding``, reach it only when ``cue`` is set."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.holding = False
        self.reached = asyncio.Event()
        self.cue = asyncio.Event()

    async def release_leases(self, owner: str, run_ids: list[str]) -> None:
        if self.holding:
            self.reached.set()
            await self.cue.wait()
        await self.inner.release_leases(owner, run_ids)


async def _napping_worker(store: _ReleaseOnCue, worker: str, run_ids: list[str]) -> None:
    """A worker with sleeping runs in hand that leaves (with its releases held)."""
    async with Runtime(store, workflows=[nap], worker_id=worker, shutdown_grace=0.1) as rt:  # type: ignore[arg-type]
        for run_id in run_ids:
            await rt.start(nap, run_id=run_id)
        with anyio.fail_after(10):
            while rt.stats()["timers"] < len(run_ids):
                await anyio.sleep(0.01)
        store.holding = True


@pytest.mark.timeout(30)
async def test_a_worker_whose_leaving_task_is_cancelled_still_releases_its_leases(
    shared_store: Store,
) -> None:
    """The task leaving the runtime is cancelled (``Task.cancel()``: a server's lifespan task,
    ``asyncio.wait_for`` around the exit) while the worker releases its leases. The release is
    seen through, then the cancellation reaches the caller: the runs are claimable at once,
    not when their leases lapse."""
    store = _ReleaseOnCue(shared_store)
    tag = uuid.uuid4().hex
    worker = f"w-{tag}"
    run_ids = [f"nap-{tag}-{i}" for i in range(3)]
    leaving = asyncio.ensure_future(_napping_worker(store, worker, run_ids))
    with anyio.fail_after(10):
        await store.reached.wait()
    leaving.cancel()
    await asyncio.sleep(0.05)  # the cancellation has landed
    assert not leaving.done()  # the release is still out: it is waited for
    store.cue.set()
    with anyio.fail_after(5), pytest.raises(asyncio.CancelledError):
        await leaving
    assert await shared_store.renew_leases(worker, 30) == set()
    for run_id in run_ids:
        assert await shared_store.claim_run("other", run_id, 30) is not None


@pytest.mark.timeout(30)
@pytest.mark.parametrize("cancels", [1, 2])
async def test_a_cancelled_leaving_task_waits_for_a_hung_release_only_so_long(
    shared_store: Store, cancels: int
) -> None:
    """The release never reaches the store (it hangs): a cancelled leaving task waits for it
    up to the drain's 2 s, and not at all once cancelled a second time."""
    store = _ReleaseOnCue(shared_store)
    tag = uuid.uuid4().hex
    leaving = asyncio.ensure_future(_napping_worker(store, f"w-{tag}", [f"nap-{tag}"]))
    with anyio.fail_after(10):
        await store.reached.wait()
    leaving.cancel()
    if cancels == 2:
        await asyncio.sleep(0.1)
        assert not leaving.done()
        leaving.cancel()
    began = time.monotonic()
    with anyio.fail_after(5), pytest.raises(asyncio.CancelledError):
        await leaving
    assert time.monotonic() - began < (0.5 if cancels == 2 else 3)


@step(name="lease-test:long")
async def long_body(key: str) -> str:
    bodies[f"{key}:started"] += 1
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        bodies[f"{key}:cancelled"] += 1
        raise
    return key


@workflow(name="lease-test:long")
async def long_one(key: str) -> str:
    return await long_body(key)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("how", ["task.cancel", "cancel scope"])
async def test_a_worker_cancelled_in_its_grace_stops_its_steps_and_releases_its_leases(
    shared_store: Store, how: str
) -> None:
    """The task leaving the runtime is cancelled while a step body has its grace (30 s here):
    the grace ends at once, the body is cancelled, and every lease is released before the
    cancellation reaches the caller, so the runs are claimable at once."""
    tag = uuid.uuid4().hex
    worker = f"w-{tag}"
    naps = [f"nap-{tag}-{i}" for i in range(2)]
    leaving = asyncio.Event()
    scope = anyio.CancelScope()

    async def work() -> None:
        with scope:
            async with Runtime(
                shared_store, workflows=[nap, long_one], worker_id=worker, shutdown_grace=30
            ) as rt:
                for run_id in naps:
                    await rt.start(nap, run_id=run_id)
                await rt.start(long_one, tag, run_id=f"long-{tag}")
                with anyio.fail_after(10):
                    while rt.stats()["timers"] < len(naps) or not bodies[f"{tag}:started"]:
                        await anyio.sleep(0.01)
                leaving.set()

    task = asyncio.ensure_future(work())
    with anyio.fail_after(10):
        await leaving.wait()
    await asyncio.sleep(0.2)  # the worker is in its grace, waiting for the body
    if how == "task.cancel":
        task.cancel()
    else:
        scope.cancel()
    began = time.monotonic()
    with anyio.fail_after(5):
        if how == "task.cancel":
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            await task
    assert time.monotonic() - began < 3
    assert bodies[f"{tag}:cancelled"] == 1
    assert await shared_store.renew_leases(worker, 30) == set()
    for run_id in [*naps, f"long-{tag}"]:
        assert await shared_store.claim_run("other", run_id, 30) is not None


@step(name="lease-test:mark")
async def mark(key: str) -> str:
    bodies[key] += 1
    return key


@workflow(name="lease-test:mark-nap-mark")
async def mark_nap_mark(key: str) -> str:
    await mark(f"{key}:before")
    await sleep(1.5)
    return await mark(f"{key}:after")


class _LeasesRefused(FaultyStore):
    """A store that, once ``refusing``, refuses every lease call (``StoreUnavailableError``)."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.refusing = False

    def __getattr__(self, name: str) -> Any:
        call = super().__getattr__(name)
        if name not in LEASE_METHODS:
            return call

        async def refused(*args: Any, **kwargs: Any) -> Any:
            if self.refusing:
                self.failures[name] += 1
                raise StoreUnavailableError(f"injected: {name} refused")
            return await call(*args, **kwargs)

        return refused


@pytest.mark.timeout(60)
@pytest.mark.parametrize("outage", ["lease calls", "every call"])
async def test_a_worker_leaving_while_the_store_is_down_leaves_its_runs_to_lapse(
    shared_store: Store, caplog: pytest.LogCaptureFixture, outage: str
) -> None:
    """The store refuses the leaving worker's lease calls (or every call): its settle and
    release fail, it says so and leaves at once; its leases lapse (1 s here), and another
    worker then takes the runs over and runs each step once."""
    caplog.set_level(logging.WARNING, logger="actorflow.runtime")
    store = _LeasesRefused(shared_store)
    tag = uuid.uuid4().hex
    worker = f"w-{tag}"
    keys = [f"{tag}-{i}" for i in range(3)]
    async with Runtime(
        store,  # type: ignore[arg-type]
        workflows=[mark_nap_mark],
        worker_id=worker,
        lease_seconds=1,
        shutdown_grace=0.1,
    ) as rt:
        runs = [await rt.start(mark_nap_mark, key) for key in keys]
        with anyio.fail_after(10):
            while rt.stats()["timers"] < len(keys):
                await anyio.sleep(0.01)
        if outage == "lease calls":
            store.refusing = True
        else:
            store.down()
        began = time.monotonic()
    assert time.monotonic() - began < 4  # the drain's budget: no hang on a store that is down
    assert store.failures["release_leases"] >= 1
    [told] = _warnings(caplog, "could not release")
    assert worker in told and "injected" in told, told
    async with Runtime(
        shared_store, workflows=[mark_nap_mark], worker_id=f"heir-{tag}", lease_seconds=1
    ) as heir:
        with anyio.fail_after(15):
            results = [await heir.get_run(run.id).result() for run in runs]
    assert results == [f"{key}:after" for key in keys]
    ran = {key: (bodies[f"{key}:before"], bodies[f"{key}:after"]) for key in keys}
    assert ran == {key: (1, 1) for key in keys}
