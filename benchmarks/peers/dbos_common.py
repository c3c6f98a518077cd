"""What the DBOS scripts share: loading DBOS, a fresh system database each, their store flags,
the stream payloads.

Run by the peer venv's interpreter as a sibling of the script that imports it (the script's
directory is first on ``sys.path``), and imported as ``benchmarks.peers.dbos_common`` by the
tests; it imports nothing of actorflow's. DBOS is reached through values typed as ``Any``,
so this file type-checks without it.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import logging
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

MISSING_EXIT = 2
"""A script's exit status when DBOS cannot be imported."""


class DbosMissing(RuntimeError):
    """DBOS cannot be imported by this interpreter."""


def load_dbos() -> Any:
    """The ``dbos`` module (its logger set to warnings), or :class:`DbosMissing` saying how
    to get it."""
    try:
        dbos = importlib.import_module("dbos")
    except ImportError as exc:
        raise DbosMissing(
            f"DBOS is not installed for {sys.executable} ({exc}); run this script with the "
            "peer venv's interpreter (benchmarks/.peers/dbos/bin/python), as the harness does"
        ) from None
    logging.getLogger("dbos").setLevel(logging.WARNING)
    return dbos


class Target:
    """Where each fresh system database goes: a new SQLite file in ``directory``, or a new
    PostgreSQL schema (``prefix`` + a number; the harness drops them afterwards). DBOS logs at
    ``log_level``."""

    def __init__(
        self,
        name: str,
        store: str,
        directory: Path | None,
        dsn: str | None,
        prefix: str,
        log_level: str = "WARNING",
    ) -> None:
        if store == "sqlite" and directory is None:
            raise ValueError("--store sqlite needs --dir")
        if store == "postgres" and dsn is None:
            raise ValueError("--store postgres needs --dsn")
        if store not in ("sqlite", "postgres"):
            raise ValueError(f"unknown store {store!r}: use sqlite or postgres")
        self.name = name
        self.store = store
        self.directory = directory
        self.dsn = dsn
        self.prefix = prefix
        self.log_level = log_level
        self.count = 0

    @classmethod
    def of(cls, name: str, args: argparse.Namespace, log_level: str = "WARNING") -> Target:
        """The target of the flags :func:`add_store_arguments` added."""
        return cls(name, args.store, args.dir, args.dsn, args.schema_prefix, log_level)

    def config(self) -> dict[str, Any]:
        """A DBOS config for a new, empty system database (DBOS's defaults otherwise)."""
        self.count += 1
        config: dict[str, Any] = {"name": f"actorflow-bench-{self.name}"}
        config["log_level"] = self.log_level
        if self.store == "sqlite":
            assert self.directory is not None
            path = self.directory / f"dbos-{self.name}-{self.count}.sqlite"
            config["system_database_url"] = f"sqlite:///{path}"
        else:
            config["system_database_url"] = self.dsn
            config["dbos_system_schema"] = f"{self.prefix}_{self.count}"
        return config


@asynccontextmanager
async def launched(dbos: Any, config: dict[str, Any]) -> AsyncIterator[None]:
    """A launched DBOS on the system database of ``config``, destroyed afterwards."""
    dbos.DBOS(config=config)
    dbos.DBOS.launch()
    try:
        yield
    finally:
        dbos.DBOS.destroy()


def add_store_arguments(p: argparse.ArgumentParser, prefix: str) -> None:
    """``--store``, ``--dir``, ``--dsn``, ``--schema-prefix`` (default ``prefix``), ``--out``."""
    p.add_argument("--store", choices=["sqlite", "postgres"], required=True)
    p.add_argument("--dir", type=Path, help="directory for the SQLite files")
    p.add_argument("--dsn", help="PostgreSQL URL of the database to use")
    p.add_argument("--schema-prefix", default=prefix)
    p.add_argument("--out", type=Path, required=True, help="where the JSON result goes")


def check_store_arguments(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a usage error (status 2) if the store's flags do not go together."""
    if args.store == "sqlite" and args.dir is None:
        p.error("--store sqlite needs --dir")
    if args.store == "postgres" and args.dsn is None:
        p.error("--store postgres needs --dsn")


def write_result(path: Path, mode: str, raw: Mapping[str, Any], not_run: Mapping[str, str]) -> None:
    """The script's JSON: DBOS's version, how it ran, raw samples and what was not run."""
    result = {
        "engine": "dbos",
        "version": importlib.metadata.version("dbos"),
        "python": sys.version.split()[0],
        "mode": mode,
        "raw": dict(raw),
        "not_run": dict(not_run),
    }
    path.write_text(json.dumps(result))


def pattern(size: int) -> bytes:
    """``size`` bytes of 0, 1, …, 255, 0, 1, … (the streams' payload, as actorflow's suites
    write it)."""
    whole, rest = divmod(size, 256)
    return bytes(range(256)) * whole + bytes(range(rest))


def xor_table(mask: int) -> bytes:
    """A ``bytes.translate`` table XORing every byte with ``mask``."""
    return bytes(b ^ mask for b in range(256))


def pipeline_output(size: int, stages: int) -> bytes:
    """``pattern(size)`` through ``stages`` transforms XORing with 1, 2, …, stages."""
    mask = 0
    for stage in range(1, stages + 1):
        mask ^= stage
    return pattern(size).translate(xor_table(mask))
