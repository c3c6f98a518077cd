"""The PostgreSQL reads behind ``PostgresStore.dormant_runs``."""

from __future__ import annotations

from typing import Final

from ._pg_batch import Conn
from .dormant import Dormant, judge
from .rows import entity_from_body
from .state import Hook, Wait

_LAST: Final = """
SELECT DISTINCT ON (e.run_id) e.run_id, e.event_type FROM events e
JOIN runs r ON r.run_id = e.run_id AND r.status = 'running'
WHERE e.run_id = ANY($1::text[])
ORDER BY e.run_id, e.event_id DESC
"""
_BUSY: Final = """
SELECT run_id FROM steps WHERE run_id = ANY($1::text[]) AND status IN ('pending', 'running')
UNION
SELECT run_id FROM stream_chunks WHERE run_id = ANY($1::text[])
GROUP BY run_id, stream HAVING NOT bool_or(eof)
"""
_WAITS: Final = (
    "SELECT run_id, body FROM waits WHERE run_id = ANY($1::text[]) AND status = 'waiting'"
)
_HOOKS: Final = (
    "SELECT run_id, body FROM hooks WHERE run_id = ANY($1::text[]) AND status = 'active'"
)


async def dormant_runs(conn: Conn, run_ids: list[str]) -> dict[str, Dormant]:
    """Of ``run_ids``, the runs that only wait (see :mod:`persistence.dormant`)."""
    unique = list(dict.fromkeys(run_ids))
    last = {r: kind for r, kind in await conn.fetch(_LAST, unique)}
    if not last:
        return {}
    wanted = list(last)
    busy = {r for (r,) in await conn.fetch(_BUSY, wanted)}
    waits = [entity_from_body(Wait, body, r) for r, body in await conn.fetch(_WAITS, wanted)]
    hooks = [entity_from_body(Hook, body, r) for r, body in await conn.fetch(_HOOKS, wanted)]
    return judge(last, busy, waits, hooks)
