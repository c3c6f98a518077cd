"""What ``actorflow bench`` is asked to run: scenario names to suites, ``--store`` to kinds.

Pure parsing, no I/O. A name is a suite (``runtime``, ``reference``), ``all`` (every suite of
actorflow's own), ``peers``, or one of the runtime suite's scenarios (``ttfs``, ``seq_gap``,
``gather``, ``one_step_runs``: that suite with only those). A store is a kind (``memory``,
``sqlite``, ``postgres``) or a PostgreSQL URL, which is the ``postgres`` kind on that server.
Bad input raises :class:`SelectionError` naming what is valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from .config import STORE_KINDS, parse_stores
from .runtime_bench import SCENARIOS as RUNTIME_SCENARIOS

OWN_SUITES = (
    "store",
    "runtime",
    "streams",
    "hooks",
    "otel",
    "sleepers",
    "orders",
    "reference",
)
"""actorflow's own suites: what no name, or ``all``, runs."""
RUN_ORDER = (
    "store",
    "runtime",
    "peers",
    "streams",
    "hooks",
    "otel",
    "sleepers",
    "orders",
    "reference",
)
"""The order suites run in (peers after runtime, whose samples it reuses)."""
PEERS = ("dbos",)
POSTGRES_SCHEMES = ("postgres", "postgresql")


class SelectionError(ValueError):
    """A scenario, store or peer name that ``actorflow bench`` does not know."""


def scenario_names() -> tuple[str, ...]:
    """Every name a scenario argument may be."""
    return (*OWN_SUITES, "peers", "all", *RUNTIME_SCENARIOS)


@dataclass(frozen=True)
class Selection:
    """The suites to run, in order, (None: all) which runtime scenarios, and the peer to
    measure beside them (None: none)."""

    suites: tuple[str, ...]
    runtime_only: frozenset[str] | None = None
    peer: str | None = None


def select(names: Sequence[str], peers: str | None = None) -> Selection:
    """The suites ``names`` select (none: every suite of actorflow's own); ``peers`` (``dbos``)
    adds the peers suite, and the peer beside the reference suite (named alone, the reference
    suite runs with its peer and without the peers suite)."""
    suites: set[str] = set()
    only: set[str] = set()
    for name in names:
        key = name.strip().lower()
        if key == "all":
            suites.update(OWN_SUITES)
        elif key in OWN_SUITES or key == "peers":
            suites.add(key)
        elif key in RUNTIME_SCENARIOS:
            only.add(key)
        else:
            raise SelectionError(f"unknown scenario {name!r}: use {', '.join(scenario_names())}")
    if not suites and not only:
        suites.update(OWN_SUITES)
    if peers is not None:
        if peers.strip().lower() not in PEERS:
            raise SelectionError(f"unknown peer {peers!r}: use {', '.join(PEERS)}")
        if suites != {"reference"} or only:
            suites.add("peers")
    runtime_only: frozenset[str] | None = None
    if only and "runtime" not in suites:
        suites.add("runtime")
        runtime_only = frozenset(only)
    peer = peers.strip().lower() if peers is not None else None
    return Selection(tuple(s for s in RUN_ORDER if s in suites), runtime_only, peer)


@dataclass(frozen=True)
class StoreChoice:
    """The store kinds to measure on, and the PostgreSQL server (None: not given)."""

    kinds: tuple[str, ...]
    postgres: str | None


def parse_store_args(values: Sequence[str], postgres: str | None = None) -> StoreChoice:
    """``--store`` values (each a kind, a PostgreSQL URL, or a comma-separated list of them);
    none means every kind. ``postgres`` is the server to use when only the kind is given."""
    kinds: list[str] = []
    url: str | None = None
    for value in values or [",".join(STORE_KINDS)]:
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            if "://" in part:
                kind, given = _store_url(part)
                if given is not None:
                    if url is not None and url != given:
                        raise SelectionError("two PostgreSQL servers given: pass one URL")
                    url = given
            else:
                try:
                    (kind,) = parse_stores(part)
                except ValueError:
                    raise SelectionError(_unknown_store(part)) from None
            if kind not in kinds:
                kinds.append(kind)
    if not kinds:
        raise SelectionError("no store given: " + _valid_stores())
    return StoreChoice(tuple(kinds), url or postgres)


def _store_url(url: str) -> tuple[str, str | None]:
    """The kind of a store URL, and the PostgreSQL server if it is one."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in POSTGRES_SCHEMES:
        return "postgres", url
    if scheme == "memory":
        return "memory", None
    if scheme == "sqlite":
        raise SelectionError(
            f"--store {url!r}: the SQLite scenarios each make a fresh temporary file, "
            "so give the kind, --store sqlite"
        )
    raise SelectionError(_unknown_store(url))


def _valid_stores() -> str:
    return f"use {', '.join(STORE_KINDS)} or a postgresql:// URL"


def _unknown_store(given: str) -> str:
    return f"unknown store {given!r}: {_valid_stores()}"
