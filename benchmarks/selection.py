"""What ``actorflow bench`` is asked to run: scenario names to suites, ``--store`` to kinds.

Pure parsing, no I/O. A name is a suite (``runtime``), ``all`` (every suite of actorflow's
own), ``peers``, or a scenario of a suite in :data:`SUITE_SCENARIOS` (``ttfs``, ``ttfb``,
``resume``…: that suite with only the scenarios named). A store is a kind (``memory``,
``sqlite``, ``postgres``) or a PostgreSQL URL, which is the ``postgres`` kind on that server.
Bad input raises :class:`SelectionError` naming what is valid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .config import STORE_KINDS, parse_stores
from .hook_bench import SCENARIOS as HOOK_SCENARIOS
from .runtime_bench import SCENARIOS as RUNTIME_SCENARIOS
from .stream_bench import SCENARIOS as STREAM_SCENARIOS

OWN_SUITES = (
    "store",
    "runtime",
    "streams",
    "hooks",
    "otel",
    "sleepers",
    "orders",
    "focused",
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
    "focused",
    "reference",
)
"""The order suites run in."""
SUITE_SCENARIOS: dict[str, tuple[str, ...]] = {
    "runtime": RUNTIME_SCENARIOS,
    "streams": STREAM_SCENARIOS,
    "hooks": HOOK_SCENARIOS,
}
"""Suites whose scenarios can be named alone; a scenario name is unique across them."""
PEERS = ("dbos",)
SELF_PEERED = frozenset({"focused", "reference", "hooks", "sleepers", "orders", "streams"})
"""Suites that measure the peer themselves: ``--peers`` with only these adds no peers suite."""
POSTGRES_SCHEMES = ("postgres", "postgresql")


class SelectionError(ValueError):
    """A scenario, store or peer name that ``actorflow bench`` does not know."""


def scenario_names() -> tuple[str, ...]:
    """Every name a scenario argument may be."""
    return (*OWN_SUITES, "peers", "all", *(n for ns in SUITE_SCENARIOS.values() for n in ns))


def suite_of(scenario: str) -> str | None:
    """The suite of a scenario name (None: not one of :data:`SUITE_SCENARIOS`)."""
    return next((s for s, names in SUITE_SCENARIOS.items() if scenario in names), None)


def _valid_names() -> str:
    scenarios = ", ".join(f"{s} ({', '.join(n)})" for s, n in SUITE_SCENARIOS.items())
    return f"use {', '.join((*OWN_SUITES, 'peers', 'all'))}, or scenarios of {scenarios}"


@dataclass(frozen=True)
class Selection:
    """The suites to run, in order, for some of them which scenarios (a suite absent from
    ``only``: all of its scenarios), and the peer to measure beside actorflow."""

    suites: tuple[str, ...]
    only: Mapping[str, frozenset[str]] = field(default_factory=dict)
    peer: str | None = None
    """The peer engine (``dbos``) that suites measure beside actorflow, if any."""

    def scenarios(self, suite: str) -> frozenset[str] | None:
        """The scenarios of ``suite`` to run (None: all of them)."""
        return self.only.get(suite)

    @property
    def runtime_only(self) -> frozenset[str] | None:
        """The runtime scenarios to run (None: all of them)."""
        return self.scenarios("runtime")


def select(names: Sequence[str], peers: str | None = None) -> Selection:
    """The suites ``names`` select (none: every suite of actorflow's own); ``peers`` (``dbos``)
    adds the peers suite (unless the suites named all measure the peer themselves: focused,
    reference, hooks, sleepers, orders, streams)."""
    suites: set[str] = set()
    only: dict[str, set[str]] = {}
    for name in names:
        key = name.strip().lower()
        if key == "all":
            suites.update(OWN_SUITES)
        elif key in OWN_SUITES or key == "peers":
            suites.add(key)
        elif (suite := suite_of(key)) is not None:
            only.setdefault(suite, set()).add(key)
        else:
            raise SelectionError(f"unknown scenario {name!r}: {_valid_names()}")
    if not suites and not only:
        suites.update(OWN_SUITES)
    peer: str | None = None
    if peers is not None:
        peer = peers.strip().lower()
        if peer not in PEERS:
            raise SelectionError(f"unknown peer {peers!r}: use {', '.join(PEERS)}")
        named = suites | set(only)
        if not named or not named <= SELF_PEERED:
            suites.add("peers")
    # a suite named whole runs whole, even if some of its scenarios were named too
    chosen = {s: frozenset(names) for s, names in only.items() if s not in suites}
    suites.update(chosen)
    return Selection(tuple(s for s in RUN_ORDER if s in suites), chosen, peer)


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
