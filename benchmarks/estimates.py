"""How long a run should take: a rough figure per suite and store kind, said before it starts.

The figures are seconds on a small machine (2 cores, SSD); a run states their sum so nobody
starts an hour of measurements by surprise. They are estimates, not limits. The first peers
run also installs DBOS from PyPI, which this does not count.
"""

from __future__ import annotations

from collections.abc import Iterable

FULL: dict[str, dict[str, float]] = {
    "store": {"memory": 2, "sqlite": 30, "postgres": 30},
    "runtime": {"memory": 10, "sqlite": 150, "postgres": 150},
    "peers": {"sqlite": 300, "postgres": 300},
    "streams": {"memory": 5, "sqlite": 60, "postgres": 60},
    "hooks": {"memory": 3, "sqlite": 30, "postgres": 30},
    "otel": {"memory": 10, "sqlite": 90, "postgres": 90},
    "sleepers": {"sqlite": 300},
}
QUICK: dict[str, dict[str, float]] = {
    "store": {"memory": 0.2, "sqlite": 3, "postgres": 3},
    "runtime": {"memory": 0.5, "sqlite": 20, "postgres": 20},
    "peers": {"sqlite": 60, "postgres": 60},
    "streams": {"memory": 0.3, "sqlite": 5, "postgres": 5},
    "hooks": {"memory": 0.2, "sqlite": 5, "postgres": 5},
    "otel": {"memory": 0.2, "sqlite": 5, "postgres": 5},
    "sleepers": {"sqlite": 15},
}


def estimate(units: Iterable[tuple[str, str]], quick: bool) -> float:
    """Seconds that the ``(suite, store kind)`` units should take together."""
    table = QUICK if quick else FULL
    return sum(table.get(suite, {}).get(kind, 0.0) for suite, kind in units)
