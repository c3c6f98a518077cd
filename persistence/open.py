"""Opening a store by URL."""

from __future__ import annotations

from .memory import MemoryStore
from .store import Store
from .urls import resolve_url, scheme_of


def store_for(url: str | None = None) -> Store:
    """The (unopened) store a URL names; None means ``$ACTORFLOW_STORE`` or the default.

    ``memory://`` gives a fresh private store on every call.
    """
    resolved = resolve_url(url)
    scheme = scheme_of(resolved)
    if scheme == "memory":
        return MemoryStore(resolved)
    if scheme == "sqlite":
        from .sqlite import SqliteStore

        return SqliteStore(resolved)
    from .postgres import PostgresStore

    return PostgresStore(resolved)


async def open_store(url: str | None = None, *, create: bool = True) -> Store:
    """Open the store a URL names (creating or migrating its schema) and return it.

    ``create=False`` opens only a store that exists: otherwise ``StoreConfigurationError``,
    and nothing is created (see ``Store.open``).
    """
    store = store_for(url)
    await store.open(create=create)
    return store
