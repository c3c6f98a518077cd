"""Shared fixtures: the anyio backend and store URLs for every store kind.

PostgreSQL tests use the server ``scripts/test`` starts (``ACTORFLOW_TEST_POSTGRES_URL``),
each test in a schema of its own. Under CI (``CI=true``) a missing server is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

STORE_KINDS = ["memory", "sqlite", "postgres"]
SQLITE_LOOP = "sqlite-loop"
"""A store kind for the suites that run on both SQLite writers: ``?writer=loop``."""
BOTH_SQLITE_WRITERS = [*STORE_KINDS, SQLITE_LOOP]
"""Every store kind, the SQLite store once more with its writer on the event loop's thread
(``pytest.mark.parametrize("store_kind", BOTH_SQLITE_WRITERS)``)."""
PG_ENV = "ACTORFLOW_TEST_POSTGRES_URL"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def postgres_base_url() -> str:
    url = os.environ.get(PG_ENV)
    if url:
        return url
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{PG_ENV} is not set under CI: scripts/test starts PostgreSQL and sets it")
    pytest.skip(f"{PG_ENV} is not set; scripts/test starts PostgreSQL and sets it")


def fresh_url(kind: str, tmp_path: Path) -> str:
    """A URL for an empty store of ``kind``."""
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / f'store-{uuid.uuid4().hex[:8]}.db'}"
    if kind == SQLITE_LOOP:
        return fresh_url("sqlite", tmp_path) + "?writer=loop"
    base = postgres_base_url()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}schema={schema}"


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def store_url(store_kind: str, tmp_path: Path) -> Iterator[str]:
    url = fresh_url(store_kind, tmp_path)
    yield url
    if store_kind == "postgres":
        drop_schema(url)


def drop_schema(url: str) -> None:
    """Drop the schema a test's PostgreSQL URL names (tests leave nothing behind)."""
    import asyncio

    import asyncpg

    from persistence.urls import postgres_parts

    clean, ours = postgres_parts(url)

    async def drop() -> None:
        conn = await asyncpg.connect(clean)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{ours["schema"]}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[object]:
    from persistence import open_store

    opened = await open_store(store_url)
    try:
        yield opened
    finally:
        await opened.close()
