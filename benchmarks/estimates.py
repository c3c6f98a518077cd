"""How long a run should take: a rough figure per suite and store kind, said before it starts.

The figures are seconds on a small machine (2 cores, SSD); a run states their sum so nobody
starts a long run by surprise. They are estimates, not limits. The first peers
run also installs DBOS from PyPI, which this does not count.
"""

from __future__ import annotations

from collections.abc import Iterable

FULL: dict[str, dict[str, float]] = {
    "store": {"memory": 2, "sqlite": 10, "postgres": 10},
    "runtime": {"memory": 11, "sqlite": 95, "postgres": 96},
    "peers": {"sqlite": 400, "postgres": 400},  # actorflow's rounds, then DBOS's, in turn
    "streams": {"memory": 3, "sqlite": 15, "postgres": 15},
    "hooks": {"memory": 3, "sqlite": 12, "postgres": 15},
    "otel": {"memory": 10, "sqlite": 45, "postgres": 45},
    "sleepers": {"sqlite": 300},
    "orders": {"memory": 10, "sqlite": 30, "postgres": 30},
    "focused": {"memory": 10, "sqlite": 60, "postgres": 60},
    "reference": {"memory": 50, "sqlite": 60, "postgres": 60},
}
QUICK: dict[str, dict[str, float]] = {
    "store": {"memory": 0.2, "sqlite": 1, "postgres": 1},
    "runtime": {"memory": 0.55, "sqlite": 17.2, "postgres": 17.3},
    "peers": {"sqlite": 70, "postgres": 70},
    "streams": {"memory": 0.3, "sqlite": 1, "postgres": 1},
    "hooks": {"memory": 0.2, "sqlite": 1, "postgres": 1},
    "otel": {"memory": 0.2, "sqlite": 1, "postgres": 1},
    "sleepers": {"sqlite": 10},
    "orders": {"memory": 0.5, "sqlite": 1, "postgres": 1},
    "focused": {"memory": 1, "sqlite": 10, "postgres": 8},
    "reference": {"memory": 2, "sqlite": 5, "postgres": 5},
}
"""Measured: ``actorflow bench --quick`` took ~1 s on memory and ~28 s on SQLite (runtime
~17 s, most of it warming up SQLite's WAL; sleepers ~10 s); the rest scales from the plans.
runtime's seq_gap_big_input adds one 1,000-step run per repetition (100 with ``--quick``),
measured at ~0.2 s on memory, ~0.9 s on SQLite, ~1.2 s on PostgreSQL a run."""


PEER_FULL: dict[str, dict[str, float]] = {
    "focused": {"sqlite": 450, "postgres": 450},
    "hooks": {"sqlite": 75, "postgres": 30},
    "sleepers": {"sqlite": 150},
    "orders": {"sqlite": 300, "postgres": 130},
    "streams": {"sqlite": 120, "postgres": 120},
}
PEER_QUICK: dict[str, dict[str, float]] = {
    "focused": {"sqlite": 28, "postgres": 20},
    "hooks": {"sqlite": 26, "postgres": 17},
    "sleepers": {"sqlite": 16},
    "orders": {"sqlite": 40, "postgres": 16},
    "streams": {"sqlite": 20, "postgres": 30},
}
"""What measuring DBOS adds to a suite that measures it itself (``--peers dbos``); quick:
measured, ~38 s for ``focused --quick --store sqlite --peers dbos`` against ~10 s alone.
hooks: DBOS on SQLite wakes a recv by polling once a second, so about a second a sample; each
of its turns (a scenario in a round) launches DBOS anew (measured, quick: 27 s on SQLite, 18 s on
PostgreSQL with DBOS).
orders: DBOS took ~40 s (SQLite) and ~15 s (PostgreSQL) for 100 orders with ``--quick``;
300 at once (the full plan) scale from that. streams: ~20 s (SQLite), ~30 s (PostgreSQL)
with ``--quick``."""


def estimate(units: Iterable[tuple[str, str]], quick: bool, peer: bool = False) -> float:
    """Seconds that the ``(suite, store kind)`` units should take together (with ``peer``:
    including the peer that suites such as focused measure beside actorflow)."""
    tables = [QUICK if quick else FULL]
    if peer:
        tables.append(PEER_QUICK if quick else PEER_FULL)
    return sum(t.get(suite, {}).get(kind, 0.0) for t in tables for suite, kind in units)
