"""Splitting repetitions into rounds, so two engines can take turns and drift hits both alike.

Pure: no I/O, no clocks. The peers suite splits its scenarios with it
(:meth:`benchmarks.runtime_bench.Scenarios.rounds`), the hooks suite its samples.
"""

from __future__ import annotations


def split(total: int, count: int) -> list[int]:
    """``total`` repetitions over ``count`` rounds: equal shares, the remainder one more each
    to the first rounds (``split(10, 3) == [4, 3, 3]``); a share is 0 when ``total < count``."""
    if count < 1:
        raise ValueError(f"rounds must be at least 1, got {count}")
    if total < 0:
        raise ValueError(f"repetitions must be at least 0, got {total}")
    return [total // count + (1 if index < total % count else 0) for index in range(count)]


def shares(total: int, rounds: int) -> list[int]:
    """``total`` repetitions over up to ``rounds`` rounds, each round at least one (fewer
    rounds when there are fewer repetitions; one round of nothing when ``total`` is 0)."""
    return split(total, max(1, min(rounds, total)))
