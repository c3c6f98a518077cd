"""Identifiers: time-ordered, sortable strings with a type prefix.

Event, run and stream ids are ULIDs (48 bits of milliseconds, 80 bits of randomness, in
Crockford base32) behind a prefix such as ``wrun_``. A run's log order is the order of its
event ids, so the stores draw each new event id strictly above the run's last one
(:func:`event_id_after`), whatever the clocks of the writers say.

Step, wait and hook ids are not random: they are derived from the run, the rerun generation
and the position of the durable call in the workflow's call order, so the same workflow code
gives the same ids on every replay, in any process (:func:`command_id`).
"""

from __future__ import annotations

import hashlib
import os
import random
import secrets
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache

RUN = "wrun_"
STEP = "step_"
WAIT = "wait_"
HOOK = "hook_"
EVENT = "evnt_"
STREAM = "strm_"
CHILD = "chld_"
ANNOTATION = "antn_"

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
_RANDOM_BITS = 80
_RANDOM_MASK = (1 << _RANDOM_BITS) - 1
ULID_LENGTH = 26


_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


def _b32(value: int, length: int) -> str:
    """``value`` in ``length`` Crockford base32 digits (two digits per table lookup)."""
    pairs = _PAIRS
    shift = 5 * length - 10
    parts = []
    if length % 2:
        parts.append(_ALPHABET[(value >> (5 * length - 5)) & 31])
        shift -= 5
    while shift >= 0:
        parts.append(pairs[(value >> shift) & 1023])
        shift -= 10
    return "".join(parts)


def _ulid_text(value: int) -> str:
    """A 128-bit value as 26 Crockford digits (13 lookups of two digits each)."""
    p = _PAIRS
    return (
        p[value >> 120]
        + p[value >> 110 & 1023]
        + p[value >> 100 & 1023]
        + p[value >> 90 & 1023]
        + p[value >> 80 & 1023]
        + p[value >> 70 & 1023]
        + p[value >> 60 & 1023]
        + p[value >> 50 & 1023]
        + p[value >> 40 & 1023]
        + p[value >> 30 & 1023]
        + p[value >> 20 & 1023]
        + p[value >> 10 & 1023]
        + p[value & 1023]
    )


def _unb32(text: str) -> int:
    value = 0
    for c in text:
        value = (value << 5) | _DECODE[c]
    return value


class _Monotonic:
    """A process-wide ULID source that never goes backwards."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0
        self.last_text = ""

    def next(self, floor: int = 0) -> int:
        now = (time.time_ns() // 1_000_000) << _RANDOM_BITS
        candidate = now | _random.getrandbits(_RANDOM_BITS - 1)
        with self._lock:
            lowest = max(self._last, floor) + 1
            value = candidate if candidate >= lowest else lowest
            self._last = value
        return value

    def reserve(self, count: int, floor: int = 0) -> int:
        """Reserve ``count`` consecutive values above ``floor``; the first of them."""
        now = (time.time_ns() // 1_000_000) << _RANDOM_BITS
        candidate = now | _random.getrandbits(_RANDOM_BITS - 1)
        with self._lock:
            lowest = max(self._last, floor) + 1
            first = candidate if candidate >= lowest else lowest
            self._last = first + count - 1
            self.last_text = _ulid_text(self._last)
        return first

    def next_text(self, floor: int = 0) -> str:
        text = _ulid_text(self.next(floor))
        self.last_text = text
        return text


_random = random.Random(secrets.randbits(128))  # seeded per process: unique, not secret
os.register_at_fork(after_in_child=lambda: _random.seed(secrets.randbits(128)))
_source = _Monotonic()


def new_ulid() -> str:
    """A fresh ULID, greater than every ULID this process made before."""
    return _source.next_text()


def new_id(prefix: str) -> str:
    """A fresh time-ordered id with ``prefix`` (one of the module's prefix constants)."""
    return prefix + new_ulid()


def event_id_after(last_event_id: str | None) -> str:
    """A new event id strictly greater than ``last_event_id`` (the run's last event)."""
    floor = 0
    if last_event_id is not None and last_event_id.startswith(EVENT):
        body = last_event_id[len(EVENT) :]
        # ids this process made are below its last one: no need to parse them
        if body > _source.last_text and len(body) == ULID_LENGTH and _is_b32(body):
            floor = _unb32(body)
    return EVENT + _source.next_text(floor)


class EventIds:
    """Event ids for one batch: drawn as a block, each above every run's last event id.

    Cheaper than :func:`event_id_after` per event (one clock read and one lock per batch).
    Consecutive ids share all but their last few digits: the shared head is spelled once
    per 2**20 ids, the last four digits per id.
    """

    __slots__ = ("_head", "_high", "_left", "_next")

    def __init__(self, count: int, last_ids: Iterable[str | None]) -> None:
        floor = 0
        highest = max((i for i in last_ids if i is not None), default=None)
        if highest is not None and highest.startswith(EVENT):
            body = highest[len(EVENT) :]
            if body > _source.last_text and len(body) == ULID_LENGTH and _is_b32(body):
                floor = _unb32(body)
        self._next = _source.reserve(max(count, 1), floor)
        self._left = max(count, 1)
        self._high = -1
        self._head = ""

    def __call__(self) -> str:
        """The next id of the block (a new block if this one is used up)."""
        if self._left == 0:
            self._next = _source.reserve(16, self._next)
            self._left = 16
        value = self._next
        self._next += 1
        self._left -= 1
        high = value >> 20
        if high != self._high:  # the 22 leading digits: bits 20 and up
            self._high = high
            self._head = EVENT + _ulid_text(value)[:22]
        pairs = _PAIRS
        return self._head + pairs[value >> 10 & 1023] + pairs[value & 1023]


def _is_b32(text: str) -> bool:
    return all(c in _DECODE for c in text)


def ulid_time(identifier: str) -> datetime | None:
    """The creation time encoded in a prefixed ULID, or None if it is not one."""
    body = identifier.partition("_")[2]
    if len(body) < 10 or not _is_b32(body[:10]):
        return None
    millis = _unb32(body[:10])
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def command_id(
    prefix: str, run_id: str, created_at: datetime, generation: int, position: int
) -> str:
    """The id of the durable call at ``position`` of rerun ``generation`` of a run.

    Deterministic (same inputs, same id), sortable by time, generation and position within a
    run, and unique across runs for all practical purposes (64 bits of the run id's hash).
    """
    if not 0 <= generation < 1 << 15 or not 0 <= position < 1 << 35:
        raise ValueError(f"generation {generation} or position {position} out of range")
    return prefix + _run_part(run_id, created_at) + _b32(generation, 3) + _b32(position, 7)


@lru_cache(maxsize=4096)
def _run_part(run_id: str, created_at: datetime) -> str:
    """The part of a call id that is the same for every call of a run (a run makes many)."""
    millis = int(created_at.timestamp() * 1000)
    digest = int.from_bytes(hashlib.blake2b(run_id.encode(), digest_size=8).digest(), "big")
    return _b32(millis, 10) + _b32(digest, 13)


def stream_id(run_id: str, namespace: str | None) -> str:
    """The id of a run's stream: ``strm_`` and a digest of the run id and namespace."""
    key = f"{run_id}\x00{namespace or ''}".encode()
    digest = int.from_bytes(hashlib.blake2b(key, digest_size=16).digest(), "big")
    return STREAM + _b32(digest >> 2, ULID_LENGTH)
