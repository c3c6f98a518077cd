"""Fresh, throwaway stores for each scenario: temporary SQLite files, PostgreSQL schemas.

Every scenario gets an empty store so no scenario measures the leftovers of another: a
SQLite file in a new temporary directory (removed afterwards) or a PostgreSQL schema named
``bench_<random>`` (dropped afterwards).
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import asyncpg

from persistence.urls import postgres_parts

from .model import SuiteResult
from .progress import say

T = TypeVar("T")

SYNCHRONOUS_LEVELS = ("full", "normal")
"""The SQLite ``synchronous`` levels the harness measures (``--sqlite-synchronous``)."""

_synchronous = "full"


def use_sqlite_synchronous(level: str) -> None:
    """Measure SQLite stores (and their floor) with ``synchronous=level`` from now on."""
    if level not in SYNCHRONOUS_LEVELS:
        raise ValueError(
            f"unknown SQLite synchronous level {level!r}; use one of "
            + ", ".join(SYNCHRONOUS_LEVELS)
        )
    global _synchronous
    _synchronous = level


SQLITE_WRITERS = ("thread", "loop")
"""Where the measured SQLite stores run their writes (``--sqlite-writer``: ``?writer=``)."""

_writer = "thread"


def use_sqlite_writer(writer: str) -> None:
    """Measure SQLite stores with ``?writer=writer`` from now on (the floor is unchanged)."""
    if writer not in SQLITE_WRITERS:
        raise ValueError(
            f"unknown SQLite writer {writer!r}; use one of " + ", ".join(SQLITE_WRITERS)
        )
    global _writer
    _writer = writer


def sqlite_writer() -> str:
    """The writer SQLite stores are measured with (``thread`` unless asked)."""
    return _writer


def sqlite_synchronous() -> str:
    """The ``synchronous`` level SQLite stores are measured with (``full`` unless asked)."""
    return _synchronous


def sqlite_mode() -> str:
    """``synchronous=FULL`` or ``synchronous=NORMAL`` (and ``writer=loop`` if so), for notes."""
    mode = f"synchronous={_synchronous.upper()}"
    return mode if _writer == "thread" else f"{mode}, writer=loop"


def sqlite_options() -> str:
    """The query string of a measured SQLite store's URL."""
    options = f"synchronous={_synchronous}"
    return options if _writer == "thread" else f"{options}&writer={_writer}"


def scratch_name(prefix: str = "bench") -> str:
    """A fresh lowercase identifier such as ``bench_1f0c9a2b7d3e``."""
    return f"{prefix}_{secrets.token_hex(6)}"


def with_schema(base: str, schema: str) -> str:
    """``base`` (a PostgreSQL URL) with its ``schema`` option set to ``schema``."""
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"]
    query.append(("schema", schema))
    return parts._replace(query=urlencode(query)).geturl()


def postgres_dsn(base: str) -> str:
    """The URL asyncpg (or another driver) connects with: actorflow's own options removed."""
    dsn, _ = postgres_parts(base)
    return dsn


async def check_postgres(base: str) -> str | None:
    """None if the server answers, else a one-line reason."""
    try:
        conn = await asyncpg.connect(postgres_dsn(base), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"cannot connect to PostgreSQL at {_redacted(base)}: {exc}"
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()
    return None


async def skip_reason(kind: str, postgres: str | None) -> str | None:
    """Why ``kind`` cannot be measured (no PostgreSQL URL, server down), or None if it can."""
    if kind != "postgres":
        return None
    if postgres is None:
        return "no server given (--postgres URL or $ACTORFLOW_BENCH_POSTGRES_URL)"
    return await check_postgres(postgres)


async def drop_schemas(base: str, *schemas: str) -> None:
    """Drop these schemas (and everything in them) if they exist."""
    conn = await asyncpg.connect(postgres_dsn(base), timeout=10)
    try:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def drop_schemas_with_prefix(base: str, prefix: str) -> list[str]:
    """Drop every schema whose name starts with ``prefix``; the names dropped."""
    conn = await asyncpg.connect(postgres_dsn(base), timeout=10)
    try:
        names: list[str] = [
            r["nspname"]
            for r in await conn.fetch(
                "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", prefix
            )
        ]
        for name in names:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()
    return names


@asynccontextmanager
async def temp_dir(prefix: str = "actorflow-bench-") -> AsyncIterator[Path]:
    """A new temporary directory, removed with its contents afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@asynccontextmanager
async def fresh_store_url(kind: str, postgres: str | None) -> AsyncIterator[str]:
    """The URL of an empty store of ``kind`` (memory, sqlite, postgres), cleaned up after."""
    if kind == "memory":
        yield "memory://"
    elif kind == "sqlite":
        async with temp_dir() as directory:
            yield f"sqlite:///{directory / 'store.db'}?{sqlite_options()}"
    elif kind == "postgres":
        if postgres is None:
            raise ValueError("no PostgreSQL URL: pass --postgres or set the environment variable")
        schema = scratch_name()
        try:
            yield with_schema(postgres, schema)
        finally:
            await drop_schemas(postgres, schema)
    else:
        raise ValueError(f"unknown store kind {kind!r}")


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


async def each_store(
    suite: str,
    stores: Sequence[str],
    postgres: str | None,
    out: SuiteResult,
    measure: Callable[[str], Awaitable[T]],
) -> AsyncIterator[tuple[str, T]]:
    """``measure`` each store kind: skipped kinds go to ``out.skipped``, failures to
    ``out.errors`` (the suite goes on); yields ``(kind, result)`` for the others."""
    for kind in stores:
        reason = await skip_reason(kind, postgres)
        if reason is not None:
            out.skipped.append(f"{kind}: {reason}")
            continue
        try:
            result = await measure(kind)
        except Exception as exc:
            out.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            say(f"{suite} {kind} failed: {exc!r}")
            continue
        yield kind, result
