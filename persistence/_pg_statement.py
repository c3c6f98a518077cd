"""The guarded statement of a PostgreSQL batch write: its SQL and its arguments.

A plan is written by one statement of data-modifying CTEs: first the guards (an ``UPDATE ...
WHERE last_event_id = expected`` per written run, an ``INSERT ... ON CONFLICT DO NOTHING`` per
new run, a check per run decided but not written, a lock per lease fence, an upsert per lease
the plan claims with a new run), then the
commit-order lock, then the events, entities and annotations, the lapse of ended runs' leases
(to the ENDED mark), the UNCLAIMED mark of runs written without a claim (see ``_pg_leases``)
and ``pg_notify``. If a guard finds a run other than expected, the statement raises a
serialization failure (``stale_state()``), so nothing is written. The rows of a part come as
one array per column; a text or integer column as one string the server splits instead (see
``_packed``). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Final, TypeAlias

from ._pg_leases import ENDED, UNCLAIMED
from .batch import BatchPlan
from .events import encode_data
from .rows import annotation_body, entity_body
from .state import HookStatus

LAPSE: Final = -0.000001
"""The lease seconds of a claim whose run the same batch ends: lapsed at once."""

Columns: TypeAlias = tuple[tuple[str, str], ...]
Shape: TypeAlias = tuple[int, ...]
"""Per part (runs updated, runs inserted, runs checked, lease fences, leases claimed, events,
steps, waits, hooks, annotations, ended runs' leases, marked runs, then NOTIFY payloads): 0
rows, 1 row (scalar parameters) or more (``ARRAYS``, or ``PACKED``)."""


def _columns(spec: str) -> Columns:
    """``"name type, ..."`` as ``((name, type), ...)``."""
    pairs = (item.split() for item in spec.split(","))
    return tuple((name, cast) for name, cast in pairs)


_UPD: Final = _columns(
    "run_id text, status text, last_event_id text, event_count int4, body bytea, expected text"
)
_INS: Final = _columns(
    "run_id text, workflow_name text, status text, created_at timestamptz, "
    "last_event_id text, event_count int4, body bytea"
)
_CHK: Final = _columns("run_id text, expected text")
_FEN: Final = _columns("run_id text, epoch int4")
_CLAIMS: Final = _columns("run_id text, owner text, seconds float8, epoch int4")
_EVENTS: Final = _columns(
    "event_id text, run_id text, event_type text, correlation_id text, data bytea, "
    "created_at timestamptz, spec_version int4"
)
_STEPS: Final = _columns(
    "run_id text, step_id text, generation int4, position int8, status text, body bytea"
)
_WAITS: Final = _columns(
    "run_id text, wait_id text, status text, resume_at timestamptz, generation int4, "
    "position int8, body bytea"
)
_HOOKS: Final = _columns(
    "run_id text, hook_id text, token text, status text, generation int4, position int8, body bytea"
)
_ENDED: Final = _columns("run_id text")
_MARKED: Final = _columns("run_id text")
_ANNOTATIONS: Final = _columns(
    "id text, run_id text, key text, scope text, scope_id text, actor_id text, "
    "actor_kind text, attempt int4, idempotency_key text, created_at timestamptz, body bytea"
)


SEP: Final = "\x1f"
"""Between the values of a packed column (ASCII's unit separator)."""
NUL: Final = "\x1e"
"""A NULL in a packed column (ASCII's record separator)."""
_PACKED: Final = frozenset({"text", "int4", "int8"})
"""The column types sent packed: one string the server splits (``string_to_array``), not an
array whose every element the client library checks and encodes one by one (about half a
microsecond each: a tenth of a batch of 100 events)."""
ARRAYS, PACKED = 2, 3
"""A part's kinds of more than one row: an array per column, or its text and integer columns
packed (a value holding a separator is sent as an array)."""


def _rows_class(count: int) -> int:
    """0, 1 (one row: scalar parameters) or 2 (more: one array per column)."""
    return count if count < 2 else ARRAYS


def _packed(column: tuple[Any, ...], cast: str) -> str | None:
    """A text or integer column as one string, values between separators and NULLs as
    ``NUL``; None if a value holds either mark (or is not text)."""
    nulls = column.count(None)
    if nulls:
        column = tuple(NUL if v is None else v for v in column)
    if cast != "text":
        return SEP.join(map(str, column))
    try:
        joined = SEP.join(column)
    except TypeError:
        return None
    if joined.count(SEP) != len(column) - 1 or joined.count(NUL) != nulls:
        return None  # a value holds a mark
    return joined


def _add(
    rows: Sequence[tuple[Any, ...]], columns: Columns, shape: list[int], args: list[Any]
) -> None:
    """Append a part's rows as parameters: one row's values, or per column an array or (text
    and integers) a packed string."""
    if len(rows) < 2:
        shape.append(len(rows))
        if rows:
            args.extend(rows[0])
        return
    values = list(zip(*rows, strict=True))
    packed = [
        _packed(column, cast) if cast in _PACKED else None
        for column, (_, cast) in zip(values, columns, strict=True)
    ]
    if any(p is None for p, (_, cast) in zip(packed, columns, strict=True) if cast in _PACKED):
        shape.append(ARRAYS)
        args.extend(list(column) for column in values)
        return
    shape.append(PACKED)
    args.extend(list(c) if p is None else p for p, c in zip(packed, values, strict=True))


def write_statement(
    plan: BatchPlan,
    checks: dict[str, str],
    lock_key: int,
    channel: str,
    payloads: list[str],
) -> tuple[str, list[Any]]:
    """The one statement that writes ``plan``, guarded, and notifies listeners.

    ``checks`` maps runs the plan decided without writing them to the ``last_event_id`` the
    decision assumed. ``lock_key`` is the advisory lock that orders commits of events. The
    SQL depends only on the batch's shape, so each shape is prepared once per connection.
    """
    expected, new_runs = plan.expected, plan.new_runs
    runs = (
        sorted(plan.runs.values(), key=lambda r: r.run_id)
        if len(plan.runs) > 1
        else plan.runs.values()
    )
    old = [
        (
            r.run_id,
            r.status.value,
            r.last_event_id,
            r.event_count,
            entity_body(r),
            expected[r.run_id],
        )
        for r in runs
        if r.run_id not in new_runs
    ]
    new = [
        (
            r.run_id,
            r.workflow_name,
            r.status.value,
            r.created_at,
            r.last_event_id,
            r.event_count,
            entity_body(r),
        )
        for r in runs
        if r.run_id in new_runs
    ]
    events = [
        (
            e.event_id,
            e.run_id,
            e.event_type,
            e.correlation_id,
            encode_data(e.data),
            e.created_at,
            e.spec_version,
        )
        for e in plan.events
    ]
    steps = [
        (s.run_id, s.step_id, s.generation, s.position, s.status.value, entity_body(s))
        for s in plan.steps.values()
    ]
    waits = [
        (w.run_id, w.wait_id, w.status.value, w.resume_at, w.generation, w.position, entity_body(w))
        for w in plan.waits.values()
    ]
    # Released hooks first, so a token freed and claimed again in one batch never meets its
    # old claim in the live-token index.
    hooks = [
        (h.run_id, h.hook_id, h.token, h.status.value, h.generation, h.position, entity_body(h))
        for h in sorted(plan.hooks.values(), key=lambda h: h.status is HookStatus.ACTIVE)
    ]
    annotations = [
        (
            a.id,
            a.run_id,
            a.key,
            a.scope,
            a.scope_id,
            a.actor_id,
            a.actor_kind,
            a.attempt,
            a.idempotency_key,
            a.created_at,
            annotation_body(a),
        )
        for a in plan.annotation_rows
    ]
    shape: list[int] = []
    args: list[Any] = []
    fences = sorted(plan.fences.items())
    ending = plan.ended
    # A run created and ended in one batch: its lease is taken lapsed (an ended run is
    # nobody's to execute), by the claim alone (one statement changes a row once).
    claims = [
        (run_id, c.owner, LAPSE if run_id in ending else c.seconds, c.epoch)
        for run_id, c in sorted(plan.claims.items())
    ]
    guards: tuple[tuple[Sequence[tuple[Any, ...]], Columns], ...] = (
        (old, _UPD),
        (new, _INS),
        (list(checks.items()), _CHK),
        (fences, _FEN),
        (claims, _CLAIMS),
    )
    for rows, columns in guards:
        _add(rows, columns, shape, args)
    args.append(len(old) + len(new) + len(checks) + len(fences) + len(claims))
    if events:
        args.append(lock_key)
    ended = [(run_id,) for run_id in ending if run_id not in plan.claims]
    # Runs written without a claim (an ended one needs no mark) and runs rerun: disjoint from
    # the claimed and the ended runs, so no row is changed twice.
    marked = [(run_id,) for run_id in plan.unclaimed if run_id not in ending]
    marked += [(run_id,) for run_id in plan.revived]
    writes: tuple[tuple[Sequence[tuple[Any, ...]], Columns], ...] = (
        (events, _EVENTS),
        (steps, _STEPS),
        (waits, _WAITS),
        (hooks, _HOOKS),
        (annotations, _ANNOTATIONS),
        (ended, _ENDED),
        (marked, _MARKED),
    )
    for rows, columns in writes:
        _add(rows, columns, shape, args)
    shape.append(_rows_class(len(payloads)))
    if payloads:
        args.append(channel)
        args.append(payloads[0] if len(payloads) == 1 else payloads)
    return write_sql(tuple(shape)), args


@lru_cache(maxsize=512)
def write_sql(shape: Shape) -> str:
    """The SQL of a batch write of ``shape`` (parameters in :func:`write_statement`'s order)."""
    upd, ins, chk, fen, claims, events, steps, waits, hooks, annotations = shape[:10]
    ended, marked, notify = shape[10:]
    params = iter(range(1, 10_000))

    def source(columns: Columns, kind: int, ordered: bool = False) -> str:
        names = ", ".join(name for name, _ in columns)
        if kind == 1:
            values = ", ".join(f"${next(params)}::{cast}" for _, cast in columns)
            return f"(SELECT {values}) AS u({names})"
        arrays = ", ".join(_array(next(params), cast, kind) for _, cast in columns)
        if ordered:
            return f"unnest({arrays}) WITH ORDINALITY AS u({names}, ord)"
        return f"unnest({arrays}) AS u({names})"

    def order(kind: int) -> str:
        return " ORDER BY u.ord" if kind >= ARRAYS else ""

    ctes: list[str] = []
    guards: list[str] = []
    if upd:
        ctes.append(
            "upd AS (UPDATE runs AS r SET status = u.status, last_event_id = u.last_event_id, "
            f"event_count = u.event_count, body = u.body FROM {source(_UPD, upd)} "
            "WHERE r.run_id = u.run_id AND r.last_event_id = u.expected RETURNING 1)"
        )
        guards.append("(SELECT count(*) FROM upd)")
    if ins:
        ctes.append(
            f"ins AS (INSERT INTO runs ({_names(_INS)}) SELECT u.* FROM {source(_INS, ins)} "
            "ON CONFLICT (run_id) DO NOTHING RETURNING 1)"
        )
        guards.append("(SELECT count(*) FROM ins)")
    if chk:
        ctes.append(
            f"chk AS (SELECT 1 FROM runs AS r JOIN {source(_CHK, chk)} "
            "ON r.run_id = u.run_id AND r.last_event_id = u.expected)"
        )
        guards.append("(SELECT count(*) FROM chk)")
    if fen:  # the lease rows are locked: a claim moving an epoch waits, or makes this fail
        ctes.append(
            f"fen AS (SELECT 1 FROM leases AS l JOIN {source(_FEN, fen)} "
            "ON l.run_id = u.run_id AND l.epoch = u.epoch FOR SHARE OF l)"
        )
        guards.append("(SELECT count(*) FROM fen)")
    if claims:  # taken only as planned: else the batch is planned again on the lease read
        ctes.append(
            "cl AS (INSERT INTO leases AS l (run_id, owner, expires_at, epoch) "
            "SELECT u.run_id, u.owner, CASE WHEN u.seconds < 0 THEN "
            f"{ENDED} ELSE now() + make_interval(secs => u.seconds) END, u.epoch "
            f"FROM {source(_CLAIMS, claims)} ON CONFLICT (run_id) DO UPDATE SET "
            "owner = excluded.owner, expires_at = excluded.expires_at, epoch = excluded.epoch "
            "WHERE (l.owner = excluded.owner AND l.epoch = excluded.epoch) "
            "OR (l.owner <> excluded.owner AND l.expires_at < now() "
            "AND l.epoch + 1 = excluded.epoch) RETURNING 1)"
        )
        guards.append("(SELECT count(*) FROM cl)")
    total = f"${next(params)}::int8"
    ctes.append(f"gate AS MATERIALIZED (SELECT ({' + '.join(guards) or '0'}) = {total} AS ok)")
    gate = "gate"
    if events:
        ctes.append(
            "lk AS MATERIALIZED (SELECT g.ok, pg_advisory_xact_lock("
            f"${next(params)}::int8) AS l FROM gate AS g)"
        )
        gate = "lk"
    when = f"WHERE (SELECT ok FROM {gate})"
    if events:
        ctes.append(
            f"ev AS (INSERT INTO events ({_names(_EVENTS)}) SELECT {_names(_EVENTS, 'u.')} "
            f"FROM {source(_EVENTS, events, True)} {when}{order(events)})"
        )
    for name, table, columns, kind, ordered in (
        ("st", "steps", _STEPS, steps, False),
        ("wt", "waits", _WAITS, waits, False),
        ("hk", "hooks", _HOOKS, hooks, True),
    ):
        if kind:
            ctes.append(
                f"{name} AS (INSERT INTO {table} ({_names(columns)}) "
                f"SELECT {_names(columns, 'u.')} FROM {source(columns, kind, ordered)} "
                f"{when}{order(kind) if ordered else ''} "
                f"ON CONFLICT ({columns[0][0]}, {columns[1][0]}) "
                "DO UPDATE SET status = EXCLUDED.status, body = EXCLUDED.body)"
            )
    if annotations:
        ctes.append(
            f"an AS (INSERT INTO annotations ({_names(_ANNOTATIONS)}) "
            f"SELECT {_names(_ANNOTATIONS, 'u.')} FROM {source(_ANNOTATIONS, annotations)} "
            f"{when})"
        )
    if ended:  # an ended run is nobody's to execute: its lease lapses with the write
        ctes.append(
            f"le AS (UPDATE leases AS l SET expires_at = {ENDED} "
            f"FROM {source(_ENDED, ended)} {when} AND l.run_id = u.run_id "
            f"AND l.expires_at <> {ENDED})"
        )
    if marked:  # no lease row yet: marked; a lease at ENDED: lapsed as an ordinary one
        ctes.append(
            "mk AS (INSERT INTO leases AS l (run_id, owner, expires_at, epoch) "
            f"SELECT u.run_id, '', {UNCLAIMED}, 0 FROM {source(_MARKED, marked)} {when} "
            f"ON CONFLICT (run_id) DO UPDATE SET expires_at = CASE WHEN l.owner = '' "
            f"THEN {UNCLAIMED} ELSE now() - interval '1 microsecond' END "
            f"WHERE l.expires_at = {ENDED})"
        )
    signal = ""
    if notify == 1:
        signal = f", pg_notify(${next(params)}::text, ${next(params)}::text) AS notified"
    elif notify == 2:
        channel, payloads = next(params), next(params)
        signal = (
            f", (SELECT count(*) FROM (SELECT pg_notify(${channel}::text, p) "
            f"FROM unnest(${payloads}::text[]) AS p) AS n) AS notified"
        )
    return (
        "WITH "
        + ",\n".join(ctes)
        + f"\nSELECT CASE WHEN g.ok THEN 0 ELSE stale_state() END AS stale{signal} "
        + f"FROM (SELECT ok FROM {gate}) AS g"
    )


def _array(param: int, cast: str, kind: int) -> str:
    """The SQL of a column's array: the parameter, or its packed string split."""
    if kind == PACKED and cast in _PACKED:
        return f"string_to_array(${param}::text, E'\\x1f', E'\\x1e')::{cast}[]"
    return f"${param}::{cast}[]"


def _names(columns: Columns, prefix: str = "") -> str:
    return ", ".join(prefix + name for name, _ in columns)
