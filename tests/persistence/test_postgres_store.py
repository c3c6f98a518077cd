"""PostgresStore's own behaviour: schemas, migrations, URLs, failures, and what only a shared
server can show (several store instances, as several processes would have, on one schema)."""

from __future__ import annotations

import asyncio
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, tzinfo
from urllib.parse import urlsplit

import anyio
import asyncpg
import msgspec
import pytest

from persistence import (
    AnnotationFilter,
    AttachAnnotations,
    CorruptedDataError,
    EntityConflictError,
    InvalidStoreURLError,
    Lease,
    LeaseClaim,
    LeaseLostError,
    NewAnnotation,
    NewEvent,
    RunNotFoundError,
    StepStatus,
    StoreUnavailableError,
    _pg_batch,
    _pg_leases,
    _pg_statement,
    fold,
)
from persistence import _pg_migrations as pg_migrations
from persistence import _pg_schema as sql
from persistence import events as ev
from persistence.batch import plan_batch
from persistence.notify import end_topic, run_topic, stream_topic
from persistence.postgres import PostgresStore
from persistence.state import RunState
from tests.conftest import postgres_base_url

from .helpers import (
    completed,
    created,
    hook_created,
    lease_kinds,
    run_id,
    started,
    step_completed,
    step_created,
    step_started,
)

pytestmark = pytest.mark.anyio

UrlFactory = Callable[..., str]


@pytest.fixture
async def fresh_pg_url() -> AsyncIterator[UrlFactory]:
    """Make URLs of fresh schemas; every schema made is dropped when the test ends."""
    base = postgres_base_url()
    made: list[str] = []

    def make(schema: str | None = None) -> str:
        name = schema or f"t_{uuid.uuid4().hex[:16]}"
        made.append(name)
        return f"{base}{'&' if '?' in base else '?'}schema={name}"

    yield make
    conn = await asyncpg.connect(base)
    try:
        for name in made:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def raw() -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    """A plain connection to the test server, for what a store would never do itself."""
    conn = await asyncpg.connect(postgres_base_url())
    try:
        yield conn
    finally:
        await conn.close()


async def views_match_log(store: PostgresStore, run: str) -> None:
    state = fold((await store.list_events(run)).items)
    assert await store.get_run(run) == state.run
    assert {s.step_id: s for s in await store.list_steps(run)} == state.steps
    assert {w.wait_id: w for w in await store.list_waits(run)} == state.waits
    assert {h.hook_id: h for h in await store.list_hooks(run)} == state.hooks


async def new_run(store: PostgresStore) -> str:
    run = run_id()
    result = await store.create_batch([created(run), started(run)])
    assert result.accepted(0) and result.accepted(1), result.outcomes
    return run


# -- schemas and migrations --------------------------------------------------------------------


async def test_schemas_are_isolated(fresh_pg_url: UrlFactory) -> None:
    async with PostgresStore(fresh_pg_url()) as a, PostgresStore(fresh_pg_url()) as b:
        run = await new_run(a)
        await a.append_chunks(run, "", 0, [b"x"], close=False)
        with pytest.raises(RunNotFoundError):
            await b.get_run(run)
        assert (await b.list_runs()).items == []
        assert await b.read_committed(0) == []
        assert await b.read_chunks(run, "") == []
        assert await b.last_position() == 0
        assert len(await a.read_committed(0)) == 2


async def test_migrations_run_once_even_when_two_stores_open_a_new_schema_at_once(
    fresh_pg_url: UrlFactory, raw: asyncpg.Connection[asyncpg.Record]
) -> None:
    url = fresh_pg_url()
    stores = [PostgresStore(url) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        assert {s.schema_version for s in stores} == {len(pg_migrations.MIGRATIONS)}
        schema = stores[0].schema
        rows = await raw.fetch(f'SELECT version, applied_at FROM "{schema}".migrations')
        assert sorted(r["version"] for r in rows) == list(
            range(1, len(pg_migrations.MIGRATIONS) + 1)
        )
        run = await new_run(stores[0])
        assert (await stores[3].get_run(run)).run_id == run
    finally:
        for store in stores:
            await store.close()
    async with PostgresStore(url) as again:
        assert again.schema_version == len(pg_migrations.MIGRATIONS)
        assert await raw.fetch(f'SELECT version, applied_at FROM "{schema}".migrations') == rows
        assert (await again.get_run(run)).run_id == run


async def test_open_and_close_are_idempotent_and_close_drops_nothing(
    fresh_pg_url: UrlFactory, raw: asyncpg.Connection[asyncpg.Record]
) -> None:
    store = PostgresStore(fresh_pg_url())
    await store.open()
    await store.open()
    run = await new_run(store)
    await store.close()
    await store.close()
    with pytest.raises(StoreUnavailableError):
        await store.get_run(run)
    tables = await raw.fetchval(
        "SELECT count(*) FROM pg_tables WHERE schemaname = $1", store.schema
    )
    assert tables >= 8
    await store.open()
    try:
        assert (await store.get_run(run)).run_id == run
    finally:
        await store.close()


async def test_a_role_that_cannot_create_opens_a_current_schema(
    fresh_pg_url: UrlFactory, raw: asyncpg.Connection[asyncpg.Record]
) -> None:
    url = fresh_pg_url()
    async with PostgresStore(url) as owner:
        run = await new_run(owner)
        schema = owner.schema
    role = f"af_{uuid.uuid4().hex[:12]}"
    await raw.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        await raw.execute(
            f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"; '
            f'GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"; '
            f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}"'
        )
        parts = urlsplit(url)
        as_role = parts._replace(netloc=f"{role}@{parts.netloc.rpartition('@')[2]}").geturl()
        async with PostgresStore(as_role) as store:
            assert (await store.get_run(run)).run_id == run
            assert (await store.create(step_created(run, "s1"))).event_type == "step_created"
    finally:
        await raw.execute(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"')


# -- URLs and failures --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema", ["Bad", "1abc", "a-b", "a;drop schema public", "x" * 64, "caf\u00e9", ""]
)
async def test_invalid_schema_names_are_refused(schema: str) -> None:
    with pytest.raises(InvalidStoreURLError):
        PostgresStore(f"postgresql://postgres@127.0.0.1:5432/postgres?schema={schema}")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql:///postgres",
        "postgresql://postgres@127.0.0.1:notaport/postgres",
        "postgresql://postgres@127.0.0.1/postgres?schema",
        "postgresql://postgres@127.0.0.1/postgres?min_size=many",
        "postgresql://postgres@127.0.0.1/postgres?min_size=5&max_size=2",
        "postgresql://postgres@127.0.0.1/postgres?connect_timeout=soon",
    ],
)
async def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidStoreURLError):
        PostgresStore(url)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_unreachable_server_is_unavailable_and_named() -> None:
    port = closed_port()
    store = PostgresStore(f"postgresql://someone:s3cret-pw@127.0.0.1:{port}/db?schema=x")
    with pytest.raises(StoreUnavailableError) as info:
        await store.open()
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "s3cret-pw" not in str(info.value)
    await store.close()


async def test_malformed_url_messages_hide_the_password() -> None:
    with pytest.raises(InvalidStoreURLError) as info:
        PostgresStore("postgresql://u:hunter2@127.0.0.1/db?min_size=x")
    assert "hunter2" not in str(info.value)


async def test_a_store_that_is_not_open_is_unavailable(fresh_pg_url: UrlFactory) -> None:
    store = PostgresStore(fresh_pg_url())
    with pytest.raises(StoreUnavailableError):
        await store.create_batch([created(run_id())])


async def test_corrupt_event_rows_name_their_run_and_event(
    fresh_pg_url: UrlFactory, raw: asyncpg.Connection[asyncpg.Record]
) -> None:
    async with PostgresStore(fresh_pg_url()) as store:
        run = await new_run(store)
        insert = (
            f'INSERT INTO "{store.schema}".events (event_id, run_id, event_type, '
            "correlation_id, data, created_at, spec_version) VALUES ($1, $2, $3, NULL, $4, $5, 1)"
        )
        await raw.execute(
            insert, "evnt_ZZZZZZZZZZZZZZZZZZZZZZZZZY", run, "bogus", b"", datetime.now(UTC)
        )
        with pytest.raises(CorruptedDataError) as info:
            await store.list_events(run)
        assert run in str(info.value) and "evnt_ZZZZZZZZZZZZZZZZZZZZZZZZZY" in str(info.value)
        with pytest.raises(CorruptedDataError):
            await store.read_committed(0)
        await raw.execute(f'DELETE FROM "{store.schema}".events WHERE event_type = $1', "bogus")
        await raw.execute(
            insert,
            "evnt_ZZZZZZZZZZZZZZZZZZZZZZZZZZ",
            run,
            "run_completed",
            b"\xc1",
            datetime.now(UTC),
        )
        with pytest.raises(CorruptedDataError) as info:
            await store.list_events(run)
        assert run in str(info.value) and "evnt_ZZZZZZZZZZZZZZZZZZZZZZZZZZ" in str(info.value)
        await raw.execute(f'UPDATE "{store.schema}".runs SET body = $1', b"\xc1")
        with pytest.raises(CorruptedDataError) as info:
            await store.get_run(run)
        assert run in str(info.value)


async def test_a_runs_row_leaves_its_input_to_its_first_event(
    fresh_pg_url: UrlFactory, raw: asyncpg.Connection[asyncpg.Record]
) -> None:
    """Each write of a run rewrites its row: the row leaves out the input (a megabyte would be
    written again with every step), which ``get_run`` reads from ``run_created``. A row an
    earlier version wrote, input included, reads the same; a row without its log is corrupt."""
    async with PostgresStore(fresh_pg_url()) as store:
        run = run_id()
        wanted = msgspec.msgpack.encode(b"x" * 100_000)
        made = ev.RunCreated(workflow_name="wf", input=wanted)
        await store.create_batch([NewEvent(run, made), started(run)])
        await store.create(step_created(run, "s1"))
        runs = f'"{store.schema}".runs'
        body = await raw.fetchval(f"SELECT body FROM {runs} WHERE run_id = $1", run)
        assert len(body) < 1000 and msgspec.msgpack.decode(body)["input"] == b""
        got = await store.get_run(run)
        assert got.input == wanted and got.event_count == 3
        old = msgspec.msgpack.encode(msgspec.structs.replace(got, input=wanted))
        await raw.execute(f"UPDATE {runs} SET body = $1 WHERE run_id = $2", old, run)
        assert await store.get_run(run) == got
        await store.create(step_started(run, "s1"))  # written again without it
        assert (await store.get_run(run)).input == wanted
        step_input = msgspec.msgpack.encode(b"y" * 100_000)
        step = ev.StepCreated(step_name="s", input=step_input, position=1)
        await store.create_batch([NewEvent(run, step, "s2"), step_started(run, "s2")])
        steps = f'"{store.schema}".steps'
        body = await raw.fetchval(f"SELECT body FROM {steps} WHERE step_id = 's2'")
        assert len(body) < 1000 and msgspec.msgpack.decode(body)["input"] == b""
        assert (await store.get_step(run, "s2")).input == step_input
        await raw.execute(f'DELETE FROM "{store.schema}".events WHERE run_id = $1', run)
        with pytest.raises(CorruptedDataError, match=r"s2.*step_created"):
            await store.get_step(run, "s2")
        with pytest.raises(CorruptedDataError, match="step_created"):
            await store.list_steps(run)
        with pytest.raises(CorruptedDataError, match=f"{run}.*run_created"):
            await store.get_run(run)
        with pytest.raises(CorruptedDataError, match=run):
            await store.list_runs()


# -- several instances on one schema ------------------------------------------------------------


async def test_a_commit_through_one_store_wakes_a_waiter_on_another(
    fresh_pg_url: UrlFactory,
) -> None:
    url = fresh_pg_url()
    async with PostgresStore(url) as a, PostgresStore(url) as b:
        run = await new_run(b)
        for topic, write in (
            (run_topic(run), lambda: b.create(step_created(run, "s1"))),
            (stream_topic(run, "out"), lambda: b.append_chunks(run, "out", 0, [b"x"], False)),
            (end_topic(run), lambda: b.create(completed(run))),
        ):
            seen = a.notifier.version(topic)
            waiter = asyncio.ensure_future(a.notifier.wait(topic, seen, timeout=2))
            await asyncio.sleep(0.01)
            began = time.monotonic()
            await write()
            assert await waiter, f"{topic} was not notified across stores"
            assert time.monotonic() - began < 1.0


async def test_racing_hook_claims_from_two_stores_give_one_claim_and_one_conflict(
    fresh_pg_url: UrlFactory,
) -> None:
    url = fresh_pg_url()
    async with PostgresStore(url) as a, PostgresStore(url) as b:
        first, second = await new_run(a), await new_run(b)
        for round_ in range(10):
            token = f"approve:{round_}"
            results = await asyncio.gather(
                a.create_batch([hook_created(first, f"h{round_}", token, round_)]),
                b.create_batch([hook_created(second, f"h{round_}", token, round_)]),
            )
            kinds = sorted(
                r.outcomes[0].event_type for r in results if isinstance(r.outcomes[0], ev.Event)
            )
            assert kinds == ["hook_conflict", "hook_created"], results
            owner = await a.get_hook(token)
            assert owner.run_id in (first, second) and owner.hook_id == f"h{round_}"


async def test_read_committed_never_skips_an_event_while_two_stores_write(
    fresh_pg_url: UrlFactory,
) -> None:
    """A subscriber following positions sees every event: position order is commit order."""
    url = fresh_pg_url()
    async with PostgresStore(url) as a, PostgresStore(url) as b, PostgresStore(url) as reader:
        runs = [await new_run(a) for _ in range(4)]
        written: set[str] = set()
        done = asyncio.Event()

        async def write(store: PostgresStore, which: list[str], offset: int) -> None:
            for i in range(40):
                batch = [step_created(r, f"s{offset}_{i}", offset * 1000 + i) for r in which]
                result = await store.create_batch(batch)
                for outcome in result.outcomes:
                    assert isinstance(outcome, ev.Event), outcome
                    written.add(outcome.event_id)

        seen: list[int] = []
        ids: list[str] = []

        async def follow() -> None:
            position = 0
            while True:
                finished = done.is_set()
                page = await reader.read_committed(position, limit=50)
                for item in page:
                    seen.append(item.position)
                    ids.append(item.event.event_id)
                    position = item.position
                if finished and not page:
                    return

        follower = asyncio.ensure_future(follow())
        await asyncio.gather(write(a, runs[:2], 1), write(b, runs[2:], 2), write(a, runs[1:3], 3))
        done.set()
        await follower
        assert seen == sorted(seen) and len(set(seen)) == len(seen)
        assert written <= set(ids)
        assert len(ids) == len(written) + 2 * len(runs)


async def test_a_stale_cache_never_decides(fresh_pg_url: UrlFactory) -> None:
    url = fresh_pg_url()
    async with PostgresStore(url) as a, PostgresStore(url) as b:
        run = await new_run(a)
        await a.create_batch([step_created(run, "s1"), step_started(run, "s1")])
        # b moves the run behind a's back: a's picture of it is now stale
        await b.create(step_completed(run, "s1", b"\x02"))
        outcome = (await a.create_batch([step_completed(run, "s1", b"\x03")])).outcomes[0]
        assert isinstance(outcome, EntityConflictError)
        await b.create(step_created(run, "s2", 1))
        event = await a.create(step_started(run, "s2"))
        assert event.event_type == "step_started"
        steps = {s.step_id: s for s in await a.list_steps(run)}
        assert steps["s1"].output == b"\x02" and steps["s2"].status is StepStatus.RUNNING
        log = (await b.list_events(run)).items
        assert [e.event_type for e in log][-3:] == [
            "step_completed",
            "step_created",
            "step_started",
        ]
        assert (await b.get_run(run)).last_event_id == log[-1].event_id


async def test_concurrent_writers_on_shared_runs_keep_views_equal_to_the_log(
    fresh_pg_url: UrlFactory,
) -> None:
    """Tasks on two instances race on the same runs; views stay the fold of the log."""
    url = fresh_pg_url()
    rng = random.Random(7)
    async with PostgresStore(url) as a, PostgresStore(url) as b:
        runs = [await new_run(a) for _ in range(3)]
        accepted: list[ev.Event] = []

        def request(run: str) -> ev.NewEvent:
            step = f"s{rng.randrange(4)}"
            position = int(step[1:])
            choice = rng.randrange(6)
            if choice == 0:
                return step_created(run, step, position)
            if choice == 1:
                return step_started(run, step)
            if choice == 2:
                return step_completed(run, step, bytes([rng.randrange(256)]))
            if choice == 3:
                return hook_created(run, f"h{position}", f"tok{rng.randrange(3)}", position)
            if choice == 4:
                return ev.NewEvent(run, ev.HookDisposed(), f"h{position}")
            return ev.NewEvent(
                run,
                ev.AnnotationCreated(annotation_id=f"antn_{rng.random()}", key="k", scope="run"),
            )

        async def writer(store: PostgresStore) -> None:
            for _ in range(25):
                batch = [request(rng.choice(runs)) for _ in range(rng.randrange(1, 4))]
                result = await store.create_batch(batch)
                accepted.extend(o for o in result.outcomes if isinstance(o, ev.Event))

        await asyncio.gather(*(writer(store) for store in (a, b, a, b, a, b)))
        logged = [c.event for c in await b.read_committed(0, limit=10_000)]
        assert sorted(e.event_id for e in accepted) == sorted(
            e.event_id for e in logged if e.event_type not in ("run_created", "run_started")
        )
        for run in runs:
            await views_match_log(a, run)
            await views_match_log(b, run)
        live = [h for run in runs for h in await a.list_hooks(run) if h.status == "active"]
        assert len({h.token for h in live}) == len(live)


async def test_racing_stream_appends_from_two_stores_let_one_win(
    fresh_pg_url: UrlFactory,
) -> None:
    url = fresh_pg_url()
    async with PostgresStore(url) as a, PostgresStore(url) as b:
        run = await new_run(a)
        for index in range(10):
            results = await asyncio.gather(
                a.append_chunks(run, "s", index, [b"a"], close=False),
                b.append_chunks(run, "s", index, [b"b"], close=False),
                return_exceptions=True,
            )
            losers = [r for r in results if isinstance(r, BaseException)]
            assert len(losers) == 1 and isinstance(losers[0], EntityConflictError), results
        assert (await a.stream_info(run, "s")).tail_index == 9


async def test_a_big_batch_notifies_in_payloads_under_the_limit(fresh_pg_url: UrlFactory) -> None:
    url = fresh_pg_url()
    async with PostgresStore(url) as a, PostgresStore(url) as b:
        runs = [run_id() for _ in range(400)]
        last = runs[-1]
        seen = a.notifier.version(run_topic(last))
        waiter = asyncio.ensure_future(a.notifier.wait(run_topic(last), seen, timeout=2))
        await asyncio.sleep(0.01)
        result = await b.create_batch([created(r) for r in runs])
        assert all(result.accepted(i) for i in range(len(runs)))
        assert await waiter


async def test_the_listener_comes_back_after_its_connection_dies(
    fresh_pg_url: UrlFactory, raw: asyncpg.Connection[asyncpg.Record]
) -> None:
    url = fresh_pg_url()
    async with PostgresStore(url) as a, PostgresStore(url) as b:
        run = await new_run(b)
        primary = a._primary  # the connection that listens
        assert primary is not None
        await raw.execute("SELECT pg_terminate_backend($1)", primary.get_server_pid())
        deadline = time.monotonic() + 10
        woke = False
        while not woke and time.monotonic() < deadline:
            seen = a.notifier.version(run_topic(run))
            waiter = asyncio.ensure_future(a.notifier.wait(run_topic(run), seen, timeout=0.5))
            await asyncio.sleep(0.05)
            await b.create(step_created(run, f"s_{uuid.uuid4().hex}"))
            woke = await waiter
        assert woke
        assert (await a.get_run(run)).run_id == run


# -- queries ------------------------------------------------------------------------------------


async def test_key_prefix_query_uses_the_key_index(
    fresh_pg_url: UrlFactory, raw: asyncpg.Connection[asyncpg.Record]
) -> None:
    async with PostgresStore(fresh_pg_url()) as store:
        run = await new_run(store)
        noise = tuple(NewAnnotation(key=f"noise.{i:05d}", value=b"\x01") for i in range(3000))
        await store.create_batch([AttachAnnotations(run, noise)])
        wanted = tuple(NewAnnotation(key=f"decision.{k}", value=b"\x02") for k in ("a", "b"))
        await store.create_batch([AttachAnnotations(run, wanted)])
        rows = await store.list_annotations(run, AnnotationFilter(key_prefix="decision."))
        assert sorted(r.key for r in rows) == ["decision.a", "decision.b"]

        query, args = sql.annotations_query(
            run, None, "decision.", None, None, None, None, None, None, None, 1000
        )
        assert query == sql.ANNOTATIONS_BY_PREFIX
        await raw.execute(f'SET search_path = "{store.schema}"')
        await raw.execute("ANALYZE annotations")
        plan = "\n".join(r[0] for r in await raw.fetch("EXPLAIN " + query, *args))
        assert "Index" in plan and "annotations_key" in plan, plan
        assert "Seq Scan" not in plan, plan


async def test_prefix_bounds_handle_the_edges() -> None:
    assert sql.prefix_upper_bound("ab") == "ac"
    assert sql.prefix_upper_bound("a\U0010ffff") == "b"
    assert sql.prefix_upper_bound("\U0010ffff") is None
    assert sql.prefix_upper_bound("") is None
    assert sql.prefix_upper_bound("\ud7ff") == "\ue000"


async def test_key_prefix_matches_literally(fresh_pg_url: UrlFactory) -> None:
    async with PostgresStore(fresh_pg_url()) as store:
        run = await new_run(store)
        keys = ["a%b.x", "a_b.y", "axb.z", "a%c", "a\\b", "\U0010ffff.top", "\U0010ffff"]
        notes = tuple(NewAnnotation(key=k, value=b"\x01") for k in keys)
        await store.create_batch([AttachAnnotations(run, notes)])

        async def matching(prefix: str) -> list[str]:
            rows = await store.list_annotations(run, AnnotationFilter(key_prefix=prefix))
            return sorted(r.key for r in rows)

        assert await matching("a%b") == ["a%b.x"]
        assert await matching("a_b") == ["a_b.y"]
        assert await matching("a\\") == ["a\\b"]
        assert await matching("\U0010ffff") == ["\U0010ffff", "\U0010ffff.top"]
        assert await matching("") == sorted(keys)


async def test_a_run_this_store_claimed_is_written_without_reading_its_lease(
    fresh_pg_url: UrlFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_pg_url()
    async with PostgresStore(url) as a, PostgresStore(url) as b:
        run = run_id()
        [lease] = await a.claim_each("w1", [run], 30.0)
        loads: list[int] = []
        loaded = a._batches._loaded

        async def counting(*args: object) -> object:
            loads.append(1)
            return await loaded(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(a._batches, "_loaded", counting)
        first = await a.create_batch([msgspec.structs.replace(created(run), fence=lease.epoch)])
        assert first.outcomes[0].event_type == "run_created"  # type: ignore[union-attr]
        assert loads == []  # the epoch it claimed at was known: no read before the write
        # another worker takes the lease over: the epoch a knew is stale, and its guard says so
        await b.release_leases("w1", [run])
        [taken] = await b.claim_each("w2", [run], 30.0)
        assert taken.epoch > lease.epoch
        stale = await a.create_batch([msgspec.structs.replace(started(run), fence=lease.epoch)])
        assert isinstance(stale.outcomes[0], LeaseLostError)
        assert [e.event_type for e in (await b.list_events(run)).items] == ["run_created"]


def _counting_loads(store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the store's reads before a write (its read-then-write and locked paths)."""
    loads: list[int] = []
    loaded = store._batches._loaded

    async def counting(*args: object) -> object:
        loads.append(1)
        return await loaded(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(store._batches, "_loaded", counting)
    return loads


def _claiming(event: ev.NewEvent, owner: str) -> ev.NewEvent:
    return msgspec.structs.replace(event, claim=LeaseClaim(owner, 30.0))


async def test_a_new_run_and_its_lease_are_written_in_one_statement_without_a_read(
    fresh_pg_url: UrlFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with PostgresStore(fresh_pg_url()) as store:
        loads = _counting_loads(store, monkeypatch)
        run = run_id()
        result = await store.create_batch([_claiming(created(run), "w1"), started(run)])
        assert result.accepted(1) and result.leases == {run: 1}
        fenced = msgspec.structs.replace(step_created(run, "s1"), fence=1)
        assert (await store.create_batch([fenced])).accepted(0)  # the epoch taken is known
        assert loads == []
        assert await store.renew_leases("w1", 30) == {run}


async def test_a_claim_under_another_workers_live_lease_is_read_once_and_refused(
    fresh_pg_url: UrlFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_pg_url()
    async with PostgresStore(url) as a, PostgresStore(url) as b:
        run = run_id()
        assert await b.claim_each("w2", [run], 30.0) == [Lease(run, 1)]
        loads = _counting_loads(a, monkeypatch)
        result = await a.create_batch([_claiming(created(run), "w1"), started(run)])
        assert isinstance(result.outcomes[0], EntityConflictError)
        assert f"run {run!r} is being started by worker 'w2'" in str(result.outcomes[0])
        assert loads == [1]  # the guard refused the assumed lease; the read decided, once
        with pytest.raises(RunNotFoundError):
            await b.get_run(run)
        assert await b.renew_leases("w2", 30) == {run}
        assert await a.renew_leases("w1", 30) == set()


async def test_a_lease_is_live_or_lapsed_by_the_servers_clock_not_the_writers(
    fresh_pg_url: UrlFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Ahead(datetime):
        """This process's clock an hour ahead of the server's."""

        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:
            return datetime.fromtimestamp(time.time() + 3600, tz)

    url = fresh_pg_url()
    async with PostgresStore(url) as a, PostgresStore(url) as b:
        run = run_id()
        assert await b.claim_each("w2", [run], 30.0) == [Lease(run, 1)]
        monkeypatch.setattr(_pg_batch, "datetime", Ahead)
        with anyio.fail_after(10):
            result = await a.create_batch([_claiming(created(run), "w1")])
        assert isinstance(result.outcomes[0], EntityConflictError)  # not "too busy"


def test_a_claim_of_a_run_the_batch_also_ends_is_written_lapsed_and_once() -> None:
    run = run_id()
    plan = plan_batch(
        {run: RunState()},
        [_claiming(created(run), "w1"), started(run), completed(run)],
        datetime.now(UTC),
    )
    statement, args = _pg_statement.write_statement(plan, {}, 7, "ch", [])
    assert (run, "w1", _pg_statement.LAPSE, 1) == tuple(args[7:11])
    assert "cl AS (INSERT INTO leases" in statement
    assert "le AS" not in statement  # one statement changes a lease row once


def test_a_batchs_text_and_integer_columns_go_packed_unless_a_value_holds_a_mark() -> None:
    """Several rows of a part: their text and integer columns are each one string the server
    splits, NULLs marked; a part with a value holding a separator goes as arrays."""
    run = run_id()
    plain = plan_batch(
        {run: RunState()}, [created(run), started(run), completed(run)], datetime.now(UTC)
    )
    statement, args = _pg_statement.write_statement(plain, {}, 7, "ch", [])
    assert "string_to_array" in statement
    sep, nul = _pg_statement.SEP, _pg_statement.NUL
    ids = [e.event_id for e in plain.events]
    assert sep.join(ids) in args
    assert sep.join([nul, nul, nul]) in args  # no correlation id: NULLs
    assert sep.join(["1", "1", "1"]) in args  # spec versions
    other = run_id()
    noted = NewAnnotation(key="k", value=b"", actor_id=f"a{sep}b")
    odd = plan_batch(
        {other: RunState()},
        [created(other), AttachAnnotations(other, (noted, noted))],
        datetime.now(UTC),
    )
    statement, args = _pg_statement.write_statement(odd, {}, 7, "ch", [])
    assert statement.count("string_to_array") == 0  # one event; annotations as arrays
    assert [f"a{sep}b", f"a{sep}b"] in args


# -- the claim sweep's marks and indexes ------------------------------------------------------


async def lapsed_range(raw: asyncpg.Connection[asyncpg.Record], schema: str) -> set[str]:
    """The run ids whose lease the sweep reads as lapsed (marked LAPSED or not yet)."""
    rows = await raw.fetch(
        f'SELECT run_id FROM "{schema}".leases '
        f"WHERE expires_at >= {_pg_leases.LAPSED} AND expires_at < now()"
    )
    return {str(row[0]) for row in rows}


async def test_the_leases_of_ended_runs_leave_the_range_the_sweep_reads(
    fresh_pg_url: UrlFactory, raw: asyncpg.Connection[asyncpg.Record]
) -> None:
    async with PostgresStore(fresh_pg_url()) as store:
        ended, released, rerun = [await new_run(store) for _ in range(3)]
        for run in (ended, released, rerun):
            assert await store.claim_run("a", run, 30)
        await store.create_batch([completed(ended), completed(rerun)])
        await store.release_leases("a", [released])
        assert await lapsed_range(raw, store.schema) == {released}
        assert await store.claim_run("b", ended, 30) == Lease(ended, 2)  # an ended id again
        unborn = run_id()
        assert await store.claim_run("b", unborn, 30)
        await store.release_leases("b", [ended, unborn])
        assert await lapsed_range(raw, store.schema) == {released}
        await store.create(ev_rerun(rerun))
        assert await lapsed_range(raw, store.schema) == {released, rerun}
        await store.create(created(unborn))  # written at last, without a claim
        assert await lapsed_range(raw, store.schema) == {released, rerun, unborn}
        claimed = await store.claim_runs("c", 30)
        assert claimed == sorted(
            [Lease(released, 2), Lease(rerun, 2), Lease(unborn, 2)], key=lambda x: x.run_id
        )
        once = run_id()  # created and ended at once, with its claim: no lease to sweep
        assert await lapsed_range(raw, store.schema) == set()
        batch = [msgspec.structs.replace(created(once), claim=LeaseClaim("d", 30))]
        await store.create_batch([*batch, started(once), completed(once)])
        assert await lapsed_range(raw, store.schema) == set()


def ev_rerun(run: str) -> ev.NewEvent:
    return ev.NewEvent(run, ev.RunRerun(generation=1, from_position=0))


async def test_a_schema_3_database_gets_the_sweeps_indexes_and_marks_on_open(
    fresh_pg_url: UrlFactory, raw: asyncpg.Connection[asyncpg.Record]
) -> None:
    url = fresh_pg_url()
    async with PostgresStore(url) as store:
        schema = store.schema
        ended, held, orphan, pending = await lease_kinds(store)
    # as schema 3 left it: leases_owner alone, lapsed leases (of ended runs too) with the
    # time they lapsed, and no row for runs never claimed
    await raw.execute(
        f'SET search_path TO "{schema}"; DROP INDEX leases_expiry; '
        "DROP INDEX leases_owner_run; CREATE INDEX leases_owner ON leases (owner); "
        "UPDATE leases SET expires_at = now() - interval '5 seconds' "
        f"WHERE expires_at IN ('-infinity', {_pg_leases.LAPSED}); "
        "DELETE FROM leases WHERE owner = ''; "
        "DELETE FROM migrations WHERE version = 4; SET search_path TO DEFAULT"
    )
    assert await lapsed_range(raw, schema) == {ended}
    async with PostgresStore(url) as store:
        assert store.schema_version == len(pg_migrations.MIGRATIONS) == 4
        indexes = await raw.fetch("SELECT indexname FROM pg_indexes WHERE schemaname = $1", schema)
        names = {str(row[0]) for row in indexes}
        assert {"leases_expiry", "leases_owner_run"} <= names and "leases_owner" not in names
        assert await lapsed_range(raw, schema) == set()
        marks = await raw.fetch(
            f'SELECT run_id, expires_at = {_pg_leases.UNCLAIMED} FROM "{schema}".leases '
            "WHERE owner = ''"
        )
        assert dict((str(r[0]), r[1]) for r in marks) == {orphan: True, pending: True}
        assert await store.claim_runs("b", 30) == [Lease(pending, 1)]  # orphan is young
        assert await store.claim_runs("c", 30, dead=["a"]) == [Lease(held, 2)]
        assert await store.claim_runs("d", 0) == [Lease(orphan, 1)]  # old for no patience


async def test_a_sweep_marks_the_leases_that_lapsed_since_the_last(
    fresh_pg_url: UrlFactory, raw: asyncpg.Connection[asyncpg.Record]
) -> None:
    async with PostgresStore(fresh_pg_url()) as store:
        released, unborn = await new_run(store), run_id()
        assert await store.claim_run("a", released, 30)
        assert await store.claim_run("a", unborn, 0.01)  # never written: lapses by time
        await store.release_leases("a", [released])
        marked = await raw.fetchval(
            f'SELECT expires_at = {_pg_leases.LAPSED} FROM "{store.schema}".leases '
            "WHERE run_id = $1",
            released,
        )
        assert marked  # by the release: no sweep sorts it
        await anyio.sleep(0.05)
        assert await store.claim_runs("b", 30, workflows=[]) == []  # hosts nothing, marks
        marks = await raw.fetch(
            f"SELECT run_id, expires_at = {_pg_leases.LAPSED}, expires_at = '-infinity' "
            f'FROM "{store.schema}".leases'
        )
        assert {str(r[0]): (r[1], r[2]) for r in marks} == {
            released: (True, False),
            unborn: (False, True),
        }
        assert await store.claim_runs("c", 30) == [Lease(released, 2)]


async def test_a_claim_cancelled_once_sent_is_seen_through(
    fresh_pg_url: UrlFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A sweep cancelled (its runtime leaving) after it asked is carried to its end: the
    leases it takes are answered, not left to a transaction cut off mid-way (asyncpg then
    resets the connection and logs it)."""
    async with PostgresStore(fresh_pg_url()) as store:
        runs = []
        for _ in range(5):
            run = run_id()
            assert (await store.create_batch([created(run)])).accepted(0)  # pending: claimable
            runs.append(run)
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.claim_runs, "w", 30.0)
            await anyio.sleep(0)  # it has begun
            tg.cancel_scope.cancel()
        assert await store.renew_leases("w", 30) == set(runs)
    assert "Resetting connection with an active transaction" not in caplog.text


async def test_a_claim_of_given_runs_cancelled_once_sent_is_seen_through(
    fresh_pg_url: UrlFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """``claim_each`` cancelled (its runtime leaving) after it asked is carried to its end and
    answered: its caller learns every lease it took, none is held that nobody knows of."""
    async with PostgresStore(fresh_pg_url()) as store:
        runs = []
        for _ in range(5):
            run = run_id()
            assert (await store.create_batch([created(run)])).accepted(0)
            runs.append(run)
        answered: list[Lease] = []

        async def claim() -> None:
            answered.extend(await store.claim_each("w", runs, 30.0))

        async with anyio.create_task_group() as tg:
            tg.start_soon(claim)
            await anyio.sleep(0)  # it has begun
            tg.cancel_scope.cancel()
        assert sorted(lease.run_id for lease in answered) == sorted(runs)
        assert await store.renew_leases("w", 30) == set(runs)
    assert "Resetting connection" not in caplog.text
