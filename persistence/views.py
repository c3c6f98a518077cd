"""Small pure helpers the stores share for reads: paging, status sets, annotation filters,
what holds a hook token."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from .records import AnnotationFilter, AnnotationRecord, Page
from .state import Hook, HookStatus, RunStatus

T = TypeVar("T")


def page_after(items: Sequence[T], limit: int | None, key: Callable[[T], str]) -> Page[T]:
    """The first ``limit`` items, with a cursor (the last key) if more remain."""
    if limit is not None and limit < 1:
        raise ValueError(f"a page limit is at least 1, got {limit}")
    if limit is None or len(items) <= limit:
        return Page(list(items), None)
    chosen = list(items[:limit])
    return Page(chosen, key(chosen[-1]))


def statuses(status: RunStatus | Sequence[RunStatus] | None) -> set[RunStatus] | None:
    """A status filter as a set (None: no filter)."""
    if status is None:
        return None
    if isinstance(status, str):
        return {RunStatus(status)}
    return {RunStatus(s) for s in status}


def annotation_matches(row: AnnotationRecord, f: AnnotationFilter) -> bool:
    """Whether a row passes every filter (``key`` wins over ``key_prefix``)."""
    if f.key is not None:
        if row.key != f.key:
            return False
    elif f.key_prefix is not None and not row.key.startswith(f.key_prefix):
        return False
    return (
        (f.scope is None or row.scope == f.scope)
        and (not f.match_scope_id or row.scope_id == f.scope_id)
        and (f.actor_id is None or row.actor_id == f.actor_id)
        and (f.actor_kind is None or row.actor_kind == f.actor_kind)
        and (f.attempt is None or row.attempt == f.attempt)
        and (f.since is None or row.created_at >= f.since)
        and (f.until is None or row.created_at <= f.until)
    )


def filter_annotations(
    rows: Iterable[AnnotationRecord], f: AnnotationFilter
) -> list[AnnotationRecord]:
    """Rows that pass ``f``, by creation time then id, at most ``f.limit``."""
    chosen = sorted(
        (r for r in rows if annotation_matches(r, f)), key=lambda r: (r.created_at, r.id)
    )
    return chosen[: f.limit]


def recorded_by(hooks: Iterable[Hook], idempotency_key: str) -> str | None:
    """The run of the first of the hooks that held a token to record a payload with
    ``idempotency_key``, or None (``Store.find_payload``)."""
    return next((hook.run_id for hook in hooks if idempotency_key in hook.keys), None)


def payload_target(hooks: Iterable[Hook], idempotency_key: str | None) -> Hook | str | None:
    """Of the hooks that held a token, the live one; else the run of the first that
    recorded a payload with ``idempotency_key``; else None (``Store.resolve_hook``)."""
    held = list(hooks)
    live = next((hook for hook in held if hook.status is HookStatus.ACTIVE), None)
    if live is not None or idempotency_key is None:
        return live
    return recorded_by(held, idempotency_key)
