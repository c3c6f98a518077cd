"""``Runtime.annotations``: attach annotations to runs and list them with filters.

Also the deprecated ``metadata=`` of ``start()``: a run's metadata is listed as virtual
``legacy.metadata.<key>`` rows until the run has any persisted ``legacy.metadata.*`` row;
:meth:`Annotations.migrate_legacy_metadata` writes those rows for every run, idempotently.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import EllipsisType
from typing import TYPE_CHECKING, Any

import msgspec

from conventions import Actor
from persistence import AnnotationFilter, NewAnnotation, codec
from persistence import AnnotationRecord as StoredAnnotation
from persistence.records import AttachAnnotations

from .api import annotation_rows

if TYPE_CHECKING:
    from .runtime import Runtime

LEGACY_PREFIX = "legacy.metadata."


class AnnotationRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An annotation as ``annotations.list`` returns it (value and payload decoded)."""

    id: str
    run_id: str
    step_id: str | None
    attempt: int
    scope: str
    scope_id: str | None
    actor_kind: str | None
    actor_id: str | None
    actor_version: str | None
    key: str
    value: Any
    payload: Any
    idempotency_key: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: StoredAnnotation) -> AnnotationRecord:
        return cls(
            id=row.id,
            run_id=row.run_id,
            step_id=row.step_id,
            attempt=row.attempt,
            scope=row.scope,
            scope_id=row.scope_id,
            actor_kind=row.actor_kind,
            actor_id=row.actor_id,
            actor_version=row.actor_version,
            key=row.key,
            value=codec.decode(row.value, where=f"annotation {row.key!r}"),
            payload=None if row.payload is None else codec.decode(row.payload),
            idempotency_key=row.idempotency_key,
            created_at=row.created_at,
        )


Rows = list[AnnotationRecord]


class Annotations:
    """Annotations of a runtime's store (``rt.annotations``)."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def attach(
        self,
        run_id: str,
        attributes: Mapping[str, Any],
        *,
        actor: Actor | None = None,
        scope: str = "run",
        scope_id: str | None = None,
        attempt: int | None = None,
        payload: Any = None,
        idempotency_key: str | None = None,
        emit_event: bool = False,
    ) -> Rows:
        """Attach annotations to a run (any status); returns the rows written.

        ``RunNotFoundError`` for an unknown run; ``SerializationError`` (nothing written) for a
        value that cannot be encoded. ``None`` values are skipped; a repeated
        ``(key, idempotency_key)`` writes nothing the second time. ``attempt`` defaults to the
        run's current rerun generation.
        """
        rows = annotation_rows(None, None, attributes, actor, payload, idempotency_key, emit_event)
        if attempt is None:
            attempt = (await self._runtime.store.get_run(run_id)).generation
        scoped = tuple(
            msgspec.structs.replace(row, scope=scope, scope_id=scope_id, attempt=attempt)
            for row in rows
        )
        return await self._write(run_id, scoped)

    async def _write(self, run_id: str, rows: tuple[NewAnnotation, ...]) -> Rows:
        result = await self._runtime.store.create_batch([AttachAnnotations(run_id, rows)])
        outcome = result.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return [AnnotationRecord.of(row) for row in result.annotations[0]]

    async def list(
        self,
        run_id: str,
        *,
        key: str | None = None,
        key_prefix: str | None = None,
        scope: str | None = None,
        scope_id: str | EllipsisType | None = ...,
        actor_id: str | None = None,
        actor_kind: str | None = None,
        attempt: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> Rows:
        """A run's annotations by creation time then id, filtered (all filters AND-ed).

        ``key`` wins over ``key_prefix``; ``scope_id=None`` matches rows without one;
        ``since``/``until`` are inclusive.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        filters = AnnotationFilter(
            key=key,
            key_prefix=None if key is not None else key_prefix,
            scope=scope,
            scope_id=None if isinstance(scope_id, EllipsisType) else scope_id,
            match_scope_id=not isinstance(scope_id, EllipsisType),
            actor_id=actor_id,
            actor_kind=actor_kind,
            attempt=attempt,
            since=since,
            until=until,
            limit=limit,
        )
        store = self._runtime.store
        rows = [AnnotationRecord.of(r) for r in await store.list_annotations(run_id, filters)]
        if _could_be_legacy(filters):
            rows = await self._with_legacy(run_id, filters, rows)
        return rows

    async def _with_legacy(self, run_id: str, filters: AnnotationFilter, rows: Rows) -> Rows:
        """Add the virtual rows of the deprecated metadata, while no persisted one exists."""
        store = self._runtime.store
        persisted = await store.list_annotations(
            run_id, AnnotationFilter(key_prefix=LEGACY_PREFIX, limit=1)
        )
        if persisted:
            return rows
        run = await store.get_run(run_id)
        if run.metadata is None:
            return rows
        metadata = codec.decode(run.metadata)
        if not isinstance(metadata, dict):
            return rows
        virtual = []
        for name, value in metadata.items():
            key = f"{LEGACY_PREFIX}{name}"
            if filters.key is not None and key != filters.key:
                continue
            if filters.key_prefix is not None and not key.startswith(filters.key_prefix):
                continue
            if (filters.since is not None and run.created_at < filters.since) or (
                filters.until is not None and run.created_at > filters.until
            ):
                continue
            virtual.append(
                AnnotationRecord(
                    id=f"synthesized:{run_id}:{name}",
                    run_id=run_id,
                    step_id=None,
                    attempt=0,
                    scope="run",
                    scope_id=None,
                    actor_kind=None,
                    actor_id=None,
                    actor_version=None,
                    key=key,
                    value=value,
                    payload=None,
                    idempotency_key=None,
                    created_at=run.created_at,
                )
            )
        merged = sorted([*rows, *virtual], key=lambda r: (r.created_at, r.id))
        return merged[: filters.limit]

    async def migrate_legacy_metadata(self) -> int:
        """Write every run's deprecated metadata as persisted ``legacy.metadata.*`` rows.

        Idempotent: each key is written once (keyed by its name). Returns the number of runs
        that got rows. After this the virtual rows are no longer synthesized.
        """
        store = self._runtime.store
        migrated = 0
        cursor = None
        while True:
            page = await store.list_runs(limit=500, cursor=cursor)
            for run in page.items:
                if run.metadata is None:
                    continue
                metadata = codec.decode(run.metadata)
                if not isinstance(metadata, dict) or not metadata:
                    continue
                rows = tuple(
                    NewAnnotation(
                        key=f"{LEGACY_PREFIX}{name}",
                        value=codec.encode(value, where=f"metadata {name!r}"),
                        idempotency_key=f"{LEGACY_PREFIX}{name}",
                    )
                    for name, value in metadata.items()
                )
                if await self._write(run.run_id, rows):
                    migrated += 1
            if page.cursor is None:
                return migrated
            cursor = page.cursor


def _could_be_legacy(f: AnnotationFilter) -> bool:
    """Whether a filter could match a virtual ``legacy.metadata.*`` row."""
    if f.scope not in (None, "run") or (f.match_scope_id and f.scope_id is not None):
        return False
    if f.actor_id is not None or f.actor_kind is not None or f.attempt not in (None, 0):
        return False
    if f.key is not None:
        return f.key.startswith(LEGACY_PREFIX)
    if f.key_prefix is not None:
        return f.key_prefix.startswith(LEGACY_PREFIX) or LEGACY_PREFIX.startswith(f.key_prefix)
    return True
