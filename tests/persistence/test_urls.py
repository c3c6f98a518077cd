"""Store URLs: schemes, paths, options, and what error messages show."""

from __future__ import annotations

import pytest

from persistence import InvalidStoreURLError, store_for
from persistence.urls import DEFAULT_URL, postgres_parts, redact, resolve_url, sqlite_path


def test_schemes_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACTORFLOW_STORE", raising=False)
    assert resolve_url(None) == DEFAULT_URL
    monkeypatch.setenv("ACTORFLOW_STORE", "memory://")
    assert resolve_url(None) == "memory://"
    assert resolve_url("sqlite:///x.db") == "sqlite:///x.db"
    a, b = store_for("memory://"), store_for("memory://")
    assert a is not b  # a fresh private store per open
    for bad in ("redis://x", "nothing-here", "mysql://u@h/db"):
        with pytest.raises(InvalidStoreURLError):
            store_for(bad)


def test_sqlite_paths() -> None:
    assert str(sqlite_path("sqlite:///rel/x.db")[0]) == "rel/x.db"
    assert str(sqlite_path("sqlite:////abs/x.db")[0]) == "/abs/x.db"
    assert sqlite_path("sqlite:///x.db?synchronous=normal")[1] == {"synchronous": "normal"}
    assert sqlite_path("sqlite:///x.db?synchronous=")[1] == {"synchronous": ""}  # refused later
    with pytest.raises(InvalidStoreURLError, match="names no file"):
        sqlite_path("sqlite:///")
    with pytest.raises(InvalidStoreURLError):
        sqlite_path("sqlite://x.db")


def test_postgres_options_and_redaction() -> None:
    clean, ours = postgres_parts("postgresql://u:pw@h:5432/db?schema=s1&sslmode=disable")
    assert ours == {"schema": "s1"} and clean == "postgresql://u:pw@h:5432/db?sslmode=disable"
    with pytest.raises(InvalidStoreURLError, match="empty") as error:
        postgres_parts("postgresql://u:secret@h:5432/db?schema=")
    assert "secret" not in str(error.value)
    with pytest.raises(InvalidStoreURLError, match="no host") as error:
        postgres_parts("postgresql://u:secret@/db")
    assert "secret" not in str(error.value)
    assert redact("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"
