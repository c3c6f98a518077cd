"""Durations and instants: ``sleep("1h30m")``, seconds, timedelta, or a datetime."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h|d|w)")
_WHOLE = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*(?:ms|sec|min|s|m|h|d|w)\s*)+$")

Duration = float | int | timedelta | datetime | str


def parse_duration(text: str) -> timedelta:
    """Parse ``"1h30m"``, ``"90s"``, ``"2d"``, ``"250ms"``, ``"1w 2d"``."""
    lowered = text.strip().lower()
    if not lowered or not _WHOLE.match(lowered):
        raise ValueError(
            f"cannot read duration {text!r}: use a number and a unit (ms, s, m, h, d, w), "
            "like '90s', '1h30m' or '2d'"
        )
    seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(lowered))
    return timedelta(seconds=seconds)


def resolve_instant(value: Duration, now: datetime) -> datetime:
    """The instant a duration (from ``now``) or an instant names, as an aware UTC datetime."""
    if isinstance(value, bool):
        raise TypeError("a duration cannot be a bool")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{value!r} has no time zone; use an aware datetime (UTC)")
        return value.astimezone(UTC)
    if isinstance(value, timedelta):
        delta = value
    elif isinstance(value, int | float):
        delta = timedelta(seconds=value)
    elif isinstance(value, str):
        delta = parse_duration(value)
    else:
        raise TypeError(
            f"cannot sleep for {value!r}: use seconds, a timedelta, a datetime or '1h30m'"
        )
    return now + max(delta, timedelta(0))


def seconds_until(
    value: float | timedelta | datetime | None, now: datetime, default: float
) -> float:
    """Seconds from ``now`` until a delay or instant (``default`` if None), at least 0."""
    if value is None:
        return default
    if isinstance(value, datetime):
        return max(0.0, (resolve_instant(value, now) - now).total_seconds())
    if isinstance(value, timedelta):
        return max(0.0, value.total_seconds())
    return max(0.0, float(value))
