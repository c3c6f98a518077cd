"""The SQLite store's failures as store errors typed by what the caller can do.

- :class:`StoreConfigurationError`: the file cannot be opened or written until something is
  fixed (a missing or unwritable directory, a path that names a directory, a file that is not
  a database, a read-only file or directory, no permission);
- :class:`StoreFullError`: the disk (or the file's size limit) is full;
- :class:`StoreUnavailableError`: anything that may pass (locked, busy, an I/O error).

Every message names the file and what to do.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from .errors import StoreConfigurationError, StoreError, StoreFullError, StoreUnavailableError

_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def store_error(exc: sqlite3.Error, path: Path, busy_timeout_ms: int) -> StoreError:
    """``exc``, raised by SQLite on the file at ``path``, as the store error it means."""
    message = str(exc)
    code = getattr(exc, "sqlite_errorcode", -1) & 0xFF  # the primary result code
    if code == sqlite3.SQLITE_FULL or "database or disk is full" in message:
        return full(path, message)
    if code == sqlite3.SQLITE_CANTOPEN or "unable to open database file" in message:
        return StoreConfigurationError(
            f"cannot open SQLite database {path} ({message}): check that the path names a "
            "file (not a directory) in a directory that exists and that this process may "
            "write to"
        )
    if code == sqlite3.SQLITE_NOTADB or "file is not a database" in message:
        return StoreConfigurationError(
            f"{path} is not a SQLite database ({message}): point the store URL at an "
            "actorflow store, or move that file away"
        )
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH) or (
        "readonly database" in message
    ):
        return StoreConfigurationError(
            f"SQLite database {path} cannot be written ({message}): give this process write "
            f"permission on the file and on its directory, where SQLite keeps {path.name}-wal "
            f"and {path.name}-shm beside it"
        )
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError):
        return StoreError(f"SQLite database {path} refused a write: {message}")
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or (
        "locked" in message or "busy" in message
    ):
        return StoreUnavailableError(
            f"SQLite database {path} is locked by another connection and stayed so "
            f"for busy_timeout={busy_timeout_ms} ms ({message}); retry later"
        )
    return StoreUnavailableError(f"SQLite database {path} failed: {message}")


def directory_error(exc: OSError, path: Path) -> StoreError:
    """``exc``, raised creating the directory of the file at ``path``, as a store error."""
    if exc.errno in _NO_SPACE:
        return full(path, str(exc))
    return StoreConfigurationError(
        f"cannot create the directory of SQLite database {path} ({exc}): create it, or "
        "point the store URL at a directory this process may write to"
    )


def full(path: Path, detail: str) -> StoreFullError:
    """The file at ``path`` cannot grow: ``detail`` says what SQLite or the system said."""
    return StoreFullError(
        f"SQLite database {path} is full ({detail}): free disk space where it lives; "
        "writes succeed again once there is room"
    )
