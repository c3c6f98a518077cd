"""Events as the command line shows them in JSON: user values decoded, not msgpack bytes.

The values a run records (workflow and step inputs, outputs and results, hook payloads,
metadata) are msgpack; ``runs events --json`` shows them as the JSON of their decoded value
(as ``persistence.codec.decode`` gives it, without a target type). Other bytes (the run's
seed) stay base64, as msgspec encodes bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from persistence import Event, codec
from persistence.errors import SerializationError

VALUE_FIELDS = frozenset({"input", "output", "result", "payload", "metadata"})


def event_item(event: Event) -> dict[str, Any]:
    """``event`` as JSON-ready builtins, its recorded values decoded."""
    item: dict[str, Any] = msgspec.to_builtins(event, builtin_types=(bytes,))
    data: dict[str, Any] = item["data"]
    for field, value in data.items():
        if isinstance(value, bytes) and field in VALUE_FIELDS:
            data[field] = decoded(value, f"the {field} of event {event.event_id}")
    return item


def recorded(item: Any) -> Any:
    """The inverse of :func:`event_item` for one JSON event: its decoded values encoded again
    (what ``check_replay`` reads). A value that was not msgpack came out as base64 and goes
    back in as the string it is; a history of such a run cannot be replayed anyway."""
    if isinstance(item, dict) and isinstance(item.get("data"), dict):
        data = item["data"]
        for field in VALUE_FIELDS & data.keys():
            data[field] = codec.encode(data[field])
    return item


def events_json(events: Sequence[Event]) -> str:
    """A run's events as a JSON array, their recorded values decoded."""
    return msgspec.json.encode([event_item(e) for e in events]).decode()


def decoded(value: bytes, where: str) -> Any:
    """A recorded value, decoded; left as bytes (base64 in JSON) if it is not msgpack."""
    try:
        return codec.decode(value, where=where)
    except SerializationError:
        return value
