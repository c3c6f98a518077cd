"""The SQLite reads behind ``SqliteStore.dormant_runs`` (run on the reader thread)."""

from __future__ import annotations

import sqlite3
from typing import Final

from .dormant import Dormant, judge
from .rows import entity_from_body
from .state import Hook, Wait

PART: Final = 500
"""Run ids per round of queries (SQLite allows 32,766 parameters; each query repeats them)."""

# The last event of each running run: SQLite takes the bare column from the row of max().
_LAST: Final = """
SELECT e.run_id, e.event_type, max(e.event_id) FROM events e
WHERE e.run_id IN (SELECT run_id FROM runs WHERE run_id IN ({marks}) AND status = 'running')
GROUP BY e.run_id
"""
_BUSY: Final = """
SELECT run_id FROM steps WHERE run_id IN ({marks}) AND status IN ('pending', 'running')
UNION
SELECT run_id FROM stream_chunks WHERE run_id IN ({marks})
GROUP BY run_id, stream HAVING max(eof) = 0
"""
# ``+status``: look the runs up by primary key, not through the index of every waiting wait.
_WAITS: Final = "SELECT run_id, body FROM waits WHERE run_id IN ({marks}) AND +status = 'waiting'"
_HOOKS: Final = "SELECT run_id, body FROM hooks WHERE run_id IN ({marks}) AND status = 'active'"


def dormant_runs(conn: sqlite3.Connection, run_ids: list[str]) -> dict[str, Dormant]:
    """Of ``run_ids``, the runs that only wait (see :mod:`persistence.dormant`)."""
    out: dict[str, Dormant] = {}
    unique = list(dict.fromkeys(run_ids))
    for start in range(0, len(unique), PART):
        part = unique[start : start + PART]
        marks = ",".join("?" * len(part))
        last = {r: kind for r, kind, _ in conn.execute(_LAST.format(marks=marks), part)}
        if not last:
            continue
        busy = {r for (r,) in conn.execute(_BUSY.format(marks=marks), part + part)}
        waits = [
            entity_from_body(Wait, body, r)
            for r, body in conn.execute(_WAITS.format(marks=marks), part)
        ]
        hooks = [
            entity_from_body(Hook, body, r)
            for r, body in conn.execute(_HOOKS.format(marks=marks), part)
        ]
        out.update(judge(last, busy, waits, hooks))
    return out
