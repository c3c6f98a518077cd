"""Store errors typed by what the caller can do, produced for real wherever that is possible.

- ``StoreUnavailableError``: transient (locked, busy, unreachable); retried;
- ``StoreConfigurationError``: fix the configuration (missing file, database or role, not a
  database, no permission, read-only); raised at once;
- ``StoreFullError``: free space; raised at once.

Permission cases need a process that file permissions apply to: root ignores them, so under
root (as in CI) they run in a forked child that drops to ``nobody`` first.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

import runtime
from persistence import (
    RunNotFoundError,
    StoreConfigurationError,
    StoreError,
    StoreFullError,
    StoreUnavailableError,
    open_store,
)
from persistence import _pg_migrations as pg_migrations
from persistence import _sqlite_migrations as migrations
from persistence.postgres import PostgresStore
from persistence.sqlite import SqliteStore
from tests.conftest import postgres_base_url

from .helpers import created, run_id, started

pytestmark = pytest.mark.anyio

NOBODY = 65534


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


def tree(root: Path) -> list[str]:
    """Every path under ``root``, relative to it: what a failed opening must leave alone."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_the_new_errors_are_store_errors_but_not_transient() -> None:
    for error in (StoreConfigurationError, StoreFullError):
        assert issubclass(error, StoreError)
        assert not issubclass(error, StoreUnavailableError)
        assert getattr(runtime, error.__name__) is error
        assert error.__name__ in runtime.__all__
        assert getattr(runtime.errors, error.__name__) is error


# -- SQLite: files that cannot be a store ----------------------------------------------------


async def test_a_directory_that_cannot_be_created_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    path = blocker / "sub" / "store.db"
    store = SqliteStore(url_of(path))
    with pytest.raises(StoreConfigurationError, match=re.escape(str(path))) as caught:
        await store.open()
    assert "cannot create the directory" in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)
    await store.close()
    assert tree(tmp_path) == ["a-file"]


async def test_a_path_that_names_a_directory_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "a-directory.db"
    path.mkdir()
    store = SqliteStore(url_of(path))
    with pytest.raises(StoreConfigurationError, match=re.escape(str(path))) as caught:
        await store.open()
    assert "cannot open" in str(caught.value) and "not a directory" in str(caught.value)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    await store.close()
    assert tree(tmp_path) == ["a-directory.db"]


async def test_a_file_that_is_not_a_database_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    text = b"this is not a database file, not even close\n" * 100
    path.write_bytes(text)
    store = SqliteStore(url_of(path))
    with pytest.raises(StoreConfigurationError, match=re.escape(str(path))) as caught:
        await store.open()
    assert "is not a SQLite database" in str(caught.value)
    await store.close()
    assert path.read_bytes() == text


# -- SQLite: a full file -----------------------------------------------------------------------


def _page_count(conn: sqlite3.Connection) -> int:
    count: int = conn.execute("PRAGMA page_count").fetchone()[0]
    return count


def _max_pages(pages: int) -> Callable[[sqlite3.Connection], int]:
    def set_limit(conn: sqlite3.Connection) -> int:
        limit: int = conn.execute(f"PRAGMA max_page_count = {pages}").fetchone()[0]
        return limit

    return set_limit


async def test_a_full_file_is_store_full_and_writes_succeed_once_there_is_room(
    tmp_path: Path,
) -> None:
    path = tmp_path / "full.db"
    async with SqliteStore(url_of(path)) as store:
        writer = store._w()
        pages = await writer.call(_page_count)
        assert await writer.call(_max_pages(pages)) == pages  # the file cannot grow
        run = run_id()
        big = created(run, payload=os.urandom(64 * 1024))
        with pytest.raises(StoreFullError, match=re.escape(str(path))) as caught:
            await store.create_batch([big, started(run)])
        assert not isinstance(caught.value, StoreUnavailableError)
        assert "free disk space" in str(caught.value)
        with pytest.raises(RunNotFoundError):
            await store.get_run(run)  # nothing of the batch was written
        await writer.call(_max_pages(pages * 1000))  # space is freed
        result = await store.create_batch([big, started(run)])
        assert result.accepted(0) and result.accepted(1)
        assert (await store.get_run(run)).run_id == run


# -- SQLite: permissions (as a process that permissions apply to) ------------------------------


def unprivileged(work: Callable[[], str]) -> str:
    """``work()`` in a forked child that file permissions apply to; what it returned.

    Root ignores permissions, so a root parent's child drops to ``nobody`` first.
    """
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            answer = work()
        except BaseException as exc:
            answer = f"the child failed: {type(exc).__name__}: {exc}"
        os.write(write, answer.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(pid, 0)
    return answer


def outcome_of_opening(url: str, *, write: bool = False) -> Callable[[], str]:
    """Open the store at ``url`` (and write a run): ``"opened"`` or ``"Type: message"``."""

    async def attempt() -> str:
        store = SqliteStore(url)
        try:
            await store.open()
            if write:
                run = run_id()
                await store.create_batch([created(run), started(run)])
        except StoreError as error:
            return f"{type(error).__name__}: {error}"
        finally:
            await store.close()
        return "opened"

    return lambda: asyncio.run(attempt())


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the unprivileged child can reach (``tmp_path`` is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="actorflow-perms-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        for inner in (path, *path.rglob("*")):
            if inner.is_dir():
                inner.chmod(0o777)
        shutil.rmtree(path)


def make_store(path: Path) -> None:
    """An actorflow store at ``path``, closed (its -wal and -shm files gone)."""

    async def make() -> None:
        async with SqliteStore(url_of(path)) as store:
            run = run_id()
            await store.create_batch([created(run), started(run)])

    asyncio.run(make())


def test_a_directory_without_write_permission_is_a_configuration_error(
    shared_dir: Path,
) -> None:
    locked = shared_dir / "locked"
    locked.mkdir(mode=0o555)
    locked.chmod(0o555)
    for path in (locked / "store.db", locked / "sub" / "store.db"):
        answer = unprivileged(outcome_of_opening(url_of(path)))
        assert answer.startswith("StoreConfigurationError: "), answer
        assert str(path) in answer
    assert tree(locked) == []


def test_an_existing_store_in_a_read_only_directory_is_a_configuration_error(
    shared_dir: Path,
) -> None:
    path = shared_dir / "store.db"
    make_store(path)
    path.chmod(0o666)
    shared_dir.chmod(0o555)  # SQLite cannot make the -wal and -shm files beside the store
    answer = unprivileged(outcome_of_opening(url_of(path)))
    assert answer.startswith("StoreConfigurationError: "), answer
    assert str(path) in answer and "cannot be written" in answer


def test_a_read_only_file_opens_but_its_writes_are_a_configuration_error(
    shared_dir: Path,
) -> None:
    path = shared_dir / "store.db"
    make_store(path)
    path.chmod(0o444)
    assert unprivileged(outcome_of_opening(url_of(path))) == "opened"  # reading works
    answer = unprivileged(outcome_of_opening(url_of(path), write=True))
    assert answer.startswith("StoreConfigurationError: "), answer
    assert str(path) in answer and "write permission" in answer


# -- PostgreSQL ----------------------------------------------------------------------------------


def pg_url(*, user: str | None = None, database: str | None = None, password: str = "") -> str:
    """The test server's URL as another user, on another database, with a fresh schema."""
    parts = urlsplit(postgres_base_url())
    host = parts.netloc.rpartition("@")[2]
    name = user or parts.username or ""
    secret = f":{password}" if password else ""
    netloc = f"{name}{secret}@{host}" if name else host
    path = f"/{database}" if database else parts.path
    schema = f"t_{uuid.uuid4().hex[:16]}"
    query = f"{parts.query}&schema={schema}" if parts.query else f"schema={schema}"
    return parts._replace(netloc=netloc, path=path, query=query).geturl()


@pytest.fixture
async def raw_pg() -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    conn = await asyncpg.connect(postgres_base_url())
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def login_role(raw_pg: asyncpg.Connection[asyncpg.Record]) -> AsyncIterator[str]:
    """A role that may log in and do nothing else; dropped when the test ends."""
    role = f"af_{uuid.uuid4().hex[:12]}"
    await raw_pg.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        yield role
    finally:
        await raw_pg.execute(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"')


async def opening_fails(url: str) -> StoreError:
    store = PostgresStore(url)
    with pytest.raises(StoreError) as caught:
        await store.open()
    await store.close()
    return caught.value


async def test_a_missing_database_is_a_configuration_error_naming_it() -> None:
    database = f"af_missing_{uuid.uuid4().hex[:8]}"
    error = await opening_fails(pg_url(database=database, password="s3cret-pw"))
    assert type(error) is StoreConfigurationError, error
    message = str(error)
    assert f"database {database!r}" in message and "create the database" in message
    assert urlsplit(postgres_base_url()).netloc.rpartition("@")[2] in message  # host:port
    assert "s3cret-pw" not in message
    assert isinstance(error.__cause__, asyncpg.InvalidCatalogNameError)


async def test_a_missing_role_is_a_configuration_error_naming_it() -> None:
    role = f"af_nobody_{uuid.uuid4().hex[:8]}"
    error = await opening_fails(pg_url(user=role, password="s3cret-pw"))
    assert type(error) is StoreConfigurationError, error
    message = str(error)
    assert f"role {role!r}" in message and "create the role" in message
    assert "s3cret-pw" not in message
    assert isinstance(error.__cause__, asyncpg.InvalidAuthorizationSpecificationError)


async def test_a_role_that_may_not_create_the_schema_is_a_configuration_error(
    login_role: str, raw_pg: asyncpg.Connection[asyncpg.Record]
) -> None:
    url = pg_url(user=login_role)
    error = await opening_fails(url)
    assert type(error) is StoreConfigurationError, error
    assert f"role {login_role!r}" in str(error) and "grant the role" in str(error)
    assert isinstance(error.__cause__, asyncpg.InsufficientPrivilegeError)
    schema = PostgresStore(url).schema
    assert not await raw_pg.fetchval(pg_migrations.HAS_SCHEMA, schema)


async def test_too_many_connections_stays_unavailable(
    login_role: str, raw_pg: asyncpg.Connection[asyncpg.Record]
) -> None:
    await raw_pg.execute(f'ALTER ROLE "{login_role}" CONNECTION LIMIT 0')
    error = await opening_fails(pg_url(user=login_role))
    assert type(error) is StoreUnavailableError, error
    assert isinstance(error.__cause__, asyncpg.TooManyConnectionsError)


def raising(condition: str) -> str:
    """A statement the server answers with the error of ``condition`` (its SQLSTATE name)."""
    return (
        f"DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '{condition}', "
        f"MESSAGE = 'raised by the test as {condition}'; END $$"
    )


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("disk_full", StoreFullError),
        ("invalid_password", StoreConfigurationError),
        ("insufficient_privilege", StoreConfigurationError),
        ("out_of_memory", StoreUnavailableError),
        ("too_many_connections", StoreUnavailableError),
        ("cannot_connect_now", StoreUnavailableError),
    ],
)
async def test_server_errors_a_query_gets_are_typed_by_what_the_caller_can_do(
    condition: str, expected: type[StoreError]
) -> None:
    """What the test server cannot be made to do for real (a full disk, a bad password under
    trust authentication): it raises the same SQLSTATE, and the store's query path maps it."""
    url = pg_url()
    async with PostgresStore(url) as store:
        try:
            with pytest.raises(StoreError) as caught:
                async with store._connection() as conn:
                    await conn.execute(raising(condition))
            assert type(caught.value) is expected, caught.value
            assert isinstance(caught.value.__cause__, asyncpg.PostgresError)
            assert f"raised by the test as {condition}" in str(caught.value)
            if expected is StoreFullError:
                assert "free space" in str(caught.value)
                assert (await store.list_runs()).items == []  # and the store still works
        finally:
            async with store._connection() as conn:
                await conn.execute(f'DROP SCHEMA "{store.schema}" CASCADE')


# -- read-only opening: create=False creates nothing ----------------------------------------------


async def test_opening_a_missing_sqlite_file_read_only_creates_nothing(tmp_path: Path) -> None:
    for path in (tmp_path / "store.db", tmp_path / "no" / "such" / "dir" / "store.db"):
        with pytest.raises(StoreConfigurationError) as caught:
            await open_store(url_of(path), create=False)
        assert str(caught.value).startswith(f"no actorflow store at {path}: ")
        assert "does not exist" in str(caught.value)
    assert tree(tmp_path) == []


async def test_a_relative_path_says_where_it_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreConfigurationError) as caught:
        await open_store("sqlite:///.actorflow/actorflow.db", create=False)
    assert f"no actorflow store at .actorflow/actorflow.db (in {tmp_path})" in str(caught.value)
    assert tree(tmp_path) == []


async def test_a_sqlite_file_without_the_schema_is_not_turned_into_a_store(
    tmp_path: Path,
) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreConfigurationError, match="has no actorflow schema") as caught:
        await open_store(url_of(path), create=False)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before  # not migrated, not even switched to WAL
    assert tree(tmp_path) == ["other.db"]


async def test_an_existing_sqlite_store_opens_read_only(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    async with SqliteStore(url_of(path)) as writer:
        run = run_id()
        await writer.create_batch([created(run), started(run)])
    store = await open_store(url_of(path), create=False)
    try:
        assert store.schema_version == migrations.SCHEMA_VERSION
        assert [r.run_id for r in (await store.list_runs()).items] == [run]
    finally:
        await store.close()


async def test_a_memory_store_opens_read_only_as_ever() -> None:
    store = await open_store("memory://", create=False)
    assert (await store.list_runs()).items == []
    await store.close()


async def test_opening_a_missing_postgres_schema_read_only_creates_nothing(
    raw_pg: asyncpg.Connection[asyncpg.Record],
) -> None:
    url = pg_url(password="s3cret-pw")
    schema = PostgresStore(url).schema
    with pytest.raises(StoreConfigurationError) as caught:
        await open_store(url, create=False)
    message = str(caught.value)
    assert message.startswith(f"no actorflow store in schema {schema!r} of database ")
    assert "?schema=" in message and "s3cret-pw" not in message
    assert not await raw_pg.fetchval(pg_migrations.HAS_SCHEMA, schema)


async def test_an_existing_postgres_schema_opens_read_only(
    raw_pg: asyncpg.Connection[asyncpg.Record],
) -> None:
    url = pg_url()
    try:
        async with PostgresStore(url) as writer:
            run = run_id()
            await writer.create_batch([created(run), started(run)])
        store = await open_store(url, create=False)
        try:
            assert store.schema_version == len(pg_migrations.MIGRATIONS)
            assert [r.run_id for r in (await store.list_runs()).items] == [run]
        finally:
            await store.close()
    finally:
        await raw_pg.execute(f'DROP SCHEMA IF EXISTS "{PostgresStore(url).schema}" CASCADE')
