"""Leases in PostgreSQL: which worker runs which run, across processes and machines.

``CLAIM_RUNS`` locks the candidate run rows with ``SKIP LOCKED``, so workers claiming at once
never take the same run, and the upsert only replaces a lease that lapsed.
"""

from __future__ import annotations

from typing import Final

CLAIM_RUNS: Final = """
WITH candidates AS (
    SELECT r.run_id FROM runs r LEFT JOIN leases l ON l.run_id = r.run_id
    WHERE r.status IN ('pending', 'running')
      AND ((l.run_id IS NULL AND (r.status = 'pending'
                                  OR r.created_at < now() - make_interval(secs => $2)))
           OR l.expires_at < now())
    ORDER BY r.created_at
    LIMIT $3
    FOR UPDATE OF r SKIP LOCKED
)
INSERT INTO leases (run_id, owner, expires_at)
SELECT run_id, $1, now() + make_interval(secs => $2) FROM candidates
ON CONFLICT (run_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE leases.expires_at < now()
RETURNING run_id
"""
"""$1 owner, $2 lease seconds, $3 limit: the run ids taken."""

CLAIM_RUN: Final = """
INSERT INTO leases (run_id, owner, expires_at) VALUES ($2, $1, now() + make_interval(secs => $3))
ON CONFLICT (run_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE leases.owner = excluded.owner OR leases.expires_at < now()
RETURNING run_id
"""
"""$1 owner, $2 run id, $3 lease seconds: a row if the lease is (now) the owner's."""

RENEW: Final = """
UPDATE leases SET expires_at = now() + make_interval(secs => $2)
WHERE owner = $1 AND expires_at >= now()
RETURNING run_id
"""

RELEASE: Final = """
UPDATE leases SET expires_at = now() - interval '1 microsecond'
WHERE owner = $1 AND run_id = ANY($2::text[])
"""
"""A released lease lapses at once (a lease row is kept: it tells a released run from one
whose starter never claimed it)."""
