"""SQL of the PostgreSQL store: connection options and the read queries.

Every statement names tables without a schema: the store's connections set ``search_path`` to
the store's schema (checked against ``^[a-z_][a-z0-9_]*$`` and quoted). Id and key columns
use the ``C`` collation, so the database orders them exactly as Python orders strings
(cursors, ``list_runs``, key-prefix ranges). The tables are made by ``_pg_migrations``; the
batch write path is in ``_pg_batch``.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import InvalidStoreURLError
from .rows import RUN_CREATED_DATA
from .urls import postgres_parts

# -- options ----------------------------------------------------------------------------------

_SCHEMA_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class PgOptions:
    """Where a store's server and schema are, and how to connect to them."""

    dsn: str
    """The connection URL without actorflow's own options."""
    schema: str
    min_size: int
    max_size: int
    connect_timeout: float
    where: str
    """``host:port``, for messages (never the password)."""
    target: str
    """The database, server and role a connection is for, for messages (never the password)."""

    @property
    def settings(self) -> dict[str, str]:
        """Session settings of every connection."""
        return {"search_path": f'"{self.schema}"', "jit": "off"}

    @property
    def channel(self) -> str:
        """The NOTIFY channel of the schema (at most 63 bytes, as identifiers are)."""
        channel = f"actorflow_{self.schema}"
        return channel if len(channel) <= 63 else f"actorflow_{lock_key(self.schema):x}"


def parse_options(url: str) -> PgOptions:
    """The options of a ``postgresql://`` URL; anything malformed is InvalidStoreURLError."""
    dsn, options = postgres_parts(url)
    blank = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    schema = options.get("schema", blank.get("schema", "actorflow"))
    if not _SCHEMA_NAME.match(schema) or len(schema) > 63:
        raise InvalidStoreURLError(
            f"invalid schema name {schema!r} in PostgreSQL URL: use 1 to 63 lowercase "
            "letters, digits and underscores, not starting with a digit"
        )
    min_size = _size(options, "min_size", 1, url)
    max_size = _size(options, "max_size", max(10, min_size), url)
    if max_size < 1 or min_size > max_size:
        raise InvalidStoreURLError(f"min_size must not exceed max_size (>= 1) in {redacted(url)!r}")
    where = _host_port(dsn)
    return PgOptions(
        dsn, schema, min_size, max_size, _connect_timeout(dsn), where, _target(dsn, where)
    )


def lock_key(text: str) -> int:
    """A signed 64-bit advisory lock key for ``text``."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), signed=True)


def redacted(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()


def _host_port(dsn: str) -> str:
    parts = urlsplit(dsn)
    try:
        port = parts.port
    except ValueError:
        raise InvalidStoreURLError(f"malformed port in PostgreSQL URL {redacted(dsn)!r}") from None
    host = parts.hostname
    if not host:
        query = dict(parse_qsl(parts.query))
        host = query.get("host", "localhost")
        port = int(query["port"]) if query.get("port", "").isdigit() else port
    return f"{host}:{port or 5432}"


def _target(dsn: str, where: str) -> str:
    """``database 'db' on host:port as role 'user'``, from the URL or libpq's variables."""
    parts = urlsplit(dsn)
    query = dict(parse_qsl(parts.query))
    user = unquote(parts.username or "") or query.get("user") or os.environ.get("PGUSER")
    database = (
        unquote(parts.path.lstrip("/"))
        or query.get("database")
        or query.get("dbname")
        or os.environ.get("PGDATABASE")
        or user
    )
    named_database = f"database {database!r}" if database else "the default database"
    named_role = f"role {user!r}" if user else "the default role"
    return f"{named_database} on {where} as {named_role}"


def _connect_timeout(dsn: str) -> float:
    value = dict(parse_qsl(urlsplit(dsn).query)).get("connect_timeout")
    try:
        return float(value) if value else 10.0
    except ValueError:
        raise InvalidStoreURLError(
            f"connect_timeout must be a number in {redacted(dsn)!r}"
        ) from None


def _size(options: dict[str, str], name: str, default: int, url: str) -> int:
    if name not in options:
        return default
    try:
        value = int(options[name])
    except ValueError:
        raise InvalidStoreURLError(f"{name} must be an integer in {redacted(url)!r}") from None
    if value < 0:
        raise InvalidStoreURLError(f"{name} must not be negative in {redacted(url)!r}")
    return value


# -- batch reads ----------------------------------------------------------------------------

LOCK_RUNS: Final = "SELECT 1 FROM runs WHERE run_id = ANY($1::text[]) ORDER BY run_id FOR UPDATE"

FULL_LOAD_EVENTS: Final = 1000
"""Runs with at most this many events are loaded whole (and may be cached by the store)."""

LOAD: Final = """
WITH r AS MATERIALIZED (
    SELECT run_id, body, event_count <= $2 AS small, run_id = ANY($5::text[]) AS releasing
    FROM runs WHERE run_id = ANY($1::text[])
), p AS MATERIALIZED (
    SELECT * FROM unnest($3::text[], $4::text[]) AS p(run_id, cid)
)
SELECT 'r' AS kind, r.run_id, r.body, NULL::text AS key, NULL::text AS idem, r.small AS whole
FROM r
UNION ALL
SELECT 's', s.run_id, s.body, NULL, NULL, NULL FROM steps s JOIN r USING (run_id) WHERE r.small
UNION ALL
SELECT 's', s.run_id, s.body, NULL, NULL, NULL FROM p
    JOIN r ON r.run_id = p.run_id AND NOT r.small
    JOIN steps s ON s.run_id = p.run_id AND s.step_id = p.cid
UNION ALL
SELECT 'w', w.run_id, w.body, NULL, NULL, NULL FROM waits w JOIN r USING (run_id)
    WHERE r.small OR r.releasing
UNION ALL
SELECT 'w', w.run_id, w.body, NULL, NULL, NULL FROM p
    JOIN r ON r.run_id = p.run_id AND NOT r.small AND NOT r.releasing
    JOIN waits w ON w.run_id = p.run_id AND w.wait_id = p.cid
UNION ALL
SELECT 'h', h.run_id, h.body, NULL, NULL, NULL FROM hooks h JOIN r USING (run_id)
    WHERE r.small OR r.releasing
UNION ALL
SELECT 'h', h.run_id, h.body, NULL, NULL, NULL FROM p
    JOIN r ON r.run_id = p.run_id AND NOT r.small AND NOT r.releasing
    JOIN hooks h ON h.run_id = p.run_id AND h.hook_id = p.cid
UNION ALL
SELECT 't', h.run_id, h.body, NULL, NULL, NULL FROM hooks h
    WHERE h.token = ANY($6::text[]) AND h.status = 'active'
UNION ALL
SELECT 'k', a.run_id, NULL, a.key, a.idempotency_key, NULL
    FROM unnest($7::text[], $8::text[], $9::text[]) AS k(run_id, key, idem)
    JOIN annotations a
        ON a.run_id = k.run_id AND a.key = k.key AND a.idempotency_key = k.idem
UNION ALL
SELECT 'l', l.run_id, NULL, l.epoch::text, NULL, NULL FROM leases l
    WHERE l.run_id = ANY($10::text[]) AND l.owner <> ''
UNION ALL
SELECT 'c', l.run_id, NULL, l.epoch::text, l.owner, l.expires_at >= now() FROM leases l
    WHERE l.run_id = ANY($11::text[]) AND l.owner <> ''
"""
"""Everything a plan needs, in one snapshot: ``$1`` runs, ``$2`` the whole-load limit, ``$3``/
``$4`` (run, correlation id) pairs, ``$5`` runs that may release, ``$6`` tokens, ``$7..$9``
idempotency keys, ``$10`` runs written under a lease fence, ``$11`` runs a batch claims. Rows
are ``(kind, run_id, body, key, idem, whole)``; ``whole`` tells whether a run's entities were
all loaded; a lease row has its epoch in ``key``; a claimed run's lease row (``c``) also has
its owner in ``idem`` and in ``whole`` whether it is live by the server's clock (the clock the
write's guard goes by)."""


# -- reads ------------------------------------------------------------------------------------

EVENT_COLUMNS: Final = (
    "event_id, run_id, event_type, correlation_id, data, created_at, spec_version"
)

LIST_EVENTS: Final = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE run_id = $1 AND event_id > $2 ORDER BY event_id LIMIT $3
"""

READ_COMMITTED: Final = f"""
SELECT seq, {EVENT_COLUMNS} FROM events
WHERE seq > $1 AND ($3::text[] IS NULL OR event_type = ANY($3::text[]))
ORDER BY seq LIMIT $2
"""

GET_RUN: Final = f"SELECT r.body, {RUN_CREATED_DATA} AS created FROM runs r WHERE r.run_id = $1"
_STEP_CREATED: Final = (
    "LEFT JOIN events e ON e.run_id = s.run_id AND e.correlation_id = s.step_id "
    "AND e.event_type = 'step_created'"
)
"""The ``step_created`` event of each step ``s``: a step's input is read from it (see
``rows.step_from_row``)."""
GET_STEP: Final = (
    f"SELECT s.body, e.data FROM steps s {_STEP_CREATED} WHERE s.run_id = $1 AND s.step_id = $2"
)
LIST_STEPS: Final = (
    f"SELECT s.body, e.data FROM steps s {_STEP_CREATED} WHERE s.run_id = $1 "
    "ORDER BY s.generation, s.position, s.step_id"
)
LIST_WAITS: Final = (
    "SELECT body FROM waits WHERE run_id = $1 ORDER BY generation, position, wait_id"
)
LIST_HOOKS: Final = (
    "SELECT body FROM hooks WHERE run_id = $1 ORDER BY generation, position, hook_id"
)
DUE_WAITS: Final = """
SELECT run_id, body FROM waits WHERE status = 'waiting' AND resume_at <= $1
ORDER BY resume_at, run_id, wait_id LIMIT $2
"""
GET_HOOK: Final = "SELECT run_id, body FROM hooks WHERE token = $1 AND status = 'active'"
HOOKS_OF_TOKEN: Final = "SELECT run_id, body FROM hooks WHERE token = $1"
GET_CURSOR: Final = "SELECT position FROM cursors WHERE name = $1"
LAST_POSITION: Final = "SELECT coalesce(max(seq), 0) FROM events"
SAVE_CURSOR: Final = """
INSERT INTO cursors (name, position) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position
"""


def list_runs_query(
    statuses: list[str] | None, workflow_name: str | None, cursor: str | None, limit: int
) -> tuple[str, list[Any]]:
    """The ``list_runs`` query for the filters given (one more row than ``limit``)."""
    where: list[str] = []
    args: list[Any] = []
    if statuses is not None:
        args.append(statuses)
        where.append(f"r.status = ANY(${len(args)}::text[])")
    if workflow_name is not None:
        args.append(workflow_name)
        where.append(f"r.workflow_name = ${len(args)}")
    if cursor is not None:
        args.append(cursor)
        where.append(f"r.run_id < ${len(args)}")
    args.append(limit + 1)
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    return (
        f"SELECT r.run_id, r.body, {RUN_CREATED_DATA} AS created FROM runs r {clause}"
        f"ORDER BY r.run_id DESC LIMIT ${len(args)}",
        args,
    )


# -- annotations ------------------------------------------------------------------------------

_ANNOTATIONS: Final = "SELECT run_id, body FROM annotations WHERE run_id = $1"
_ANNOTATION_ORDER: Final = " ORDER BY created_at, id LIMIT $2"

ANNOTATIONS_BY_PREFIX: Final = (
    _ANNOTATIONS + " AND key >= $3 AND key < $4 AND starts_with(key, $3)" + _ANNOTATION_ORDER
)
"""``list_annotations`` with only ``key_prefix`` set: ``$3`` the prefix, ``$4`` the first string
above every string it starts (a range on the ``annotations_key`` index)."""


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string greater than every string starting with ``prefix`` (None: none)."""
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if code == 0xD800:
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None


def annotations_query(
    run_id: str,
    key: str | None,
    key_prefix: str | None,
    scope: str | None,
    scope_id: tuple[str | None] | None,
    actor_id: str | None,
    actor_kind: str | None,
    attempt: int | None,
    since: Any,
    until: Any,
    limit: int,
) -> tuple[str, list[Any]]:
    """The ``list_annotations`` query: every filter in SQL (``key`` wins over ``key_prefix``).

    ``scope_id`` is a one-tuple when the scope id must match (its value may be None).
    """
    args: list[Any] = [run_id, limit]
    sql = _ANNOTATIONS

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if key is not None:
        sql += f" AND key = {arg(key)}"
    elif key_prefix is not None:
        upper = prefix_upper_bound(key_prefix)
        low = arg(key_prefix)
        sql += f" AND key >= {low}"
        if upper is not None:
            sql += f" AND key < {arg(upper)}"
        sql += f" AND starts_with(key, {low})"
    if scope is not None:
        sql += f" AND scope = {arg(scope)}"
    if scope_id is not None:
        if scope_id[0] is None:
            sql += " AND scope_id IS NULL"
        else:
            sql += f" AND scope_id = {arg(scope_id[0])}"
    if actor_id is not None:
        sql += f" AND actor_id = {arg(actor_id)}"
    if actor_kind is not None:
        sql += f" AND actor_kind = {arg(actor_kind)}"
    if attempt is not None:
        sql += f" AND attempt = {arg(attempt)}"
    if since is not None:
        sql += f" AND created_at >= {arg(since)}"
    if until is not None:
        sql += f" AND created_at <= {arg(until)}"
    return sql + _ANNOTATION_ORDER, args


# -- streams ----------------------------------------------------------------------------------

STREAM_TAIL: Final = """
SELECT idx, eof FROM stream_chunks WHERE run_id = $1 AND stream = $2 ORDER BY idx DESC LIMIT 1
"""

READ_CHUNKS: Final = """
(SELECT idx, data, eof FROM stream_chunks
 WHERE run_id = $1 AND stream = $2 AND idx >= $3 ORDER BY idx LIMIT $4)
UNION ALL
(SELECT idx, data, eof FROM (
    SELECT idx, data, eof FROM stream_chunks
    WHERE run_id = $1 AND stream = $2 ORDER BY idx DESC LIMIT 1
 ) last WHERE eof AND idx < $3 AND $4 > 0)
"""
"""Chunks from ``$3`` on; a close marker below ``$3`` is returned alone (as MemoryStore does)."""

APPEND_CHUNKS: Final = """
WITH last AS MATERIALIZED (
    SELECT idx, eof FROM stream_chunks WHERE run_id = $1 AND stream = $2
    ORDER BY idx DESC LIMIT 1
), s AS MATERIALIZED (
    SELECT EXISTS (SELECT 1 FROM runs WHERE run_id = $1) AS run_ok,
           coalesce((SELECT eof FROM last), false) AS closed,
           coalesce((SELECT idx FROM last), -1) AS last_idx
), ins AS (
    INSERT INTO stream_chunks (run_id, stream, idx, data, eof)
    SELECT $1, $2, $3 + u.ord - 1, u.data, u.eof
    FROM unnest($4::bytea[], $5::bool[]) WITH ORDINALITY AS u(data, eof, ord), s
    WHERE s.run_ok AND NOT s.closed AND s.last_idx + 1 = $3
    RETURNING 1
)
SELECT s.run_ok, s.closed, s.last_idx, (SELECT count(*) FROM ins) AS written,
       CASE WHEN (SELECT count(*) FROM ins) > 0
            THEN (SELECT count(*) FROM (SELECT pg_notify($6, $7)) n) END AS notified
FROM s
"""
"""Append ``$4`` (data) / ``$5`` (eof flags) at ``$3`` if the run exists, the stream is open
and ``$3`` is its next index; returns what it found. Two writers racing for one index cannot
both pass: the second insert violates the primary key."""
