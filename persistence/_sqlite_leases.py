"""Leases and workers in SQLite: which worker runs which run (jobs of the writer thread).

Same rules as every store (see ``Store.claim_runs``); times are integer microseconds. The
writer thread runs every write of the file, so a claim and a fenced batch never interleave.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

from .batch import Claimed, Held
from .records import Lease, WorkerInfo
from .rows import from_micros, micros

ENDED: Final = 0
"""``expires_at`` of the lease of a run that ended (or was never created): lapsed, and below
every other, so the sweep's range of lapsed leases skips the leases of all ended runs."""
UNCLAIMED: Final = 1
"""``expires_at`` of the row (owner ``''``, epoch 0) that a run written without a claim gets:
it stands for "no lease yet" and lets the sweep find such runs by index, not by scanning
every active run for a missing lease row."""

_ACTIVE = "('pending', 'running')"
_WORKFLOW = "(:all OR r.workflow_name IN (SELECT value FROM json_each(:workflows)))"
# Claimable runs come from four places, each read by an index so that a sweep costs what it
# finds (plus the pending runs), never a walk over every active run: pending runs by
# runs(status, run_id), in id order; lapsed leases of active runs by leases(expires_at)
# between the two marks and now; the live leases of dead owners by leases(owner,
# expires_at); and runs written without a claim by their UNCLAIMED mark. The last three are
# joined to runs by primary key (CROSS JOIN keeps the lease side outer).
_CANDIDATES = f"""
SELECT run_id FROM (
    SELECT r.run_id FROM runs r LEFT JOIN leases l ON l.run_id = r.run_id
    WHERE r.status = 'pending' AND r.run_id > :after AND {_WORKFLOW}
      AND (l.run_id IS NULL OR l.expires_at < :now
           OR l.owner IN (SELECT value FROM json_each(:dead)))
    ORDER BY r.run_id LIMIT :limit
)
UNION
SELECT r.run_id FROM leases l CROSS JOIN runs r ON r.run_id = l.run_id
WHERE l.expires_at > {UNCLAIMED} AND l.expires_at < :now
  AND r.status IN {_ACTIVE} AND r.run_id > :after AND {_WORKFLOW}
UNION
SELECT r.run_id FROM json_each(:dead) d CROSS JOIN leases l CROSS JOIN runs r
    ON l.owner = d.value AND r.run_id = l.run_id
WHERE l.expires_at >= :now AND r.status IN {_ACTIVE} AND r.run_id > :after AND {_WORKFLOW}
UNION
SELECT r.run_id FROM leases l CROSS JOIN runs r ON r.run_id = l.run_id
WHERE l.expires_at = {UNCLAIMED} AND r.status = 'running' AND r.created_at < :young
  AND r.run_id > :after AND {_WORKFLOW}
ORDER BY run_id LIMIT :limit
"""
_UPSERT = """
ON CONFLICT (run_id) DO UPDATE SET
    epoch = CASE WHEN leases.owner = excluded.owner THEN leases.epoch ELSE leases.epoch + 1 END,
    owner = excluded.owner,
    expires_at = excluded.expires_at
WHERE leases.owner = excluded.owner OR leases.expires_at < :now
   OR leases.owner IN (SELECT value FROM json_each(:dead))
"""
_TAKE = f"""
INSERT INTO leases (run_id, owner, expires_at, epoch) VALUES (:run_id, :owner, :until, 1)
{_UPSERT}
RETURNING epoch
"""
_TAKE_ALL = f"""
INSERT INTO leases (run_id, owner, expires_at, epoch)
SELECT value, :owner, :until, 1 FROM json_each(:run_ids) WHERE true
{_UPSERT}
RETURNING run_id, epoch
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


def claimable(
    conn: sqlite3.Connection,
    lease_seconds: float,
    limit: int,
    workflows: Sequence[str] | None,
    dead: Sequence[str],
    after: str = "",
) -> list[str]:
    """Up to ``limit`` claimable runs after ``after``, in run id order (a read: the reader
    thread runs it, so the scan never holds the write lock; :func:`take` checks again)."""
    now = _now()
    rows = conn.execute(
        _CANDIDATES,
        {
            "all": workflows is None,
            "workflows": json.dumps(list(workflows or ())),
            "young": now - int(lease_seconds * 1_000_000),
            "now": now,
            "dead": json.dumps(list(dead)),
            "limit": limit,
            "after": after,
        },
    ).fetchall()
    return [str(run_id) for (run_id,) in rows]


def take(
    conn: sqlite3.Connection,
    owner: str,
    run_ids: list[str],
    lease_seconds: float,
    dead: Sequence[str],
) -> tuple[list[Lease], list[str]]:
    """Take the leases of these claimable runs in one statement, unless one was taken since
    it was read (a live lease of another owner, not one of the ``dead``); those taken."""
    if not run_ids:
        return [], []
    now = _now()
    rows = conn.execute(
        _TAKE_ALL,
        {
            "run_ids": json.dumps(run_ids),
            "owner": owner,
            "until": now + int(lease_seconds * 1_000_000),
            "now": now,
            "dead": json.dumps(list(dead)),
        },
    ).fetchall()
    leases = [Lease(str(run_id), int(epoch)) for run_id, epoch in rows]
    return sorted(leases, key=lambda lease: lease.run_id), []


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
    so a released run is told from one whose starter never claimed it). The lease of a run
    that is not active (ended, or never written) takes the ENDED mark instead."""
    lapsed = _now() - 1
    conn.executemany(
        f"UPDATE leases SET expires_at = CASE WHEN EXISTS (SELECT 1 FROM runs r "
        f"WHERE r.run_id = leases.run_id AND r.status IN {_ACTIVE}) THEN ? ELSE {ENDED} END "
        "WHERE owner = ? AND run_id = ? AND expires_at > ?",
        [(lapsed, owner, r, lapsed) for r in run_ids],
    )
    return None, []


def lapse_ended(conn: sqlite3.Connection, run_ids: list[str]) -> None:
    """In a write that ends these runs: their leases, whoever holds them, lapse with it, to
    the ENDED mark (an ended run is never claimed: the sweep's range leaves it out)."""
    if run_ids:
        conn.executemany(
            f"UPDATE leases SET expires_at = {ENDED} WHERE run_id = ? AND expires_at <> {ENDED}",
            [(r,) for r in run_ids],
        )


def mark_written(conn: sqlite3.Connection, unclaimed: list[str], revived: list[str]) -> None:
    """In a write that creates runs without a claim, or reruns runs: a run with no lease row
    gets the UNCLAIMED mark, and a lease at the ENDED mark lapses as an ordinary one (or
    back to UNCLAIMED if no worker ever held it), so the sweep finds the run."""
    if unclaimed or revived:
        lapsed = _now() - 1
        conn.executemany(
            "INSERT INTO leases (run_id, owner, expires_at, epoch) "
            f"VALUES (?, '', {UNCLAIMED}, 0) ON CONFLICT (run_id) DO UPDATE SET "
            f"expires_at = CASE WHEN leases.owner = '' THEN {UNCLAIMED} ELSE ? END "
            f"WHERE leases.expires_at = {ENDED}",
            [(r, lapsed) for r in [*unclaimed, *revived]],
        )


def epochs(conn: sqlite3.Connection, run_ids: Sequence[str]) -> dict[str, int]:
    """The lease epochs of these runs (those a worker held: not an UNCLAIMED mark)."""
    if not run_ids:
        return {}
    marks = ", ".join("?" * len(run_ids))
    rows = conn.execute(
        f"SELECT run_id, epoch FROM leases WHERE run_id IN ({marks}) AND owner <> ''", list(run_ids)
    ).fetchall()
    return {str(run_id): int(epoch) for run_id, epoch in rows}


def held(conn: sqlite3.Connection, run_ids: Sequence[str]) -> dict[str, Held]:
    """The leases of these runs (those a worker held), for a batch that claims them."""
    if not run_ids:
        return {}
    marks = ", ".join("?" * len(run_ids))
    rows = conn.execute(
        "SELECT run_id, owner, expires_at, epoch FROM leases "
        f"WHERE run_id IN ({marks}) AND owner <> ''",
        list(run_ids),
    ).fetchall()
    return {
        str(run_id): Held(str(owner), from_micros(expires_at), int(epoch))
        for run_id, owner, expires_at, epoch in rows
    }


def take_claimed(conn: sqlite3.Connection, claims: Mapping[str, Claimed], now: datetime) -> None:
    """Write the leases a batch took with the runs it created (their epochs decided)."""
    if claims:
        at = micros(now)
        conn.executemany(
            "INSERT INTO leases (run_id, owner, expires_at, epoch) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (run_id) DO UPDATE SET owner = excluded.owner, "
            "expires_at = excluded.expires_at, epoch = excluded.epoch",
            [
                (run_id, c.owner, at + int(c.seconds * 1_000_000), c.epoch)
                for run_id, c in claims.items()
            ],
        )


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
