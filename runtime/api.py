"""The functions workflow and step code call: sleep, hooks, annotate, clocks, metadata."""

from __future__ import annotations

import hashlib
import random as _random
import uuid as _uuid
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, overload

from conventions import Actor, TypedKey
from conventions.namespaces import STANDARD_KEYS_BY_NAME
from persistence import NewAnnotation, codec

from .context import (
    StepContext,
    StepMetadata,
    WorkflowMetadata,
    current_program,
    current_step,
    plain_step,
    runtime_context,
)
from .durations import resolve_instant
from .errors import AnnotationTypeError
from .hooks import WorkflowHook

T = TypeVar("T")


class OutsideWorkflowError(RuntimeError):
    """A workflow-only function was called outside workflow code (or a step-only one
    outside a step)."""


def _program_or_fail(what: str) -> Any:
    program = current_program()
    if program is None:
        raise OutsideWorkflowError(f"{what} can only be called in workflow code")
    return program


def sleep(duration: float | int | timedelta | datetime | str) -> Coroutine[Any, Any, None]:
    """Sleep durably: seconds, a timedelta, an instant (aware datetime) or ``"1h30m"``.

    The run may be unloaded while it sleeps and resumes on time, in this process or another.
    ``asyncio.sleep`` in workflow code does the same.
    """
    program = _program_or_fail("sleep()")
    return program.sleep_until(resolve_instant(duration, program.now()))  # type: ignore[no-any-return]


def create_hook(token: str | None = None, metadata: Any = None) -> WorkflowHook:
    """A hook through which outside code (``Runtime.resume_hook``) sends payloads to the run.

    ``token`` defaults to a random one; it must be unique among live hooks in the store.
    """
    return _program_or_fail("create_hook()").create_hook(token, metadata)  # type: ignore[no-any-return]


def now() -> datetime:
    """The current time: the workflow clock in workflow code (deterministic); in a step, the
    clock of the runtime running it (a test's virtual clock); else UTC now."""
    program = current_program()
    if program is not None:
        return program.now()
    clock = getattr(runtime_context.get(), "clock", None)
    return clock.now() if clock is not None else datetime.now(UTC)


def random() -> float:
    """A random float in [0, 1): seeded by the run in workflow code, so replays agree."""
    program = current_program()
    return program.random() if program is not None else _random.random()


def uuid4() -> _uuid.UUID:
    """A random UUID: drawn from the run's seeded generator in workflow code."""
    program = current_program()
    return program.uuid4() if program is not None else _uuid.uuid4()


def step_metadata() -> StepMetadata:
    """The running step's name, id, attempt (from 1) and start time.

    In a step called as a plain function (a unit test, a script), the metadata of that call:
    attempt 1 and a fresh id ``<step name>@step_...``, new for every call.
    """
    step = current_step()
    if step is not None:
        return step.step
    plain = plain_step.get()
    if plain is None or current_program() is not None:
        raise OutsideWorkflowError("step_metadata() can only be called in a step")
    return plain


def workflow_metadata() -> WorkflowMetadata:
    """The workflow name, run id and start time, in workflow code or in a step."""
    program = current_program()
    if program is not None:
        return WorkflowMetadata(program.workflow.name, program.run.run_id, program.started_at)
    step = current_step()
    if step is None:
        raise OutsideWorkflowError("workflow_metadata() can only be called in a workflow or a step")
    return step.workflow


def current_runtime() -> Any:
    """The Runtime running the current step (so a step can start runs)."""
    runtime = runtime_context.get()
    if runtime is None:
        raise OutsideWorkflowError(
            "current_runtime() can only be called in a step of a running Runtime"
        )
    return runtime


@overload
def annotate(
    key: TypedKey[T],
    value: T | None,
    /,
    *,
    actor: Actor | None = None,
    payload: Any = None,
    idempotency_key: str | None = None,
    emit_event: bool = False,
) -> None: ...


@overload
def annotate(
    key: str,
    value: Any,
    /,
    *,
    actor: Actor | None = None,
    payload: Any = None,
    idempotency_key: str | None = None,
    emit_event: bool = False,
) -> None: ...


@overload
def annotate(
    *,
    attributes: Mapping[str, Any],
    actor: Actor | None = None,
    payload: Any = None,
    idempotency_key: str | None = None,
    emit_event: bool = False,
) -> None: ...


def annotate(
    key: TypedKey[Any] | str | None = None,
    value: Any = None,
    /,
    *,
    attributes: Mapping[str, Any] | None = None,
    actor: Actor | None = None,
    payload: Any = None,
    idempotency_key: str | None = None,
    emit_event: bool = False,
) -> None:
    """Record provenance key/values on the run (workflow code) or the step (a step body).

    In a step they are written with the step's completion (or failure), atomically; in workflow
    code with the run's next batch, once. ``None`` values are skipped. Values that cannot be
    encoded raise ``SerializationError`` and nothing of the call is recorded.
    """
    try:
        rows = annotation_rows(key, value, attributes, actor, payload, idempotency_key, emit_event)
    except TypeError as error:  # a programmer error: no retry can fix it
        raise AnnotationTypeError(str(error)) from None
    program = current_program()
    if program is not None:
        program.annotate(rows)
        return
    step = current_step()
    if step is None:
        raise OutsideWorkflowError("annotate() can only be called in a workflow or a step")
    for row in rows:
        scoped = NewAnnotation(
            key=row.key,
            value=row.value,
            scope="step",
            scope_id=step.step.step_name,
            step_id=step.step.step_id,
            attempt=step.generation,
            actor_kind=row.actor_kind,
            actor_id=row.actor_id,
            actor_version=row.actor_version,
            payload=row.payload,
            idempotency_key=row.idempotency_key or _attempt_key(step, row),
            emit_event=row.emit_event,
        )
        step.annotations.append(scoped)
        if step.on_annotation is not None:
            step.on_annotation(scoped, codec.decode(scoped.value))


def _attempt_key(step: StepContext, row: NewAnnotation) -> str:
    """The idempotency key of an annotation made in a step without one: the same for the same
    annotation (key, value, payload, actor) made again by a later attempt of the step, so a
    retry does not write again what a failed attempt wrote. The n-th equal annotation of an
    attempt gets the n-th key."""
    digest = hashlib.sha256()
    for part in (row.key, row.value, row.payload, row.actor_kind, row.actor_id, row.actor_version):
        data = part.encode() if isinstance(part, str) else (part or b"")
        digest.update(len(data).to_bytes(8, "big") + data)
    seen = digest.hexdigest()[:24]
    step.equal_notes[seen] = nth = step.equal_notes.get(seen, 0) + 1
    return f"actorflow.step:{step.step.step_id}:{seen}:{nth}"


def annotation_rows(
    key: TypedKey[Any] | str | None,
    value: Any,
    attributes: Mapping[str, Any] | None,
    actor: Actor | None,
    payload: Any,
    idempotency_key: str | None,
    emit_event: bool,
) -> list[NewAnnotation]:
    """Validate and encode one ``annotate`` call into rows (all or nothing)."""
    pairs: list[tuple[str, Any]] = []
    if key is not None:
        if attributes is not None:
            raise TypeError("annotate() takes a key and a value, or attributes=, not both")
        if isinstance(key, TypedKey):
            if not key.accepts(value):
                raise TypeError(f"annotation {key.key!r} takes {key.value_type!r}, got {value!r}")
            pairs.append((key.key, value))
        elif isinstance(key, str):
            pairs.append((_checked_key(key, value), value))
        else:
            raise TypeError(f"an annotation key is a string or a TypedKey, got {key!r}")
    elif attributes is not None:
        pairs.extend((_checked_key(k, v), v) for k, v in attributes.items())
    else:
        raise TypeError("annotate() needs a key and a value, or attributes=")
    encoded_payload = None if payload is None else codec.encode(payload, where="annotation payload")
    rows = []
    for name, item in pairs:
        if item is None:
            continue
        rows.append(
            NewAnnotation(
                key=name,
                value=codec.encode(item, where=f"annotation {name!r}"),
                actor_kind=actor.kind if actor else None,
                actor_id=actor.id if actor else None,
                actor_version=actor.version if actor else None,
                payload=encoded_payload,
                idempotency_key=idempotency_key,
                emit_event=emit_event,
            )
        )
    return rows


def _checked_key(key: str, value: Any) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"an annotation key is a non-empty string, got {key!r}")
    standard = STANDARD_KEYS_BY_NAME.get(key)
    if standard is not None and not standard.accepts(value):
        raise TypeError(f"annotation {key!r} takes {standard.value_type!r}, got {value!r}")
    return key
