"""Leases and workers in SQLite: which worker runs which run (jobs of the writer thread).

The jobs that take leases note the epochs they took in the writer's :class:`RunCache`, so a
batch fenced on them needs no read of the lease.

Same rules as every store (see ``Store.claim_runs``); times are integer microseconds. The
writer thread runs every write of the file, so a claim and a fenced batch never interleave.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

from ._sqlite_cache import RunCache
from .batch import Claimed, Held
from .records import Lease, WorkerInfo
from .rows import from_micros, micros

ENDED: Final = 0
"""``expires_at`` of the lease of a run that ended (or was never created): lapsed, and below
every other, so no part of the sweep reads the leases of ended runs."""
UNCLAIMED: Final = 1
"""``expires_at`` of the row (owner ``''``, epoch 0) that a run written without a claim gets:
it stands for "no lease yet" and lets the sweep find such runs by index, not by scanning
every active run for a missing lease row."""
LAPSED: Final = 2
"""``expires_at`` that a lapsed lease of an active run takes once a sweep has seen it (when
it lapsed no longer matters): the sweep reads these in run id order, a page at a time."""

_ACTIVE = "('pending', 'running')"
_WORKFLOW = "(:all OR r.workflow_name IN (SELECT value FROM json_each(:workflows)))"
_BY_LEASE = f"""
SELECT r.run_id FROM leases l CROSS JOIN runs r ON r.run_id = l.run_id
WHERE {{leases}} AND l.run_id > :after AND {{runs}} AND {_WORKFLOW}
ORDER BY l.run_id LIMIT :limit
"""
SWEEP: Final = {
    # pending runs by runs(status, run_id): with no lease, a lapsed one or a dead owner's
    "pending": f"""
        SELECT r.run_id FROM runs r LEFT JOIN leases l ON l.run_id = r.run_id
        WHERE r.status = 'pending' AND r.run_id > :after AND {_WORKFLOW}
          AND (l.run_id IS NULL OR l.expires_at < :now
               OR l.owner IN (SELECT value FROM json_each(:dead)))
        ORDER BY r.run_id LIMIT :limit""",
    # leases seen lapsed, by leases(expires_at, run_id)
    "lapsed": _BY_LEASE.format(leases=f"l.expires_at = {LAPSED}", runs=f"r.status IN {_ACTIVE}"),
    # leases lapsed since the last sweep: few (the sweep that takes them marks them LAPSED)
    "fresh": _BY_LEASE.format(
        leases=f"l.expires_at > {LAPSED} AND l.expires_at < :now",
        runs=f"r.status IN {_ACTIVE}",
    ).replace("ORDER BY l.run_id", "ORDER BY r.run_id"),
    # runs written without a claim, by their mark
    "unclaimed": _BY_LEASE.format(
        leases=f"l.expires_at = {UNCLAIMED}",
        runs="r.status = 'running' AND r.created_at < :young",
    ),
    # one dead owner's leases, by leases_owner (owner, run_id); once for each dead owner
    "dead": _BY_LEASE.format(
        leases=f"l.owner = :owner AND l.expires_at <> {ENDED}", runs=f"r.status IN {_ACTIVE}"
    ),
}
"""The parts of a sweep, each read by an index in run id order (and cut to ``:limit``) so that
a page costs what it finds, never a walk over every active run."""
_FRESH = f"SELECT EXISTS (SELECT 1 FROM leases WHERE expires_at > {LAPSED} AND expires_at < ?)"
_SETTLE = f"""
UPDATE leases SET expires_at = CASE WHEN EXISTS (SELECT 1 FROM runs r
    WHERE r.run_id = leases.run_id AND r.status IN {_ACTIVE}) THEN {LAPSED} ELSE {ENDED} END
WHERE expires_at > {LAPSED} AND expires_at < ?
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
) -> tuple[list[str], bool]:
    """Up to ``limit`` claimable runs after ``after``, in run id order, and whether leases
    lapsed since the last sweep (:func:`take` marks them LAPSED). A read: the reader thread
    runs it, so the sweep never holds the write lock; :func:`take` checks again."""
    now = _now()
    params: dict[str, object] = {
        "all": workflows is None,
        "workflows": json.dumps(list(workflows or ())),
        "young": now - int(lease_seconds * 1_000_000),
        "now": now,
        "dead": json.dumps(list(dead)),
        "limit": limit,
        "after": after,
    }
    found: set[str] = set()
    for part, query in SWEEP.items():
        for owner in dict.fromkeys(dead) if part == "dead" else [None]:
            params["owner"] = owner
            found.update(str(run_id) for (run_id,) in conn.execute(query, params))
    fresh = bool(conn.execute(_FRESH, (now,)).fetchone()[0])
    return sorted(found)[:limit], fresh


def take_leases(
    conn: sqlite3.Connection,
    cache: RunCache,
    owner: str,
    run_ids: list[str],
    lease_seconds: float,
    dead: Sequence[str],
    settle: bool = False,
) -> tuple[list[Lease], list[str]]:
    """Take the leases of these claimable runs in one statement, unless one was taken since
    it was read (a live lease of another owner, not one of the ``dead``); those taken, their
    epochs noted in ``cache``. With ``settle``, first mark LAPSED every lease that lapsed
    since (ENDED if its run is not active), in the same transaction."""
    now = _now()
    rows: list[tuple[str, int]] = []
    if settle:
        conn.execute("BEGIN IMMEDIATE")
    try:
        if settle:
            conn.execute(_SETTLE, (now,))
        if run_ids:
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
        if settle:
            conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    leases = [Lease(str(run_id), int(epoch)) for run_id, epoch in rows]
    cache.took({lease.run_id: lease.epoch for lease in leases})
    return sorted(leases, key=lambda lease: lease.run_id), []


def claim_each(
    conn: sqlite3.Connection, cache: RunCache, owner: str, run_ids: list[str], seconds: float
) -> tuple[list[Lease], list[str]]:
    """Take each run's lease unless another owner's is live, in one transaction; the leases
    taken, their epochs noted in ``cache``."""
    now = _now()
    until = now + int(seconds * 1_000_000)
    conn.execute("BEGIN IMMEDIATE")
    try:
        taken = [_take(conn, run_id, owner, until, now, "[]") for run_id in dict.fromkeys(run_ids)]
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    leases = [lease for lease in taken if lease is not None]
    cache.took({lease.run_id: lease.epoch for lease in leases})
    return leases, []


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
    so a released run is told from one whose starter never claimed it), to the LAPSED mark:
    when it lapsed does not matter, and a sweep reads the mark by index (a lapse time would
    have the next sweep sort and mark every released lease first). The lease of a run that
    is not active (ended, or never written) takes the ENDED mark instead."""
    now = _now()
    conn.executemany(
        f"UPDATE leases SET expires_at = CASE WHEN EXISTS (SELECT 1 FROM runs r "
        f"WHERE r.run_id = leases.run_id AND r.status IN {_ACTIVE}) THEN {LAPSED} "
        f"ELSE {ENDED} END WHERE owner = ? AND run_id = ? AND expires_at >= ?",
        [(owner, r, now) for r in run_ids],
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
