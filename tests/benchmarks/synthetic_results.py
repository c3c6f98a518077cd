"""Made-up results with every kind of plot, to test the HTML report: no number here was measured.

``python -m tests.benchmarks.synthetic_results DIR`` writes the page of these results into
DIR, to look at it in a browser.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any, Literal

from benchmarks.model import Comparison, Row, Series, SuiteResult, Target

STORES = ("memory", "sqlite", "postgres")
STEP_GAP_MS = {"memory": 0.2, "sqlite": 1.25, "postgres": 1.3}
PEER_GAP_MS = {"sqlite": 4.1, "postgres": 5.4}
WIDTHS = [1.0, 10.0, 100.0, 1000.0]


def info() -> dict[str, Any]:
    """Metadata of a run, as :func:`benchmarks.report.meta` makes it."""
    return {
        "date": "2026-01-01T00:00:00+00:00",
        "command": "actorflow bench --synthetic",
        "python": "3.11.7",
        "cpus": 2,
        "cpu_model": "Example CPU",
        "sqlite": "3.40.1",
        "platform": "Linux-x86_64",
        "quick": False,
        "postgres": True,
        "postgres_server": "15.5",
    }


def _gaps(rng: random.Random, level: float, steps: int) -> list[float]:
    return [level * rng.lognormvariate(0.0, 0.15) for _ in range(steps)]


def runtime_suite(rng: random.Random, steps: int = 1000) -> SuiteResult:
    """Rows and step-gap curves of actorflow on every store."""
    out = SuiteResult("runtime")
    for store in STORES:
        level = STEP_GAP_MS[store]
        target = Target("<=", 2.5, "median", "≤ 2.5 ms")
        out.rows.append(
            Row("runtime", store, "seq_gap", steps, "ms", level, level * 1.4, steps, target=target)
        )
        out.series.append(
            Series("stso", store, "actorflow", "ms", _gaps(rng, level, steps), list(range(steps)))
        )
    out.notes.append("Synthetic numbers for a test of the report: `nothing` was measured.")
    return out


def peers_suite(rng: random.Random, steps: int = 1000) -> SuiteResult:
    """DBOS's step-gap curves and the comparisons of both engines."""
    out = SuiteResult("peers", peer={"name": "DBOS", "package": "dbos==3.4.0"})
    for store, level in PEER_GAP_MS.items():
        out.series.append(
            Series("stso", store, "dbos", "ms", _gaps(rng, level, steps), list(range(steps)))
        )
        for scenario, size, ours, theirs, unit in (
            ("ttfs", None, 2.1, 4.8, "ms"),
            ("seq_gap", 100, 1.3, 4.1, "ms"),
            ("seq_gap", 1000, 1.25, 5.4, "ms"),
            ("gather", 50, 12.7, 406.0, "ms"),
            ("one_step_runs", 1000, 928.0, 79.0, "runs/s"),
        ):
            better: Literal["lower", "higher"] = "higher" if unit == "runs/s" else "lower"
            if store == "postgres" and scenario == "ttfs":
                ours = theirs * 1.25  # one scenario where the peer is faster
            out.comparisons.append(
                Comparison(
                    scenario, size, store, unit, ours, ours * 1.2, theirs, theirs * 1.3, better
                )
            )
            for engine, value in (("actorflow", ours), ("dbos", theirs)):
                out.rows.append(
                    Row("peers", store, scenario, size, unit, value, value * 1.2, 5, engine=engine)
                )
    return out


def fanout_suite(rng: random.Random) -> SuiteResult:
    """Time to the first and the last branch by width, for both engines."""
    out = SuiteResult("fanout")
    for store in STORES:
        base = STEP_GAP_MS[store]
        first = [base * 2 * rng.uniform(0.9, 1.1) for _ in WIDTHS]
        last = [base * 2 + w * base * 0.3 for w in WIDTHS]
        out.series.append(Series("fanout_first", store, "actorflow", "ms", first, WIDTHS))
        out.series.append(Series("fanout_last", store, "actorflow", "ms", last, WIDTHS))
    for store, base in PEER_GAP_MS.items():
        first = [base * 3 for _ in WIDTHS]
        last = [base * 3 + w * base * 2 for w in WIDTHS]
        out.series.append(Series("fanout_first", store, "dbos", "ms", first, WIDTHS))
        out.series.append(Series("fanout_last", store, "dbos", "ms", last, WIDTHS))
    return out


def streams_suite(rng: random.Random, samples: int = 200) -> SuiteResult:
    """Time-to-first-byte samples per store, and one row with text to escape."""
    out = SuiteResult("streams")
    for store, level in (("memory", 0.5), ("sqlite", 4.7), ("postgres", 3.5)):
        ys = [level * rng.lognormvariate(0.0, 0.3) for _ in range(samples)]
        out.series.append(Series("stream_ttfb", store, "actorflow", "ms", ys))
        out.rows.append(Row("streams", store, "ttfb", None, "ms", level, level * 1.5, samples))
    out.rows.append(Row("streams", "memory", "a<b & c", None, "ms", 1.0, 2.0, 3))
    return out


def every_plot(seed: int = 7) -> list[SuiteResult]:
    """Suites with data for every kind of plot."""
    rng = random.Random(seed)
    return [runtime_suite(rng), peers_suite(rng), fanout_suite(rng), streams_suite(rng)]


if __name__ == "__main__":
    from benchmarks.html_report import write_html

    directory = Path(sys.argv[1])
    write_html(directory, every_plot(), info())
    print(directory / "index.html")
