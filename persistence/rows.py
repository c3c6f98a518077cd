"""Row encoding shared by the SQL stores: entities as msgpack bodies, events as columns.

An entity row keeps the columns a store queries by (ids, status, times) and the frozen entity
as a msgpack ``body``, so reading a row back is one decode and the SQL stores cannot drift from
the entity definitions; a run's body leaves out its input and metadata and a step's its input,
read from their ``run_created`` and ``step_created`` events. Anything that fails to decode is
``CorruptedDataError`` naming the run and event, never a bare msgspec error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import msgspec

from .errors import CorruptedDataError
from .events import DATA_TYPES, Event, RunCreated, StepCreated, decode_data
from .records import AnnotationRecord
from .state import Hook, Run, Step, Wait

E = TypeVar("E", Run, Step, Wait, Hook)

_encoder = msgspec.msgpack.Encoder()
_decoders: dict[type, msgspec.msgpack.Decoder[Any]] = {
    cls: msgspec.msgpack.Decoder(cls) for cls in (Run, Step, Wait, Hook)
}
_created_decoder = msgspec.msgpack.Decoder(RunCreated)
_step_created_decoder = msgspec.msgpack.Decoder(StepCreated)


def entity_body(entity: Run | Step | Wait | Hook) -> bytes:
    """The msgpack body of an entity row.

    A run's row leaves out its input and metadata, and a step's row its input: given when
    they were created and never changed, they are in the ``run_created`` and
    ``step_created`` events, and the rows are written again as the run and the step move
    (see :func:`run_from_row` and :func:`step_from_row`).
    """
    if type(entity) is Run:
        if entity.input or entity.metadata is not None:
            entity = msgspec.structs.replace(entity, input=b"", metadata=None)
    elif type(entity) is Step and entity.input:
        entity = msgspec.structs.replace(entity, input=b"")
    return _encoder.encode(entity)


RUN_CREATED_DATA: Final = (
    "(SELECT e.data FROM events e WHERE e.run_id = r.run_id ORDER BY e.event_id LIMIT 1)"
)
"""SQL (SQLite's and PostgreSQL's alike) for the data of the ``run_created`` event of the run
``r`` of a query, its first event: the ``created`` of :func:`run_from_row`."""


def run_from_row(body: bytes, created: bytes | None, run_id: str) -> Run:
    """A run from its row's ``body`` and the data of its first event, ``run_created``
    (``created``), which gives its input and metadata."""
    run = entity_from_body(Run, body, run_id)
    if created is None:  # no event: a row without a log is not a run's
        raise CorruptedDataError(run_id, None, "run row without its run_created event")
    try:
        data = _created_decoder.decode(created)
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as exc:
        raise CorruptedDataError(run_id, None, f"undecodable run_created data: {exc}") from None
    return msgspec.structs.replace(run, input=data.input, metadata=data.metadata)


def step_from_row(body: bytes, created: bytes | None, run_id: str) -> Step:
    """A step from its row's ``body`` and the data of its ``step_created`` event
    (``created``), which gives its input."""
    step = entity_from_body(Step, body, run_id)
    if created is None:
        raise CorruptedDataError(
            run_id, None, f"step {step.step_id!r} row without its step_created event"
        )
    try:
        data = _step_created_decoder.decode(created)
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as exc:
        raise CorruptedDataError(run_id, None, f"undecodable step_created data: {exc}") from None
    return msgspec.structs.replace(step, input=data.input)


def entity_from_body(kind: type[E], body: bytes, run_id: str) -> E:
    """Decode an entity row's body; a bad body is ``CorruptedDataError``."""
    try:
        entity = _decoders[kind].decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as exc:
        raise CorruptedDataError(
            run_id, None, f"unreadable {kind.__name__.lower()} row: {exc}"
        ) from None
    if not isinstance(entity, kind):
        raise CorruptedDataError(run_id, None, f"row is not a {kind.__name__.lower()}")
    return entity


def event_from_row(
    event_id: str,
    run_id: str,
    event_type: str,
    correlation_id: str | None,
    data: bytes,
    created_at: datetime,
    spec_version: int,
) -> Event:
    """Rebuild an event from its columns; unknown types and bad data are corruption."""
    if event_type not in DATA_TYPES:
        raise CorruptedDataError(run_id, event_id, f"unknown event type {event_type!r}")
    try:
        payload = decode_data(event_type, bytes(data))
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as exc:
        raise CorruptedDataError(
            run_id, event_id, f"undecodable {event_type} data: {exc}"
        ) from None
    return Event(event_id, run_id, event_type, correlation_id, payload, created_at, spec_version)


def micros(at: datetime) -> int:
    """A UTC datetime as integer microseconds since the epoch (SQLite's time columns)."""
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    """The inverse of :func:`micros`."""
    return datetime.fromtimestamp(value // 1_000_000, tz=UTC).replace(microsecond=value % 1_000_000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_annotation_decoder = msgspec.msgpack.Decoder(AnnotationRecord)


def annotation_body(row: AnnotationRecord) -> bytes:
    """The msgpack body of an annotation row."""
    return _encoder.encode(row)


def annotation_from_body(body: bytes, run_id: str) -> AnnotationRecord:
    """Decode an annotation row's body; a bad body is ``CorruptedDataError``."""
    try:
        return _annotation_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as exc:
        raise CorruptedDataError(run_id, None, f"unreadable annotation row: {exc}") from None
