"""Records the stores return besides events and entities: annotations, stream chunks, pages."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

import msgspec

from .events import Event, NewAnnotation

T = TypeVar("T")


class AnnotationRecord(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One stored annotation; ``value`` and ``payload`` are encoded bytes."""

    id: str
    run_id: str
    key: str
    value: bytes
    scope: str
    created_at: datetime
    scope_id: str | None = None
    step_id: str | None = None
    attempt: int = 0
    actor_kind: str | None = None
    actor_id: str | None = None
    actor_version: str | None = None
    payload: bytes | None = None
    idempotency_key: str | None = None


class AttachAnnotations(msgspec.Struct, frozen=True, gc=False):
    """A write request of annotations on a run, with no event of their own.

    ``if_last_event_id`` and ``fence`` make it conditional, as on ``NewEvent``.
    """

    run_id: str
    annotations: tuple[NewAnnotation, ...]
    if_last_event_id: str | None = None
    fence: int | None = None


class Lease(msgspec.Struct, frozen=True, gc=False):
    """A run's lease as its holder got it: the ``epoch`` moves each time the lease passes to
    another owner, so a write fenced with an older epoch comes from a stale owner."""

    run_id: str
    epoch: int


class WorkerInfo(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A live worker as it announced itself: where it runs and which workflows it hosts."""

    worker_id: str
    host: str
    pid: int
    workflows: tuple[str, ...]
    seen_at: datetime
    expires_at: datetime


class AnnotationFilter(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """The filters of ``list_annotations``; all AND-ed, ``key`` wins over ``key_prefix``."""

    key: str | None = None
    key_prefix: str | None = None
    scope: str | None = None
    scope_id: str | None = None
    match_scope_id: bool = False
    actor_id: str | None = None
    actor_kind: str | None = None
    attempt: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 1000


class StreamChunk(msgspec.Struct, frozen=True, gc=False):
    """One chunk of a run's stream. ``eof`` marks the close (its data is empty)."""

    run_id: str
    stream: str
    index: int
    data: bytes
    eof: bool = False


class StreamInfo(msgspec.Struct, frozen=True, gc=False):
    """A stream's last data index (-1 when empty) and whether it was closed."""

    tail_index: int
    closed: bool


class Page(msgspec.Struct, Generic[T], frozen=True):
    """A page of a listing, with the cursor to pass for the next page (None at the end)."""

    items: list[T]
    cursor: str | None


class CommittedEvent(msgspec.Struct, frozen=True, gc=False):
    """An event with its position in the store's commit order (for subscribers)."""

    position: int
    event: Event


class BatchResult(msgspec.Struct, frozen=True):
    """What ``create_batch`` did with each request, in request order.

    ``outcomes[i]`` is the accepted event (for an annotation-only request, None) or the error
    that refused it. ``annotations[i]`` lists the annotation rows request ``i`` inserted and
    ``emitted[i]`` the ``annotation_created`` events written for them (in log order, after
    the request's own event).
    """

    outcomes: list[Event | BaseException | None]
    annotations: list[list[AnnotationRecord]]
    emitted: list[list[Event]] = []
    leases: dict[str, int] = {}
    """The leases taken by the batch's ``claim`` requests: run id -> epoch."""

    def accepted(self, index: int) -> bool:
        return not isinstance(self.outcomes[index], BaseException)
