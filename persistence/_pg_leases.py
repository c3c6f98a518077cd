"""Leases and workers in PostgreSQL: which worker runs which run, across processes and machines.

``CLAIM_RUNS`` locks the candidate run rows with ``SKIP LOCKED``, so workers claiming at once
never take the same run, and the upsert only replaces a lease that lapsed or whose owner is
known to be dead. A lease that passes to another owner gets the next epoch; a batch fenced
with an older epoch is refused (``_pg_statement`` locks the lease rows it is fenced on). The
leases of ended runs carry the ENDED mark and runs written without a claim an UNCLAIMED row,
so the sweep reads what it may claim by index (see ``CLAIM_RUNS``).

The functions at the end run these statements on a connection that ``PostgresStore`` lends
them; the store keeps what is its own (owner checks, cancellation, the batch writer's epochs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from .records import Lease, WorkerInfo

if TYPE_CHECKING:  # _pg_batch imports this module (through _pg_statement)
    from ._pg_batch import Conn

_UPSERT_SET: Final = """
ON CONFLICT (run_id) DO UPDATE SET
    epoch = CASE WHEN leases.owner = excluded.owner THEN leases.epoch ELSE leases.epoch + 1 END,
    owner = excluded.owner,
    expires_at = excluded.expires_at
"""

ENDED: Final = "'-infinity'::timestamptz"
"""``expires_at`` of the lease of a run that ended (or was never created): lapsed, and below
every other, so no part of the sweep reads the leases of ended runs."""
UNCLAIMED: Final = "'1970-01-01 00:00:00+00'::timestamptz"
"""``expires_at`` of the row (owner ``''``, epoch 0) that a run written without a claim gets:
it stands for "no lease yet" and lets the sweep find such runs by index, not by scanning
every active run for a missing lease row."""
LAPSED: Final = "'1970-01-02 00:00:00+00'::timestamptz"
"""``expires_at`` that a lapsed lease of an active run takes once a sweep has seen it (when
it lapsed no longer matters): the sweep reads these in run id order, a page at a time."""

_ACTIVE: Final = "('pending', 'running')"
# (not a condition an index of runs can serve: the planner never walks a workflow's runs)
_HOSTED: Final = "($4::text[] IS NULL OR array_position($4::text[], r.workflow_name) IS NOT NULL)"
# Leases in run id order, each run looked up by primary key (a LATERAL the planner cannot
# turn into a walk over runs), locked as it is reached.
_BY_LEASE: Final = f"""
    SELECT r.run_id FROM leases l CROSS JOIN LATERAL (
        SELECT r.run_id FROM runs r
        WHERE r.run_id = l.run_id AND {{runs}} AND {_HOSTED}
        OFFSET 0
    ) r
    WHERE {{leases}} AND l.run_id > $6
    ORDER BY l.run_id
    LIMIT $3
    FOR UPDATE OF r SKIP LOCKED
"""
# Claimable runs come from five places, each read by an index in run id order and cut to $3
# rows, so that a page costs what it finds, never a walk over every active run: pending runs
# by runs(status, run_id); leases marked LAPSED and runs marked UNCLAIMED by leases(expires_at,
# run_id); each dead owner's leases by leases(owner, run_id); and the leases that lapsed since
# the last sweep (few: this statement marks them LAPSED, but for the ones it takes), read by
# expiry, then their runs by primary key. Every part locks its run rows with SKIP LOCKED; the
# parts are merged, then cut.
BY_INDEX: Final = "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off"
"""Set in the claim's transaction: every part of the sweep walks its index in run id order
and stops after a page, whatever the statistics say (a bitmap scan of fresh leases, or a
sequential scan, would read every row each page: a takeover of many runs went quadratic)."""

CLAIM_RUNS: Final = f"""
WITH pending AS (
    SELECT r.run_id FROM runs r LEFT JOIN leases l ON l.run_id = r.run_id
    WHERE r.status = 'pending' AND r.run_id > $6 AND {_HOSTED}
      AND (l.run_id IS NULL OR l.expires_at < now() OR l.owner = ANY($5::text[]))
    ORDER BY r.run_id
    LIMIT $3
    FOR UPDATE OF r SKIP LOCKED
),
lapsed AS ({_BY_LEASE.format(leases=f"l.expires_at = {LAPSED}", runs=f"r.status IN {_ACTIVE}")}),
unclaimed AS ({
    _BY_LEASE.format(
        leases=f"l.expires_at = {UNCLAIMED}",
        runs="r.status = 'running' AND r.created_at < now() - make_interval(secs => $2)",
    )
}),
dead AS (
    SELECT x.run_id FROM unnest($5::text[]) AS d(owner) CROSS JOIN LATERAL ({
    _BY_LEASE.format(
        leases=f"l.owner = d.owner AND l.expires_at <> {ENDED}", runs=f"r.status IN {_ACTIVE}"
    )
}) AS x
),
fresh AS (
    SELECT r.run_id FROM runs r
    WHERE r.run_id = ANY(ARRAY(SELECT l.run_id FROM leases l
                               WHERE l.expires_at > {LAPSED} AND l.expires_at < now()))
      AND r.status IN {_ACTIVE} AND r.run_id > $6 AND {_HOSTED}
    ORDER BY r.run_id
    LIMIT $3
    FOR UPDATE OF r SKIP LOCKED
),
candidates AS (
    SELECT DISTINCT run_id FROM (
        SELECT run_id FROM pending UNION ALL SELECT run_id FROM lapsed
        UNION ALL SELECT run_id FROM unclaimed UNION ALL SELECT run_id FROM dead
        UNION ALL SELECT run_id FROM fresh
    ) c
    ORDER BY run_id LIMIT $3
),
settled AS (
    UPDATE leases SET expires_at = CASE WHEN EXISTS (
        SELECT 1 FROM runs r WHERE r.run_id = leases.run_id AND r.status IN {_ACTIVE}
    ) THEN {LAPSED} ELSE {ENDED} END
    WHERE leases.run_id IN (
        SELECT l.run_id FROM leases l
        WHERE l.expires_at > {LAPSED} AND l.expires_at < now()
          AND l.run_id NOT IN (SELECT run_id FROM candidates)
        FOR UPDATE SKIP LOCKED
    )
)
INSERT INTO leases (run_id, owner, expires_at, epoch)
SELECT run_id, $1, now() + make_interval(secs => $2), 1 FROM candidates
{_UPSERT_SET}
WHERE leases.expires_at < now() OR leases.owner = excluded.owner
   OR leases.owner = ANY($5::text[])
RETURNING run_id, epoch
"""
"""$1 owner, $2 lease seconds, $3 limit, $4 workflows (NULL: all), $5 dead owners, $6 the run
id to start after: the leases taken."""

CLAIM_EACH: Final = f"""
INSERT INTO leases (run_id, owner, expires_at, epoch)
SELECT run_id, $1, now() + make_interval(secs => $3::float8), 1
FROM unnest($2::text[]) AS u(run_id)
{_UPSERT_SET}
WHERE leases.owner = excluded.owner OR leases.expires_at < now()
RETURNING run_id, epoch
"""
"""$1 owner, $2 run ids (distinct, sorted: concurrent claimers lock rows in one order), $3
lease seconds: the runs whose lease is (now) the owner's, with their epochs."""

RENEW: Final = """
UPDATE leases SET expires_at = now() + make_interval(secs => $2)
WHERE owner = $1 AND expires_at >= now()
RETURNING run_id
"""

RELEASE: Final = f"""
UPDATE leases SET expires_at = CASE WHEN EXISTS (
    SELECT 1 FROM runs r WHERE r.run_id = leases.run_id AND r.status IN ('pending', 'running')
) THEN {LAPSED} ELSE {ENDED} END
WHERE owner = $1 AND run_id = ANY($2::text[])
"""
"""A released lease lapses at once: to the LAPSED mark (when it lapsed does not matter, and a
sweep reads the mark by index; a lapse time would have it sort and mark every released lease
first), or to the ENDED mark if its run is not active. Its row is kept (with its epoch): it
tells a released run, claimable at once (a rerun revives an ended run), from one whose starter
never claimed it."""

BEAT: Final = """
INSERT INTO workers (worker_id, host, pid, workflows, seen_at, expires_at)
VALUES ($1, $2, $3, $4::text[], $5, $6)
ON CONFLICT (worker_id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
    workflows = excluded.workflows, seen_at = excluded.seen_at, expires_at = excluded.expires_at
"""

LIST_WORKERS: Final = """
SELECT worker_id, host, pid, workflows, seen_at, expires_at FROM workers
WHERE expires_at >= now() ORDER BY worker_id
"""

REMOVE_WORKER: Final = "DELETE FROM workers WHERE worker_id = $1"


async def claim_runs(
    conn: Conn,
    owner: str,
    lease_seconds: float,
    limit: int,
    workflows: Sequence[str] | None,
    dead: Sequence[str],
    after: str,
) -> list[Lease]:
    """Take up to ``limit`` claimable runs in one transaction (see ``Store.claim_runs``)."""
    wanted = list(workflows) if workflows is not None else None
    async with conn.transaction():
        await conn.execute(BY_INDEX)
        rows = await conn.fetch(
            CLAIM_RUNS, owner, float(lease_seconds), limit, wanted, list(dead), after
        )
    return [Lease(str(row[0]), int(row[1])) for row in rows]


async def claim_each(
    conn: Conn, owner: str, run_ids: Sequence[str], lease_seconds: float
) -> list[Lease]:
    """Take (or keep) these runs' leases unless another owner's is live, in one statement
    (see ``Store.claim_each``); in the order asked, each run once."""
    asked = list(dict.fromkeys(run_ids))
    rows = await conn.fetch(CLAIM_EACH, owner, sorted(asked), float(lease_seconds))
    epochs = {str(row[0]): int(row[1]) for row in rows}
    return [Lease(run_id, epochs[run_id]) for run_id in asked if run_id in epochs]


async def renew_leases(conn: Conn, owner: str, lease_seconds: float) -> set[str]:
    """Extend every lease ``owner`` holds; the runs it still holds."""
    rows = await conn.fetch(RENEW, owner, float(lease_seconds))
    return {str(row[0]) for row in rows}


async def release_leases(conn: Conn, owner: str, run_ids: Sequence[str]) -> None:
    """Give up these leases (see ``RELEASE``)."""
    await conn.execute(RELEASE, owner, list(run_ids))


async def beat(conn: Conn, worker: WorkerInfo) -> None:
    """Record that a worker is alive (see ``Store.beat``)."""
    await conn.execute(
        BEAT,
        worker.worker_id,
        worker.host,
        worker.pid,
        list(worker.workflows),
        worker.seen_at,
        worker.expires_at,
    )


async def list_workers(conn: Conn) -> list[WorkerInfo]:
    """The workers whose last beat has not expired, by id."""
    rows = await conn.fetch(LIST_WORKERS)
    return [
        WorkerInfo(
            worker_id=str(r[0]),
            host=str(r[1]),
            pid=int(r[2]),
            workflows=tuple(r[3]),
            seen_at=r[4],
            expires_at=r[5],
        )
        for r in rows
    ]


async def remove_worker(conn: Conn, worker_id: str) -> None:
    """Forget a worker."""
    await conn.execute(REMOVE_WORKER, worker_id)
