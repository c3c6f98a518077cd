"""Leases and workers in PostgreSQL: which worker runs which run, across processes and machines.

``CLAIM_RUNS`` locks the candidate run rows with ``SKIP LOCKED``, so workers claiming at once
never take the same run, and the upsert only replaces a lease that lapsed or whose owner is
known to be dead. A lease that passes to another owner gets the next epoch; a batch fenced
with an older epoch is refused (``_pg_statement`` locks the lease rows it is fenced on). The
leases of ended runs carry the ENDED mark and runs written without a claim an UNCLAIMED row,
so the sweep reads what it may claim by index (see ``CLAIM_RUNS``).
"""

from __future__ import annotations

from typing import Final

_UPSERT_SET: Final = """
ON CONFLICT (run_id) DO UPDATE SET
    epoch = CASE WHEN leases.owner = excluded.owner THEN leases.epoch ELSE leases.epoch + 1 END,
    owner = excluded.owner,
    expires_at = excluded.expires_at
"""

ENDED: Final = "'-infinity'::timestamptz"
"""``expires_at`` of the lease of a run that ended (or was never created): lapsed, and below
every other, so the sweep's range of lapsed leases skips the leases of all ended runs."""
UNCLAIMED: Final = "'epoch'::timestamptz"
"""``expires_at`` of the row (owner ``''``, epoch 0) that a run written without a claim gets:
it stands for "no lease yet" and lets the sweep find such runs by index, not by scanning
every active run for a missing lease row."""

_HOSTED: Final = "($4::text[] IS NULL OR r.workflow_name = ANY($4::text[]))"
_BY_LEASE: Final = """
    SELECT r.run_id FROM runs r
    WHERE r.run_id = ANY(ARRAY(SELECT l.run_id FROM leases l WHERE {leases}))
      AND r.status {status} AND r.run_id > $6 AND {hosted}
    ORDER BY r.run_id
    LIMIT $3
    FOR UPDATE OF r SKIP LOCKED
"""
# Claimable runs come from four places, each read by an index so that a sweep costs what it
# finds (plus the pending runs), never a walk over every active run: pending runs by
# runs(status, run_id), in id order; lapsed leases of active runs by leases(expires_at)
# between the two marks and now; the live leases of dead owners by leases(owner,
# expires_at); and runs written without a claim by their UNCLAIMED mark. The lease ids are
# read first (an ARRAY: an init plan), then their runs by primary key; every part locks its
# run rows with SKIP LOCKED, stops after $3 rows, and the parts are merged, then cut.
CLAIM_RUNS: Final = f"""
WITH pending AS (
    SELECT r.run_id FROM runs r LEFT JOIN leases l ON l.run_id = r.run_id
    WHERE r.status = 'pending' AND r.run_id > $6 AND {_HOSTED}
      AND (l.run_id IS NULL OR l.expires_at < now() OR l.owner = ANY($5::text[]))
    ORDER BY r.run_id
    LIMIT $3
    FOR UPDATE OF r SKIP LOCKED
),
lapsed AS ({
    _BY_LEASE.format(
        leases=f"l.expires_at > {UNCLAIMED} AND l.expires_at < now()",
        status="IN ('pending', 'running')",
        hosted=_HOSTED,
    )
}),
dead AS ({
    _BY_LEASE.format(
        leases="l.owner = ANY($5::text[]) AND l.expires_at >= now()",
        status="IN ('pending', 'running')",
        hosted=_HOSTED,
    )
}),
unclaimed AS ({
    _BY_LEASE.format(
        leases=f"l.expires_at = {UNCLAIMED}",
        status="= 'running' AND r.created_at < now() - make_interval(secs => $2)",
        hosted=_HOSTED,
    )
}),
candidates AS (
    SELECT DISTINCT run_id FROM (
        SELECT run_id FROM pending UNION ALL SELECT run_id FROM lapsed
        UNION ALL SELECT run_id FROM dead UNION ALL SELECT run_id FROM unclaimed
    ) c
    ORDER BY run_id LIMIT $3
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
) THEN now() - interval '1 microsecond' ELSE {ENDED} END
WHERE owner = $1 AND run_id = ANY($2::text[])
"""
"""A released lease lapses at once (to the ENDED mark if its run is not active). Its row is
kept (with its epoch): it tells a released run, claimable at once (a rerun revives an ended
run), from one whose starter never claimed it."""

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
