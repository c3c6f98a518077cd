"""Fixtures for runtime tests: a store per test, shared by the runtimes a test opens."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from persistence import Store, open_store


@pytest.fixture
async def shared_store(store_url: str) -> AsyncIterator[Store]:
    """One opened store that several Runtimes of a test use in turn (a restart keeps data)."""
    store = await open_store(store_url)
    try:
        yield store
    finally:
        await store.close()
