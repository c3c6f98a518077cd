"""``import actorflow``: one import for the public API, installed with the four packages."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import actorflow
import conventions
import persistence
import runtime
from persistence.postgres import PostgresStore
from persistence.sqlite import SqliteStore

ROOT = Path(__file__).parents[1]
FROM_PERSISTENCE = {
    "InvalidStoreURLError",
    "MemoryStore",
    "Store",
    "StoreError",
    "open_store",
}
FROM_CONVENTIONS = {
    "Actor",
    "Annotation",
    "Approval",
    "Decision",
    "Failure",
    "Namespace",
    "Revision",
    "Stability",
    "Trigger",
    "TypedKey",
    "typed_key",
}


def test_every_name_in_all_exists_once() -> None:
    assert len(actorflow.__all__) == len(set(actorflow.__all__))
    missing = [name for name in actorflow.__all__ if not hasattr(actorflow, name)]
    assert not missing


def test_it_exports_the_runtime_public_api_as_the_same_objects() -> None:
    assert set(runtime.__all__) <= set(actorflow.__all__)
    for name in runtime.__all__:
        assert getattr(actorflow, name) is getattr(runtime, name), name


def test_it_exports_the_stores_their_errors_and_the_typed_keys() -> None:
    for name in FROM_PERSISTENCE:
        assert getattr(actorflow, name) is getattr(persistence, name), name
    for name in FROM_CONVENTIONS:
        assert getattr(actorflow, name) is getattr(conventions, name), name
    assert actorflow.SqliteStore is SqliteStore
    assert actorflow.PostgresStore is PostgresStore
    extra = set(actorflow.__all__) - set(runtime.__all__)
    assert extra == FROM_PERSISTENCE | FROM_CONVENTIONS | {"SqliteStore", "PostgresStore"}


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        actorflow.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018


def test_the_install_ships_actorflow_next_to_the_four_packages() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = config["tool"]["setuptools"]["packages"]
    assert {"actorflow", "actors", "conventions", "persistence", "runtime"} <= set(packages)
    assert (ROOT / "actorflow" / "py.typed").is_file()
