"""A run's steps, attempts, sleeps and hooks on a time axis, drawn as plain text.

``lanes`` folds a run's events into one lane per step, sleep and hook, in the order the
workflow made them; ``draw`` scales them to the run's duration, one row each::

    0 ms                                              283.7 ms
    demo.fetch_order  |#                                       |  1 attempt, 3.5 ms
    demo.charge       |                                    x.# |  2 attempts, 4.1 ms
    sleep             |  ----------------------------          |  200.5 ms

``#`` is a step attempt that succeeded (or is running), ``x`` one that failed, ``.`` the wait
before a retry, ``-`` a sleep or a hook waiting, ``*`` a payload a hook received. Everything
here is pure: the caller passes the events and the time it is now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from persistence import Event
from persistence.events import TERMINAL_RUN_EVENTS as RUN_ENDS

OPEN = frozenset({"pending", "running", "retrying", "sleeping", "open"})


@dataclass
class Span:
    """A stretch of a lane: ``#`` an attempt, ``x`` a failed one, ``.`` a retry's wait,
    ``-`` waiting (a sleep, a hook); ``end`` None while it goes on."""

    mark: str
    start: datetime
    end: datetime | None = None


@dataclass
class Attempt:
    """One attempt of a step: its number, when it ran, how it ended."""

    number: int
    started_at: datetime
    ended_at: datetime | None = None
    outcome: str = "running"  # running, completed, retried, failed, abandoned
    error: str | None = None
    retry_at: datetime | None = None


@dataclass
class Lane:
    """One step, sleep or hook of a run."""

    kind: str  # step, sleep, hook
    id: str
    label: str
    start: datetime
    spans: list[Span] = field(default_factory=list)
    marks: list[datetime] = field(default_factory=list)  # payloads a hook received
    attempts: list[Attempt] = field(default_factory=list)
    status: str = "running"
    generation: int = 0

    def close(self, at: datetime) -> None:
        """End what is still open at ``at`` (the run ended)."""
        for span in self.spans:
            if span.end is None:
                span.end = at
        for attempt in self.attempts:
            if attempt.ended_at is None:
                attempt.ended_at, attempt.outcome = at, "abandoned"

    def as_json(self) -> dict[str, Any]:
        """The lane as JSON-ready builtins."""
        item: dict[str, Any] = {
            "kind": self.kind,
            "id": self.id,
            "name": self.label,
            "status": self.status,
            "started_at": self.start.isoformat(),
            "ended_at": _iso(self.spans[-1].end if self.spans else None),
        }
        if self.kind == "step":
            item["generation"] = self.generation
            item["attempts"] = [
                {
                    "attempt": a.number,
                    "started_at": a.started_at.isoformat(),
                    "ended_at": _iso(a.ended_at),
                    "outcome": a.outcome,
                    "error": a.error,
                    "retry_at": _iso(a.retry_at),
                }
                for a in self.attempts
            ]
        if self.kind == "hook":
            item["payloads_at"] = [m.isoformat() for m in self.marks]
        return item


def lanes(events: Sequence[Event]) -> list[Lane]:
    """The steps, sleeps and hooks of a run, in the order the workflow made them."""
    by_id: dict[str, Lane] = {}
    order: list[Lane] = []
    for event in events:
        at, data, kind = event.created_at, event.data, event.event_type
        if kind in RUN_ENDS:
            for lane in order:
                lane.close(at)
                if lane.status in OPEN:
                    lane.status = "released" if lane.kind == "hook" else "ended with the run"
            continue
        cid = event.correlation_id or ""
        if kind in ("step_created", "wait_created", "hook_created", "hook_conflict"):
            lane = _lane(kind, cid, data, at)
            by_id[cid] = lane
            order.append(lane)
            continue
        lane_or_none = by_id.get(cid)
        if lane_or_none is not None:
            _apply(lane_or_none, kind, data, at)
    return order


def _lane(kind: str, cid: str, data: Any, at: datetime) -> Lane:
    generation = int(getattr(data, "generation", 0))
    if kind == "step_created":
        label = str(data.step_name) + (f" (generation {generation})" if generation else "")
        return Lane("step", cid, label, at, generation=generation, status="pending")
    if kind == "wait_created":
        return Lane("sleep", cid, "sleep", at, [Span("-", at)], status="sleeping")
    if kind == "hook_conflict":
        label = f"hook {data.token} (held by run {data.conflicting_run_id})"
        return Lane("hook", cid, label, at, status="conflict")
    return Lane("hook", cid, f"hook {data.token}", at, [Span("-", at)], status="open")


def _apply(lane: Lane, kind: str, data: Any, at: datetime) -> None:
    """Fold one event of a step, sleep or hook into its lane."""
    if kind == "step_started":
        if lane.spans and lane.spans[-1].end is None:  # a retry's wait, or an attempt
            lane.spans[-1].end = at  # that never reported (its process died)
            if lane.spans[-1].mark == "#":
                lane.spans[-1].mark = "x"
        if lane.attempts and lane.attempts[-1].ended_at is None:
            lane.attempts[-1].ended_at, lane.attempts[-1].outcome = at, "abandoned"
        lane.spans.append(Span("#", at))
        lane.attempts.append(Attempt(len(lane.attempts) + 1, at))
        lane.status = "running"
    elif kind in ("step_completed", "step_retrying", "step_failed"):
        outcome = {"step_completed": "completed", "step_retrying": "retried"}.get(kind, "failed")
        error = getattr(data, "error", None)
        if lane.attempts and lane.attempts[-1].ended_at is None:
            attempt = lane.attempts[-1]
            attempt.ended_at, attempt.outcome = at, outcome
            attempt.error = f"{error.type}: {error.message}" if error is not None else None
            attempt.retry_at = getattr(data, "retry_after", None)
            if lane.spans and lane.spans[-1].end is None:
                lane.spans[-1].end = at
                lane.spans[-1].mark = "#" if outcome == "completed" else "x"
        lane.status = "retrying" if outcome == "retried" else outcome
        if outcome == "retried":
            lane.spans.append(Span(".", at))
    elif kind == "wait_completed":
        lane.close(at)
        lane.status = "completed"
    elif kind == "hook_received":
        lane.marks.append(at)
    elif kind == "hook_disposed":
        lane.close(at)
        lane.status = "disposed"


def draw(events: Sequence[Event], now: datetime, width: int = 100) -> str:
    """The run's lanes on a time axis scaled to its duration, in about ``width`` columns."""
    found = lanes(events)
    if not events:
        return "(no events)"
    start = events[0].created_at
    ended = _ended(events)
    end = events[-1].created_at if ended else max(now, events[-1].created_at)
    total = (end - start).total_seconds()
    notes = [_note(lane, end) for lane in found]
    label_width = min(max([len(lane.label) for lane in found] + [4]), 40)
    note_width = max([len(n) for n in notes] + [0])
    bar = max(20, width - label_width - note_width - 6)
    tail = _duration(total) + ("" if ended else " (now)")
    lines = [" " * (label_width + 3) + "0" + tail.rjust(bar - 1)]
    for lane, note in zip(found, notes, strict=True):
        cells = [" "] * bar
        for span in sorted(lane.spans, key=lambda s: "-.#x".index(s.mark)):  # failures on top
            first = _column(span.start, start, total, bar)
            last = _column(span.end or end, start, total, bar)
            for column in range(first, last + 1):
                cells[column] = span.mark
        for mark in lane.marks:
            cells[_column(mark, start, total, bar)] = "*"
        label = _fit(lane.label, label_width)
        lines.append(f"{label:<{label_width}}  |{''.join(cells)}|  {note}".rstrip())
    if not found:
        lines.append("(no steps, sleeps or hooks)")
    return "\n".join(lines)


def failed_attempts(events: Sequence[Event]) -> list[str]:
    """One line per step attempt that failed: the step, the attempt, the error, the retry."""
    lines = []
    for lane in lanes(events):
        for attempt in lane.attempts:
            if attempt.outcome not in ("retried", "failed"):
                continue
            after = ""
            if attempt.outcome == "retried" and attempt.retry_at is not None and attempt.ended_at:
                wait = (attempt.retry_at - attempt.ended_at).total_seconds()
                after = f" (retried after {_duration(max(wait, 0.0))})"
            elif attempt.outcome == "failed":
                after = " (failed for good)"
            lines.append(f"{lane.label} attempt {attempt.number}: {attempt.error}{after}")
    return lines


def _ended(events: Sequence[Event]) -> bool:
    """Whether the run's last run-level event ends it (a rerun reopens it)."""
    for event in reversed(events):
        if event.event_type in RUN_ENDS:
            return True
        if event.event_type == "run_rerun":
            return False
    return False


def _note(lane: Lane, end: datetime) -> str:
    last = lane.spans[-1].end if lane.spans else None
    took = _duration(((last or end) - lane.start).total_seconds())
    if lane.kind == "step":
        count = len(lane.attempts)
        attempts = f"{count} attempt{'' if count == 1 else 's'}"
        state = {"completed": "", "pending": "pending, "}.get(lane.status, f"{lane.status}, ")
        return f"{state}{attempts}, {took}"
    if lane.kind == "hook":
        count = len(lane.marks)
        payloads = f"{count} payload{'' if count == 1 else 's'}"
        return f"{payloads}, {lane.status}" if lane.status in OPEN | {"conflict"} else payloads
    return took if lane.status == "completed" else f"{lane.status}, {took}"


def _column(at: datetime, start: datetime, total: float, bar: int) -> int:
    if total <= 0:
        return 0
    share = (at - start).total_seconds() / total
    return min(bar - 1, max(0, int(share * bar)))


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def _duration(seconds: float) -> str:
    """``12.3 ms``, ``4.56 s``, ``3m 20s``, ``2h 5m``, ``3d 4h``."""
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()
