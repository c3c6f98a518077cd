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
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import runtime
from persistence import (
    RunNotFoundError,
    StoreConfigurationError,
    StoreError,
    StoreFullError,
    StoreUnavailableError,
)
from persistence.sqlite import SqliteStore

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
