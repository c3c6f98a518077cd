"""The focused suite's numbers from ``perf_counter`` stamps: pure functions, no I/O, no clocks.

Stamps are seconds on one clock; ``start`` is when the caller called ``start()``, ``end``
when it held the result.
"""

from __future__ import annotations

from collections.abc import Sequence


def workflow_overhead(
    start: float, end: float, entries: Sequence[float], exits: Sequence[float]
) -> float:
    """Seconds of a run spent outside its step bodies: the wall time ``end - start`` minus
    the sum of each body's ``exit - entry``."""
    if len(entries) != len(exits):
        raise ValueError(f"{len(entries)} step entries but {len(exits)} exits")
    if not entries:
        raise ValueError("workflow overhead of a run without steps")
    if end < start:
        raise ValueError(f"the run ends ({end}) before it starts ({start})")
    bodies = 0.0
    for index, (entry, exit_) in enumerate(zip(entries, exits, strict=True)):
        if exit_ < entry or entry < start or exit_ > end:
            raise ValueError(f"step {index} ran from {entry} to {exit_}, outside {start}-{end}")
        bodies += exit_ - entry
    return (end - start) - bodies


def first_last(start: float, ends: Sequence[float]) -> tuple[float, float]:
    """Seconds from ``start`` to the first and to the last branch's end."""
    if not ends:
        raise ValueError("first and last branch of a fan-out without branches")
    first, last = min(ends), max(ends)
    if first < start:
        raise ValueError(f"a branch ended ({first}) before the run started ({start})")
    return first - start, last - start
