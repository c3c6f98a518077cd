"""The SQLite claim sweep: read by indexes only, and files of schema 3 upgraded to them."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from persistence import Lease
from persistence import _sqlite_leases as leases
from persistence import _sqlite_migrations as migrations
from persistence import events as ev
from persistence.events import NewEvent
from persistence.rows import micros
from persistence.sqlite import SqliteStore

from .helpers import completed, created, lease_kinds, run_id
from .test_sqlite_store import new_run, raw, url_of

pytestmark = pytest.mark.anyio


def sweep_plans(conn: sqlite3.Connection) -> dict[str, list[str]]:
    params = {
        "all": False,
        "workflows": '["wf"]',
        "young": 1,
        "now": 2,
        "dead": '["gone"]',
        "limit": 500,
        "after": "",
        "owner": "gone",
    }
    return {
        part: [str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + query, params)]
        for part, query in leases.SWEEP.items()
    }


def test_each_part_of_the_sweep_reads_by_index_in_run_id_order(tmp_path: Path) -> None:
    with raw(tmp_path / "s.db") as conn:
        migrations.migrate(conn, tmp_path / "s.db")
        plans = sweep_plans(conn)
    for part, plan in plans.items():
        scans = [line for line in plan if line.startswith("SCAN")]
        assert all("json_each VIRTUAL TABLE" in line for line in scans), (part, plan)
        runs = [line for line in plan if line.startswith("SEARCH r ")]
        assert runs and all(
            "PRIMARY KEY (run_id=?)" in line or "runs_status (status=? AND run_id>?)" in line
            for line in runs
        ), (part, plan)
        sorts = [line for line in plan if "TEMP B-TREE FOR ORDER BY" in line]
        assert sorts == ([plan[-1]] if part == "fresh" else []), (part, plan)  # read in order
    expected = {
        "lapsed": "SEARCH l USING COVERING INDEX leases_expiry (expires_at=? AND run_id>?)",
        "fresh": "SEARCH l USING COVERING INDEX leases_expiry (expires_at>? AND expires_at<?)",
        "unclaimed": "SEARCH l USING COVERING INDEX leases_expiry (expires_at=? AND run_id>?)",
        "dead": "SEARCH l USING INDEX leases_owner (owner=? AND run_id>?)",
    }
    for part, line in expected.items():
        assert line in plans[part], (part, plans[part])


def lapsed_range(path: Path) -> set[str]:
    """The run ids whose lease the sweep reads as lapsed (marked LAPSED or not yet)."""
    now = micros(datetime.now(UTC))
    with raw(path) as conn:
        rows = conn.execute(
            "SELECT run_id FROM leases WHERE expires_at >= ? AND expires_at < ?",
            (leases.LAPSED, now),
        ).fetchall()
    return {str(run) for (run,) in rows}


async def test_the_leases_of_ended_runs_leave_the_range_the_sweep_reads(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SqliteStore(url_of(path)) as store:
        ended, released, rerun = [await new_run(store) for _ in range(3)]
        for run in (ended, released, rerun):
            assert await store.claim_run("a", run, 30)
        await store.create_batch([completed(ended), completed(rerun)])
        await store.release_leases("a", [released])
        assert lapsed_range(path) == {released}  # the only one to claim
        again = await store.claim_run("b", ended, 30)  # a second start of an ended id
        unborn = run_id()
        assert await store.claim_run("b", unborn, 30)
        await store.release_leases("b", [ended, unborn])
        assert again == Lease(ended, 2)
        assert lapsed_range(path) == {released}
        await store.create(NewEvent(rerun, ev.RunRerun(generation=1, from_position=0)))
        assert lapsed_range(path) == {released, rerun}
        await store.create(created(unborn))  # written at last, without a claim
        assert lapsed_range(path) == {released, rerun, unborn}
        claimed = await store.claim_runs("c", 30)
        assert claimed == sorted(
            [Lease(released, 2), Lease(rerun, 2), Lease(unborn, 2)], key=lambda x: x.run_id
        )


async def test_a_run_never_claimed_and_rerun_waits_a_lease_as_before(tmp_path: Path) -> None:
    async with SqliteStore(url_of(tmp_path / "s.db")) as store:
        run = await new_run(store)
        await store.create(completed(run))
        await store.create(NewEvent(run, ev.RunRerun(generation=1, from_position=0)))
        assert await store.claim_runs("a", 0.05) == []  # running, no lease, not old yet
        await anyio.sleep(0.1)
        assert await store.claim_runs("a", 0.05) == [Lease(run, 1)]


def downgrade_to_3(path: Path) -> None:
    """Make a current file look as schema 3 left it: no index of leases by expiry, lapsed
    leases (of ended runs too) with the time they lapsed, and no row for runs never claimed."""
    with raw(path) as conn:
        conn.execute("DROP INDEX leases_expiry")
        conn.execute(
            "UPDATE leases SET expires_at = ? WHERE expires_at IN (?, ?)",
            (micros(datetime.now(UTC)) - 5_000_000, leases.ENDED, leases.LAPSED),
        )
        conn.execute("DELETE FROM leases WHERE owner = ''")
        conn.execute("PRAGMA user_version = 3")


def lease_indexes(path: Path) -> set[str]:
    with raw(path) as conn:
        return {str(row[1]) for row in conn.execute("PRAGMA index_list(leases)")}


async def test_a_schema_3_file_gets_the_sweeps_indexes_and_marks_on_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    async with SqliteStore(url_of(path)) as store:
        ended, held, orphan, pending = await lease_kinds(store)
    downgrade_to_3(path)
    assert "leases_expiry" not in lease_indexes(path)
    assert lapsed_range(path) == {ended}
    async with SqliteStore(url_of(path)) as store:
        assert store.schema_version == migrations.SCHEMA_VERSION == 4
        assert {"leases_expiry", "leases_owner"} <= lease_indexes(path)
        assert lapsed_range(path) == set()
        with raw(path) as conn:
            marks = conn.execute("SELECT run_id, expires_at FROM leases WHERE owner = ''")
            assert dict(marks.fetchall()) == {orphan: leases.UNCLAIMED, pending: 1}
        assert await store.claim_runs("b", 30) == [Lease(pending, 1)]  # orphan is young
        assert await store.claim_runs("c", 30, dead=["a"]) == [Lease(held, 2)]
        assert await store.claim_runs("d", 0) == [Lease(orphan, 1)]  # old for no patience


def expiry(path: Path, run: str) -> int:
    with raw(path) as conn:
        return int(
            conn.execute("SELECT expires_at FROM leases WHERE run_id = ?", (run,)).fetchone()[0]
        )


async def test_a_sweep_marks_the_leases_that_lapsed_since_the_last(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SqliteStore(url_of(path)) as store:
        released, unborn = await new_run(store), run_id()
        assert await store.claim_run("a", released, 30)
        assert await store.claim_run("a", unborn, 0.01)  # never written: lapses by time
        await store.release_leases("a", [released])
        assert expiry(path, released) == leases.LAPSED  # by the release: no sweep sorts it
        await anyio.sleep(0.05)
        assert await store.claim_runs("b", 30, workflows=[]) == []  # hosts nothing, marks
        assert expiry(path, released) == leases.LAPSED
        assert expiry(path, unborn) == leases.ENDED
        assert await store.claim_runs("c", 30) == [Lease(released, 2)]
