"""Leases and workers in PostgreSQL: which worker runs which run, across processes and machines.

``CLAIM_RUNS`` locks the candidate run rows with ``SKIP LOCKED``, so workers claiming at once
never take the same run, and the upsert only replaces a lease that lapsed or whose owner is
known to be dead. A lease that passes to another owner gets the next epoch; a batch fenced
with an older epoch is refused (``_pg_statement`` locks the lease rows it is fenced on).
"""

from __future__ import annotations

from typing import Final

_UPSERT_SET: Final = """
ON CONFLICT (run_id) DO UPDATE SET
    epoch = CASE WHEN leases.owner = excluded.owner THEN leases.epoch ELSE leases.epoch + 1 END,
    owner = excluded.owner,
    expires_at = excluded.expires_at
"""

_CLAIMABLE: Final = """
    SELECT r.run_id FROM runs r LEFT JOIN leases l ON l.run_id = r.run_id
    WHERE r.status = '{status}' AND r.run_id > $6
      AND ($4::text[] IS NULL OR r.workflow_name = ANY($4::text[]))
      AND ((l.run_id IS NULL AND (r.status = 'pending'
                                  OR r.created_at < now() - make_interval(secs => $2)))
           OR l.expires_at < now() OR l.owner = ANY($5::text[]))
    ORDER BY r.run_id
    LIMIT $3
    FOR UPDATE OF r SKIP LOCKED
"""
# Each status is read in the order of its index (status, run_id), so a page stops after $3
# rows instead of sorting every active run; the two are merged, then cut.
CLAIM_RUNS: Final = f"""
WITH pending AS ({_CLAIMABLE.format(status="pending")}),
running AS ({_CLAIMABLE.format(status="running")}),
candidates AS (
    SELECT run_id FROM (SELECT run_id FROM pending UNION ALL SELECT run_id FROM running) c
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

RELEASE: Final = """
UPDATE leases SET expires_at = now() - interval '1 microsecond'
WHERE owner = $1 AND run_id = ANY($2::text[])
"""
"""A released lease lapses at once. Its row is kept (with its epoch): it tells a released run,
claimable at once (a rerun revives an ended run), from one whose starter never claimed it."""

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
