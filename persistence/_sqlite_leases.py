"""Leases and workers in SQLite: which worker runs which run (jobs of the writer thread).

Same rules as every store (see ``Store.claim_runs``); times are integer microseconds. The
writer thread runs every write of the file, so a claim and a fenced batch never interleave.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from .records import Lease, WorkerInfo
from .rows import from_micros, micros

_CANDIDATES = """
SELECT r.run_id FROM runs r LEFT JOIN leases l ON l.run_id = r.run_id
WHERE r.status IN ('pending', 'running') AND r.run_id > :after
  AND (:all OR r.workflow_name IN (SELECT value FROM json_each(:workflows)))
  AND ((l.run_id IS NULL AND (r.status = 'pending' OR r.created_at < :young))
       OR l.expires_at < :now
       OR l.owner IN (SELECT value FROM json_each(:dead)))
ORDER BY r.run_id
LIMIT :limit
"""
_TAKE = """
INSERT INTO leases (run_id, owner, expires_at, epoch) VALUES (:run_id, :owner, :until, 1)
ON CONFLICT (run_id) DO UPDATE SET
    epoch = CASE WHEN leases.owner = excluded.owner THEN leases.epoch ELSE leases.epoch + 1 END,
    owner = excluded.owner,
    expires_at = excluded.expires_at
WHERE leases.owner = excluded.owner OR leases.expires_at < :now
   OR leases.owner IN (SELECT value FROM json_each(:dead))
RETURNING epoch
"""


def _now() -> int:
    return micros(datetime.now(UTC))


def _take(
    conn: sqlite3.Connection, run_id: str, owner: str, until: int, now: int, dead: str
) -> Lease | None:
    row = conn.execute(
        _TAKE, {"run_id": run_id, "owner": owner, "until": until, "now": now, "dead": dead}
    ).fetchone()
    return None if row is None else Lease(run_id, int(row[0]))


def claim_runs(
    conn: sqlite3.Connection,
    owner: str,
    lease_seconds: float,
    limit: int,
    workflows: Sequence[str] | None,
    dead: Sequence[str],
    after: str = "",
) -> tuple[list[Lease], list[str]]:
    """Take up to ``limit`` claimable runs after ``after``, in run id order, in one
    transaction."""
    now, span = _now(), int(lease_seconds * 1_000_000)
    gone = json.dumps(list(dead))
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute(
            _CANDIDATES,
            {
                "all": workflows is None,
                "workflows": json.dumps(list(workflows or ())),
                "young": now - span,
                "now": now,
                "dead": gone,
                "limit": limit,
                "after": after,
            },
        ).fetchall()
        claimed = [_take(conn, str(r), owner, now + span, now, gone) for (r,) in rows]
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return [lease for lease in claimed if lease is not None], []


def claim_each(
    conn: sqlite3.Connection, owner: str, run_ids: list[str], lease_seconds: float
) -> tuple[list[Lease], list[str]]:
    """Take each run's lease unless another owner's is live, in one transaction."""
    now = _now()
    until = now + int(lease_seconds * 1_000_000)
    conn.execute("BEGIN IMMEDIATE")
    try:
        taken = [_take(conn, run_id, owner, until, now, "[]") for run_id in dict.fromkeys(run_ids)]
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return [lease for lease in taken if lease is not None], []


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
    """Let the owner's leases on these runs lapse now (claimable at once; the rows are kept,
    so a released run is told from one whose starter never claimed it)."""
    lapsed = _now() - 1
    conn.executemany(
        "UPDATE leases SET expires_at = ? WHERE owner = ? AND run_id = ? AND expires_at > ?",
        [(lapsed, owner, r, lapsed) for r in run_ids],
    )
    return None, []


def lapse_ended(conn: sqlite3.Connection, run_ids: list[str]) -> None:
    """In a write that ends these runs: their leases, whoever holds them, lapse with it."""
    if run_ids:
        lapsed = _now() - 1
        conn.executemany(
            "UPDATE leases SET expires_at = ? WHERE run_id = ? AND expires_at > ?",
            [(lapsed, r, lapsed) for r in run_ids],
        )


def epochs(conn: sqlite3.Connection, run_ids: Sequence[str]) -> dict[str, int]:
    """The lease epochs of these runs (those with a lease)."""
    if not run_ids:
        return {}
    marks = ", ".join("?" * len(run_ids))
    rows = conn.execute(
        f"SELECT run_id, epoch FROM leases WHERE run_id IN ({marks})", list(run_ids)
    ).fetchall()
    return {str(run_id): int(epoch) for run_id, epoch in rows}


def beat(conn: sqlite3.Connection, worker: WorkerInfo) -> tuple[None, list[str]]:
    """Record a worker's heartbeat."""
    conn.execute(
        "INSERT INTO workers (worker_id, host, pid, workflows, seen_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (worker_id) DO UPDATE SET host = excluded.host, "
        "pid = excluded.pid, workflows = excluded.workflows, seen_at = excluded.seen_at, "
        "expires_at = excluded.expires_at",
        (
            worker.worker_id,
            worker.host,
            worker.pid,
            json.dumps(list(worker.workflows)),
            micros(worker.seen_at),
            micros(worker.expires_at),
        ),
    )
    return None, []


def list_workers(conn: sqlite3.Connection) -> list[WorkerInfo]:
    """The workers whose last beat has not expired."""
    rows = conn.execute(
        "SELECT worker_id, host, pid, workflows, seen_at, expires_at FROM workers "
        "WHERE expires_at >= ? ORDER BY worker_id",
        (_now(),),
    ).fetchall()
    return [
        WorkerInfo(
            worker_id=str(worker_id),
            host=str(host),
            pid=int(pid),
            workflows=tuple(json.loads(workflows)),
            seen_at=from_micros(seen_at),
            expires_at=from_micros(expires_at),
        )
        for worker_id, host, pid, workflows, seen_at, expires_at in rows
    ]


def remove_worker(conn: sqlite3.Connection, worker_id: str) -> tuple[None, list[str]]:
    """Forget a worker."""
    conn.execute("DELETE FROM workers WHERE worker_id = ?", (worker_id,))
    return None, []
