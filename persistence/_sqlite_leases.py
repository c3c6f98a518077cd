"""Leases in SQLite: which worker runs which run (the jobs the writer thread runs).

Same rules as every store (see ``Store.claim_runs``); times are integer microseconds.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from .rows import micros

_CANDIDATES = """
SELECT r.run_id FROM runs r LEFT JOIN leases l ON l.run_id = r.run_id
WHERE r.status IN ('pending', 'running')
  AND ((l.run_id IS NULL AND (r.status = 'pending' OR r.created_at < ?)) OR l.expires_at < ?)
ORDER BY r.created_at
LIMIT ?
"""
_TAKE = """
INSERT INTO leases (run_id, owner, expires_at) VALUES (?, ?, ?)
ON CONFLICT (run_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE leases.owner = excluded.owner OR leases.expires_at < ?
"""


def _now() -> int:
    return micros(datetime.now(UTC))


def claim_runs(
    conn: sqlite3.Connection, owner: str, lease_seconds: float, limit: int
) -> tuple[list[str], list[str]]:
    """Take up to ``limit`` claimable runs in one transaction."""
    now, span = _now(), int(lease_seconds * 1_000_000)
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute(_CANDIDATES, (now - span, now, limit)).fetchall()
        claimed = [str(run_id) for (run_id,) in rows]
        conn.executemany(_TAKE, [(run_id, owner, now + span, now) for run_id in claimed])
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return claimed, []


def claim_run(
    conn: sqlite3.Connection, owner: str, run_id: str, lease_seconds: float
) -> tuple[bool, list[str]]:
    """Take one run's lease unless another owner's is live."""
    now = _now()
    before = conn.total_changes
    conn.execute(_TAKE, (run_id, owner, now + int(lease_seconds * 1_000_000), now))
    return conn.total_changes > before, []


def renew_leases(
    conn: sqlite3.Connection, owner: str, lease_seconds: float
) -> tuple[set[str], list[str]]:
    """Extend the owner's leases; the runs it holds."""
    now = _now()
    until = now + int(lease_seconds * 1_000_000)
    rows = conn.execute(
        "UPDATE leases SET expires_at = ? WHERE owner = ? AND expires_at >= ? RETURNING run_id",
        (until, owner, now),
    ).fetchall()
    return {str(run_id) for (run_id,) in rows}, []


def release_leases(
    conn: sqlite3.Connection, owner: str, run_ids: list[str]
) -> tuple[None, list[str]]:
    """Let the owner's leases on these runs lapse now (claimable at once)."""
    lapsed = _now() - 1
    conn.executemany(
        "UPDATE leases SET expires_at = ? WHERE owner = ? AND run_id = ?",
        [(lapsed, owner, r) for r in run_ids],
    )
    return None, []
