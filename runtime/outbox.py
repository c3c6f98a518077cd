"""The event log as an outbox: subscribers follow committed events from a durable cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from persistence import Event, Store
from persistence import events as ev
from persistence.notify import EVENTS_TOPIC, FOREIGN_TOPIC


async def subscribe(
    store: Store, name: str, types: Sequence[str] | None, poll: float
) -> AsyncIterator[Event]:
    """Committed events of all runs in commit order, at least once, from cursor ``name``.

    An event is acknowledged (the cursor saved) when the consumer asks for the next one, so
    a consumer that stops gets again only what it had not acknowledged.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a subscriber needs a non-empty name, got {name!r}")
    unknown = set(types or ()) - set(ev.EVENT_TYPES)
    if unknown:
        raise ValueError(f"unknown event types {sorted(unknown)}; known: {list(ev.EVENT_TYPES)}")
    position = await store.get_cursor(name)
    topics = (EVENTS_TOPIC, FOREIGN_TOPIC)
    while True:
        seen = {topic: store.notifier.version(topic) for topic in topics}
        batch = await store.read_committed(position, limit=500, types=types)
        for item in batch:
            yield item.event
            position = item.position
            await store.save_cursor(name, position)
        if not batch:
            await store.notifier.wait_any(seen, poll)
