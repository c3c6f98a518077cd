"""Summary statistics for benchmark samples: pure functions, no I/O, no clocks.

Percentiles interpolate linearly between closest ranks (numpy's default ``linear`` method),
so ``percentile(xs, 50)`` equals :func:`median` and small sample sets give stable numbers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence


def _checked(samples: Sequence[float], what: str) -> list[float]:
    values = [float(x) for x in samples]
    if not values:
        raise ValueError(f"{what} of no samples")
    if any(math.isnan(x) for x in values):
        raise ValueError(f"{what} of samples containing NaN")
    return values


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 ≤ q ≤ 100), interpolating linearly between ranks."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within [0, 100], got {q}")
    values = sorted(_checked(samples, "percentile"))
    rank = (len(values) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(values) - 1)
    fraction = rank - low
    return values[low] + (values[high] - values[low]) * fraction


def median(samples: Sequence[float]) -> float:
    """The median: the middle sample, or the mean of the two middle ones."""
    return percentile(samples, 50.0)


def p95(samples: Sequence[float]) -> float:
    """The 95th percentile."""
    return percentile(samples, 95.0)


P99_MIN_SAMPLES = 100
"""A p99 is reported only over at least this many samples (fewer would make it the maximum,
or close to it)."""


def p99(samples: Sequence[float]) -> float | None:
    """The 99th percentile, or None with fewer than :data:`P99_MIN_SAMPLES` samples."""
    if len(samples) < P99_MIN_SAMPLES:
        return None
    value = percentile(samples, 99.0)
    return value if math.isfinite(value) else None


def scaled(value: float | None, factor: float) -> float | None:
    """``value * factor`` (seconds to milliseconds, say); None stays None."""
    return None if value is None else value * factor


def spread(samples: Sequence[float]) -> float | None:
    """How far repetitions disagree: the interquartile range over the median (0.1: the middle
    half of the samples lies within a band 10 % of the median wide); None under 4 samples
    or with a zero median."""
    if len(samples) < 4:
        return None
    middle = median(samples)
    if middle == 0:
        return None
    return abs(percentile(samples, 75.0) - percentile(samples, 25.0)) / abs(middle)


def mean(samples: Sequence[float]) -> float:
    """The arithmetic mean."""
    values = _checked(samples, "mean")
    return math.fsum(values) / len(values)


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The least-squares slope of ``ys`` against ``xs`` (change in y per unit of x)."""
    if len(xs) != len(ys):
        raise ValueError(f"slope needs as many xs as ys, got {len(xs)} and {len(ys)}")
    if len(xs) < 2:
        raise ValueError("slope needs at least two points")
    mx, my = mean(xs), mean(ys)
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    if sxx == 0.0:
        raise ValueError("slope is undefined when every x is the same")
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return sxy / sxx


def diffs(stamps: Sequence[float]) -> list[float]:
    """The gaps between consecutive timestamps."""
    return [b - a for a, b in itertools.pairwise(stamps)]


def pointwise_median(series: Sequence[Sequence[float]]) -> list[float]:
    """The median at each index over several equally long series (e.g. repetitions)."""
    if not series:
        raise ValueError("pointwise median of no series")
    length = len(series[0])
    if any(len(s) != length for s in series):
        raise ValueError("pointwise median needs series of equal length")
    return [median([s[i] for s in series]) for i in range(length)]
