"""The PostgreSQL store's failures as store errors typed by what the caller can do.

- :class:`StoreFullError`: the server's disk is full;
- :class:`StoreConfigurationError`: what lasts until the configuration is fixed (a missing
  database or role, a bad password, a missing privilege), with what to fix;
- :class:`StoreUnavailableError`: what may pass (the server out of reach or out of
  connections, a connection lost, a server shutting down, a timeout).

Every message names the server (``target``: host, port and database; ``where``: the same
with the schema).
"""

from __future__ import annotations

from typing import Final

import asyncpg

from .errors import StoreConfigurationError, StoreError, StoreFullError, StoreUnavailableError

_UNAVAILABLE: Final = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,  # but a full disk: see store_error
)
"""Failures that may pass: connection refused or lost, cannot connect now, too many
connections, a server shutting down, a timeout."""
_CONFIGURATION: Final = (
    (asyncpg.InvalidCatalogNameError, "create the database, or fix its name in the store URL"),
    (
        asyncpg.InvalidPasswordError,
        "fix the password (in the store URL, $PGPASSWORD or ~/.pgpass)",
    ),
    (
        asyncpg.InvalidAuthorizationSpecificationError,
        "create the role (and let it log in), or fix the user name in the store URL",
    ),
    (
        asyncpg.InsufficientPrivilegeError,
        "grant the role what it lacks, or name a role that has it in the store URL",
    ),
)
"""Failures that last until the configuration is fixed, each with what to fix."""


def store_error(exc: BaseException, target: str, where: str) -> StoreError | None:
    """``exc`` as the store error it means to the caller, or None to raise it as it is.

    A full disk is ``StoreFullError``; a missing database or role, a bad password or a
    missing privilege is ``StoreConfigurationError``; a server out of reach, or out of
    connections, is ``StoreUnavailableError``. Store errors pass as they are.
    """
    if isinstance(exc, StoreError):
        return None
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, asyncpg.DiskFullError):  # before InsufficientResourcesError
        return StoreFullError(
            f"PostgreSQL at {target} is out of disk space ({detail}): free "
            "space on the server; writes succeed again once there is room"
        )
    for kind, fix in _CONFIGURATION:
        if isinstance(exc, kind):
            return StoreConfigurationError(f"PostgreSQL refused {target} ({detail}): {fix}")
    if isinstance(exc, _UNAVAILABLE) or (
        isinstance(exc, asyncpg.InterfaceError)
        and not isinstance(exc, ValueError | asyncpg.ClientConfigurationError)
    ):
        return unavailable(exc, where)
    return None


def open_error(exc: Exception, target: str, where: str) -> StoreError:
    """What failed opening the store: its store error, else the server is out of reach."""
    if isinstance(exc, StoreError):
        return exc
    return store_error(exc, target, where) or unavailable(exc, where)


def unavailable(exc: BaseException, where: str) -> StoreUnavailableError:
    """The server at ``where`` cannot be reached now (it may come back)."""
    detail = str(exc) or type(exc).__name__
    return StoreUnavailableError(f"PostgreSQL at {where} is unavailable: {detail}")
