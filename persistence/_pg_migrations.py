"""The PostgreSQL store's migrations: the tables of each schema version, and how a schema gets
there (:func:`migrate`, run by ``PostgresStore.open``)."""

from __future__ import annotations

from typing import Final

from ._pg_batch import Conn
from ._pg_schema import lock_key
from .errors import StoreConfigurationError, StoreError

HAS_SCHEMA: Final = "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)"
HAS_MIGRATIONS: Final = "SELECT to_regclass($1) IS NOT NULL"
SCHEMA_VERSION: Final = "SELECT coalesce(max(version), 0) FROM migrations"

MIGRATIONS_TABLE: Final = """
CREATE TABLE IF NOT EXISTS migrations (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

_V1: Final = """
CREATE TABLE runs (
    run_id text COLLATE "C" PRIMARY KEY,
    workflow_name text NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL,
    last_event_id text COLLATE "C" NOT NULL,
    event_count integer NOT NULL,
    body bytea NOT NULL
) WITH (fillfactor = 80);
CREATE INDEX runs_status ON runs (status, run_id);
CREATE INDEX runs_workflow ON runs (workflow_name, run_id);

CREATE TABLE events (
    seq bigserial PRIMARY KEY,
    event_id text COLLATE "C" NOT NULL,
    run_id text COLLATE "C" NOT NULL,
    event_type text NOT NULL,
    correlation_id text COLLATE "C",
    data bytea NOT NULL,
    created_at timestamptz NOT NULL,
    spec_version integer NOT NULL
);
CREATE UNIQUE INDEX events_run ON events (run_id, event_id);

CREATE TABLE steps (
    run_id text COLLATE "C" NOT NULL,
    step_id text COLLATE "C" NOT NULL,
    generation integer NOT NULL,
    position bigint NOT NULL,
    status text NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (run_id, step_id)
) WITH (fillfactor = 80);

CREATE TABLE waits (
    run_id text COLLATE "C" NOT NULL,
    wait_id text COLLATE "C" NOT NULL,
    status text NOT NULL,
    resume_at timestamptz NOT NULL,
    generation integer NOT NULL,
    position bigint NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (run_id, wait_id)
) WITH (fillfactor = 80);
CREATE INDEX waits_due ON waits (resume_at, run_id, wait_id) WHERE status = 'waiting';

CREATE TABLE hooks (
    run_id text COLLATE "C" NOT NULL,
    hook_id text COLLATE "C" NOT NULL,
    token text NOT NULL,
    status text NOT NULL,
    generation integer NOT NULL,
    position bigint NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (run_id, hook_id)
) WITH (fillfactor = 80);
CREATE UNIQUE INDEX hooks_live_token ON hooks (token) WHERE status = 'active';

CREATE TABLE stream_chunks (
    run_id text COLLATE "C" NOT NULL,
    stream text COLLATE "C" NOT NULL,
    idx bigint NOT NULL,
    data bytea NOT NULL,
    eof boolean NOT NULL DEFAULT false,
    PRIMARY KEY (run_id, stream, idx)
);

CREATE TABLE annotations (
    id text COLLATE "C" PRIMARY KEY,
    run_id text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    scope text NOT NULL,
    scope_id text,
    actor_id text,
    actor_kind text,
    attempt integer NOT NULL,
    idempotency_key text,
    created_at timestamptz NOT NULL,
    body bytea NOT NULL
);
-- Unique per idempotency key (NULLs are distinct: rows without a key never collide). Its
-- (run_id, key) prefix, in the C collation, also serves key-prefix range queries.
CREATE UNIQUE INDEX annotations_key ON annotations (run_id, key, idempotency_key);
CREATE INDEX annotations_time ON annotations (run_id, created_at, id);

CREATE TABLE cursors (
    name text PRIMARY KEY,
    position bigint NOT NULL
);

-- Raised by a batch write whose guards found the runs changed since they were read.
CREATE FUNCTION stale_state() RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'actorflow: a run changed since its state was read'
        USING ERRCODE = 'serialization_failure';
END
$$;
"""

_V2: Final = """
CREATE TABLE leases (
    run_id text COLLATE "C" PRIMARY KEY,
    owner text NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX leases_owner ON leases (owner);
"""

_V3: Final = """
-- A lease's epoch moves each time it passes to another owner: writes fenced with an older
-- epoch come from a stale owner and are refused.
ALTER TABLE leases ADD COLUMN epoch integer NOT NULL DEFAULT 0;
CREATE INDEX hooks_token ON hooks (token);
CREATE TABLE workers (
    worker_id text COLLATE "C" PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    workflows text[] NOT NULL,
    seen_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
"""

_V4: Final = """
-- The claim sweep reads leases by expiry and each dead owner's in run id order (see
-- _pg_leases): the leases of ended runs take the ENDED mark ('-infinity'), runs never claimed
-- get an UNCLAIMED row (owner '', 1970-01-01), and lapsed leases of active runs the LAPSED
-- mark (1970-01-02), so each is read in run id order.
CREATE INDEX leases_expiry ON leases (expires_at, run_id);
CREATE INDEX leases_owner_run ON leases (owner, run_id);
DROP INDEX leases_owner;
UPDATE leases SET expires_at = CASE WHEN run_id IN (
    SELECT run_id FROM runs WHERE status IN ('pending', 'running')
) THEN '1970-01-02 00:00:00+00'::timestamptz ELSE '-infinity'::timestamptz END
WHERE expires_at < now();
INSERT INTO leases (run_id, owner, expires_at, epoch)
    SELECT r.run_id, '', '1970-01-01 00:00:00+00', 0 FROM runs r
    WHERE r.status IN ('pending', 'running')
    AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.run_id = r.run_id);
"""

MIGRATIONS: Final[tuple[str, ...]] = (_V1, _V2, _V3, _V4)
"""Migration ``i + 1`` is ``MIGRATIONS[i]``; each runs once, in order, in one transaction."""


async def migrate(conn: Conn, schema: str, target: str, *, create: bool) -> int:
    """Bring ``schema`` to the current version; a current schema is only read. The version
    reached.

    Migrations run in one transaction under an advisory lock of the schema, so stores
    opening a new schema at once create it once; a role without the right to create
    can still open a schema that is already current. Without ``create``, a missing
    schema is refused before anything is written (``target`` names the database in the
    message).
    """
    latest = len(MIGRATIONS)
    if not create and not await conn.fetchval(HAS_SCHEMA, schema):
        raise StoreConfigurationError(
            f"no actorflow store in schema {schema!r} of {target}: "
            "the schema does not exist, and opening it read-only creates nothing; "
            "check the schema option of the store URL (?schema=, default actorflow), "
            "or let a worker create the store first"
        )
    if await conn.fetchval(HAS_MIGRATIONS, f'"{schema}".migrations'):
        current = await conn.fetchval(SCHEMA_VERSION)
        if current == latest:
            return latest
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1)", lock_key(f"actorflow:migrate:{schema}")
        )
        if not await conn.fetchval(HAS_SCHEMA, schema):
            await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(MIGRATIONS_TABLE)
        current = await conn.fetchval(SCHEMA_VERSION)
        if current > latest:
            raise StoreError(
                f"schema {schema!r} is at version {current}, newer than the "
                f"{latest} this actorflow knows; upgrade actorflow"
            )
        for version in range(current + 1, latest + 1):
            await conn.execute(MIGRATIONS[version - 1])
            await conn.execute("INSERT INTO migrations (version) VALUES ($1)", version)
    return latest
