"""Rendering results: a paste-ready Markdown report and a JSON document of every number."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .machine import machine
from .model import Comparison, Row, Series, SuiteResult, Target
from .stats import P99_MIN_SAMPLES

DASH = "—"
DEFAULT_GC_THRESHOLD = (700, 10, 10)
"""CPython's cycle collector thresholds unless a run set others (``--gc-threshold``)."""


def fmt(value: float | None) -> str:
    """A number for a table: thousands separators when large, three significant digits else."""
    if value is None:
        return DASH
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 10:
        return f"{value:.2f}"
    if magnitude >= 1:
        return f"{value:.3f}"
    return f"{value:.3g}"


def met_text(row: Row) -> str:
    """``yes``, ``**no**`` or a dash (no target)."""
    if row.met is None:
        return DASH
    return "yes" if row.met else "**no**"


def meta(
    argv: Sequence[str],
    quick: bool,
    postgres: str | None,
    postgres_server: str | None = None,
    program: str = "python -m benchmarks",
) -> dict[str, Any]:
    """Where and how the numbers were measured: the command, the machine (cores, CPU model,
    Python, SQLite) and the PostgreSQL server's version when one was used."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([program, *argv]),
        **machine(),
        "quick": quick,
        "postgres": postgres is not None,
        "postgres_server": postgres_server,
    }


def machine_text(info: dict[str, Any]) -> str:
    """The machine in one line: ``Python 3.12.3, 2 CPUs (model), SQLite 3.45.1, …``."""
    parts = [f"Python {info['python']}", f"{info['cpus']} CPUs ({info['cpu_model']})"]
    level = info.get("sqlite_synchronous")
    mode = f" (synchronous={str(level).upper()})" if level else ""
    if info.get("sqlite_writer") == "loop":
        mode = mode[:-1] + ", writer=loop)" if mode else " (writer=loop)"
    parts.append(f"SQLite {info['sqlite']}{mode}")
    thresholds = info.get("gc_threshold")
    if thresholds and list(thresholds) != list(DEFAULT_GC_THRESHOLD):
        parts.append("gc thresholds " + ",".join(str(t) for t in thresholds))
    if info.get("postgres_server"):
        parts.append(f"PostgreSQL {info['postgres_server']}")
    return ", ".join([*parts, str(info["platform"])])


@dataclass(frozen=True)
class Table:
    """A table's cells as text, for Markdown and HTML alike: ``align`` is ``l`` or ``r`` per
    column; a cell wrapped in ``**`` is emphasized (a target missed)."""

    header: Sequence[str]
    align: Sequence[str]
    rows: Sequence[Sequence[str]]


def _table(header: Sequence[str], align: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |")
    lines.extend("| " + " | ".join(r) + " |" for r in rows)
    return "\n".join(lines)


def _markdown_table(table: Table) -> str:
    return _table(table.header, table.align, table.rows)


def _store_table(suite: SuiteResult) -> str:
    return _markdown_table(store_table(suite))


def store_table(suite: SuiteResult) -> Table:
    """The store suite's table: one row per store and batch size."""
    body: list[list[str]] = []
    for row in suite.rows:
        floor = row.extra.get("floor_median_ms")
        is_floor = row.scenario == "raw_floor"
        body.append(
            [
                row.store,
                "raw floor (1 row)" if is_floor else str(row.size),
                fmt(row.median),
                fmt(row.p95),
                fmt(row.p99),
                spread_text(row),
                fmt(row.rate),
                DASH if is_floor else fmt(floor if isinstance(floor, float) else None),
                fmt(row.ratio),
                row.target.text if row.target else DASH,
                met_text(row),
            ]
        )
    return Table(
        [
            "store",
            "batch",
            "median ms",
            "p95 ms",
            "p99 ms",
            "spread",
            "events/s",
            "floor median ms",
            "x floor",
            "target",
            "met?",
        ],
        ["l", "l", "r", "r", "r", "r", "r", "r", "r", "l", "l"],
        body,
    )


SPREAD_NOTE = (
    "Medians and p95 are over the repetitions of each scenario, p99 where a row has at least "
    f"{P99_MIN_SAMPLES} samples ({DASH} otherwise); **spread** is how far the "
    "repetitions disagree: ±half their interquartile range, as a share of the median."
)


def spread_text(row: Row) -> str:
    """The row's spread between repetitions as ``±x %`` (half the interquartile range over
    the median), or a dash with fewer than 4 samples."""
    if row.spread is None:
        return DASH
    return f"±{row.spread * 50:.2g} %"


def _detail(row: Row) -> str:
    extra = row.extra
    floor = f"; {fmt(row.ratio)}x floor" if row.ratio is not None else ""
    if row.scenario == "ttfs":
        return floor.removeprefix("; ")
    if row.scenario == "seq_gap":
        wall = extra.get("per_step_wall_ms")
        text = f"wall/step {fmt(wall if isinstance(wall, float) else None)} ms"
        return text + (" (step → result)" if row.size == 1 else "") + floor
    if row.scenario == "raw_floor":
        return "one raw durable write (see notes)"
    if row.scenario == "seq_slope":
        growth = extra.get("growth_over_run_pct")
        return f"gap grows {fmt(growth if isinstance(growth, float) else None)} % over the run"
    if row.scenario == "seq_drift":
        early, late = extra.get("early_ms"), extra.get("late_ms")
        if isinstance(early, float) and isinstance(late, float):
            return (
                f"{extra.get('early_window')}: {fmt(early)} ms; "
                f"{extra.get('late_window')}: {fmt(late)} ms"
            )
    if row.scenario == "one_step_runs":
        wall = extra.get("wall_median_ms")
        return f"wall {fmt(wall if isinstance(wall, float) else None)} ms"
    detail = extra.get("detail")
    return detail if isinstance(detail, str) else ""


def _runtime_table(rows: Sequence[Row], engines: bool = False) -> str:
    return _markdown_table(row_table(rows, engines))


def row_table(rows: Sequence[Row], engines: bool = False) -> Table:
    """The table of the runtime suite's shape (and every suite of :data:`ROW_TABLE_SUITES`),
    with an engine column first if ``engines``."""
    body = [
        [
            *([row.engine] if engines else []),
            row.store,
            row.scenario,
            DASH if row.size is None else f"{row.size:,}",
            fmt(row.median),
            fmt(row.p95),
            fmt(row.p99),
            spread_text(row),
            row.unit,
            row.target.text if row.target else DASH,
            met_text(row),
            _detail(row),
        ]
        for row in rows
    ]
    header = [
        "store",
        "scenario",
        "n",
        "median",
        "p95",
        "p99",
        "spread",
        "unit",
        "target",
        "met?",
        "detail",
    ]
    align = ["l", "l", "r", "r", "r", "r", "r", "l", "l", "l", "l"]
    if engines:
        header, align = ["engine", *header], ["l", *align]
    return Table(header, align, body)


def _peer_table(comparisons: Sequence[Comparison], peer: str) -> str:
    return _markdown_table(peer_table(comparisons, peer))


def peer_table(comparisons: Sequence[Comparison], peer: str) -> Table:
    """actorflow beside ``peer``: one row per comparison, with the ratio ours/peer."""
    body = [
        [
            c.scenario,
            DASH if c.size is None else f"{c.size:,}",
            c.store,
            c.unit,
            fmt(c.ours_median),
            fmt(c.peer_median),
            fmt(c.ratio),
            fmt(c.ours_p95),
            fmt(c.peer_p95),
            fmt(c.ours_p99),
            fmt(c.peer_p99),
            "lower" if c.better == "lower" else "higher",
        ]
        for c in comparisons
    ]
    return Table(
        [
            "scenario",
            "n",
            "store",
            "unit",
            "actorflow median",
            f"{peer} median",
            f"actorflow/{peer}",
            "actorflow p95",
            f"{peer} p95",
            "actorflow p99",
            f"{peer} p99",
            "better is",
        ],
        ["l", "r", "l", "l", "r", "r", "r", "r", "r", "r", "r", "l"],
        body,
    )


def _focused_tables(suite: SuiteResult) -> list[str]:
    """The focused suite: the comparison with its peer first, if measured; then every row."""
    if not suite.comparisons:
        return [_runtime_table(suite.rows, engines=bool(suite.peer))]
    peer = suite.peer.get("name", "peer")
    details = ", ".join(f"{k}: {v}" for k, v in suite.peer.items())
    return [
        f"Peer: {details}",
        "",
        _peer_table(suite.comparisons, peer),
        "",
        f"All rows ({peer} and actorflow):",
        "",
        _runtime_table(suite.rows, engines=True),
    ]


def _lists(suite: SuiteResult) -> list[str]:
    parts: list[str] = []
    parts.extend(f"- {note}" for note in suite.notes)
    parts.extend(f"- Skipped: {item}" for item in suite.skipped)
    parts.extend(f"- **Error**: {item}" for item in suite.errors)
    return parts


TITLES = {
    "store": "Store: `create_batch`",
    "runtime": "Runtime",
    "peers": "Peers",
    "streams": "Streams",
    "hooks": "Hooks: resume latency",
    "otel": "OpenTelemetry: cost per step",
    "sleepers": "Sleeping runs: start, memory, recovery (SQLite)",
    "orders": "Orders: CPU per run of a shop's order workflow",
    "focused": "Focused: overhead around steps, fan-out, concurrent runs, recovery",
    "reference": "Reference: the reference suite of an event-sourced workflow engine",
}
ROW_TABLE_SUITES = ("runtime", "streams", "hooks", "otel", "sleepers", "orders")
"""Suites whose rows make one table of the runtime suite's shape."""


def _reference_section(suite: SuiteResult) -> str:
    """The reference or hooks suite: the comparison with its peer first, if one ran beside
    it."""
    if not suite.peer:
        return _runtime_table(suite.rows)
    peer = suite.peer.get("name", "peer")
    details = ", ".join(f"{k}: {v}" for k, v in suite.peer.items())
    parts = [f"Peer: {details}", ""]
    if suite.comparisons:
        parts.extend([_peer_table(suite.comparisons, peer), ""])
    parts.extend([f"All rows ({peer} and actorflow):", "", _runtime_table(suite.rows, True)])
    return "\n".join(parts)


def markdown(suites: Sequence[SuiteResult], info: dict[str, Any]) -> str:
    """The whole report as Markdown."""
    out = ["# actorflow benchmarks", ""]
    out.append(
        f"`{info['command']}` — {info['date']}, {machine_text(info)}"
        + (" — **quick mode**" if info["quick"] else "")
    )
    out.extend(["", SPREAD_NOTE])
    for suite in suites:
        out.extend(["", f"## {TITLES.get(suite.name, suite.name)}", ""])
        if suite.name == "store" and suite.rows:
            out.append(_store_table(suite))
        elif suite.name in ("reference", "hooks") and suite.rows:
            out.append(_reference_section(suite))
        elif suite.name in ROW_TABLE_SUITES and suite.rows:
            if suite.comparisons:  # a suite that measured its peer itself (sleepers)
                details = ", ".join(f"{k}: {v}" for k, v in suite.peer.items())
                peer = suite.peer.get("name", "peer")
                out.extend([f"Peer: {details}", "", _peer_table(suite.comparisons, peer), ""])
            out.append(_runtime_table(suite.rows, engines=bool(suite.comparisons)))
        elif suite.name == "focused" and suite.rows:
            out.extend(_focused_tables(suite))
        elif suite.name == "peers":
            peer = suite.peer.get("name", "peer")
            if suite.peer:
                details = ", ".join(f"{k}: {v}" for k, v in suite.peer.items())
                out.extend([f"Peer: {details}", ""])
            if suite.comparisons:
                out.append(_peer_table(suite.comparisons, peer))
            if suite.rows:
                out.extend(["", f"All rows ({peer} and actorflow):", ""])
                out.append(_runtime_table(suite.rows, engines=True))
        extra = _lists(suite)
        if extra:
            out.extend(["", *extra])
    return "\n".join(out) + "\n"


def _row_json(row: Row) -> dict[str, Any]:
    data = dataclasses.asdict(row)
    data["met"] = row.met
    return data


def _comparison_json(c: Comparison) -> dict[str, Any]:
    data = dataclasses.asdict(c)
    data["ratio"] = c.ratio
    return data


def to_json(suites: Sequence[SuiteResult], info: dict[str, Any]) -> dict[str, Any]:
    """Every suite's rows, comparisons, notes, skips and errors, with the run's metadata."""
    return {
        "meta": info,
        "suites": {
            s.name: {
                "rows": [_row_json(r) for r in s.rows],
                "comparisons": [_comparison_json(c) for c in s.comparisons],
                "notes": s.notes,
                "skipped": s.skipped,
                "errors": s.errors,
                "peer": s.peer,
                "series": [dataclasses.asdict(x) for x in s.series],
            }
            for s in suites
        },
    }


class ResultsFileError(ValueError):
    """A results file that is not what ``--json`` or ``--report`` wrote."""


def from_json(data: Any, where: str = "the results") -> tuple[list[SuiteResult], dict[str, Any]]:
    """The suites and metadata of :func:`to_json` output, to render again (``--from``)."""
    try:
        info = dict(data["meta"])
        suites = []
        for name, body in data["suites"].items():
            rows = []
            for raw in body["rows"]:
                fields = {k: v for k, v in raw.items() if k != "met"}
                target = fields.pop("target", None)
                rows.append(Row(**fields, target=Target(**target) if target else None))
            comparisons = [
                Comparison(**{k: v for k, v in c.items() if k != "ratio"})
                for c in body["comparisons"]
            ]
            suites.append(
                SuiteResult(
                    name,
                    rows=rows,
                    comparisons=comparisons,
                    notes=list(body["notes"]),
                    skipped=list(body["skipped"]),
                    errors=list(body["errors"]),
                    peer=dict(body["peer"]),
                    series=[Series(**x) for x in body.get("series", [])],
                )
            )
    except (KeyError, TypeError, AttributeError) as error:
        raise ResultsFileError(
            f"{where} is not a results file written by actorflow bench --json or --report "
            f"({type(error).__name__}: {error})"
        ) from None
    return suites, info


def write_json(path: Path, suites: Sequence[SuiteResult], info: dict[str, Any]) -> None:
    """Write :func:`to_json` to ``path`` (creating its directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(suites, info), indent=2, ensure_ascii=False) + "\n")
