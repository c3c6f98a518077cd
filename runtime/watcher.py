"""Following the store's log for what other writers wrote to this worker's runs.

Other processes (a client cancelling, a hook payload, a rerun from the command line) and
other runtimes sharing a store object write to runs this worker executes. The watcher reads
the committed log from where it started, woken by the store's foreign-commit notifications
(LISTEN/NOTIFY on PostgreSQL, in-process on memory) or by a poll (SQLite), and tells the
runs' actors. It reads every watched event after its position each time (never skipping a
read by counting commits: a count races with the commits it counts); events this worker
already has (it wrote or read them) are recognised by their id and not routed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from persistence import Store
from persistence.notify import FOREIGN_TOPIC, INPUT_TYPES

from .router import Router

log = logging.getLogger("actorflow.runtime")

WATCHED = tuple(sorted(INPUT_TYPES))
"""The event types another writer may append to a run this worker executes."""

_PAGE = 1000


class LogWatcher:
    """Routes other writers' events to the actors of the runs they concern."""

    def __init__(self, store: Store, router: Router, poll: Callable[[], float]) -> None:
        self._store = store
        self._router = router
        self._poll = poll

    async def run(self, position: int) -> None:
        """Follow the log from ``position`` until cancelled."""
        store = self._store
        while True:
            seen = store.notifier.version(FOREIGN_TOPIC)
            try:
                position = await self._route(position)
            except Exception as error:  # a store hiccup must not stop the runtime
                log.warning("could not follow the store's log: %s", error)
            await store.notifier.wait(FOREIGN_TOPIC, seen, self._poll())

    async def _route(self, position: int) -> int:
        """Tell the actors of runs that got events they did not write; the new position.

        The position moves to the end of the log as it was before the read, even when no
        event of a watched type came (otherwise each read would scan the same events again)."""
        last = await self._store.last_position()
        while True:
            committed = await self._store.read_committed(position, limit=_PAGE, types=WATCHED)
            for item in committed:
                position = item.position
                event = item.event
                if not self._router.knows(event.run_id, event.event_id):
                    self._router.notify(event.run_id)
            if len(committed) < _PAGE:
                return max(position, last)
