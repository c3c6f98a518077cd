"""The report as one HTML page: the machine, the command, every suite's tables, and plots.

:func:`page` is pure: results in, HTML out, every piece of text escaped. :func:`write_html`
draws the plots (:mod:`benchmarks.plots`) beside the page; without matplotlib the page still
has every table, and says how to get the plots.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from .model import SuiteResult
from .plots import INSTALL_HINT, Figure, PlottingUnavailable, draw, figures
from .report import (
    SPREAD_NOTE,
    TITLES,
    Table,
    machine_text,
    peer_table,
    row_table,
    store_table,
)

REPORT_HTML = "index.html"
NO_PLOTS = f"Plots need matplotlib: <code>{escape(INSTALL_HINT)}</code>, then run again."
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.2em; }
.machine { color: #555; }
.note { background: #fff6d5; border-left: 4px solid #e0b000; padding: 0.5em 1em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; vertical-align: top; }
th { background: #f0f0f0; text-align: left; }
td.r { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.9em; max-width: 60em; }
code { background: #f4f4f4; padding: 0 0.2em; }
.error { color: #b00020; }
""".strip()


def inline(text: str) -> str:
    """Escaped text, with Markdown's ```code``` and ``**bold**`` spans as HTML."""
    out = escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def table_html(table: Table) -> str:
    """A :class:`~benchmarks.report.Table` as an HTML table."""
    head = "".join(f"<th>{inline(h)}</th>" for h in table.header)
    lines = ["<table>", f"<thead><tr>{head}</tr></thead>", "<tbody>"]
    for row in table.rows:
        cells = "".join(
            f'<td class="{align}">{inline(cell)}</td>'
            for cell, align in zip(row, table.align, strict=True)
        )
        lines.append(f"<tr>{cells}</tr>")
    lines.extend(["</tbody>", "</table>"])
    return "\n".join(lines)


def figure_html(figure: Figure) -> str:
    """A plot: its image, with alt text, and its caption."""
    return (
        f'<figure id="{escape(figure.kind)}">\n'
        f'<img src="{escape(figure.file)}" alt="{escape(figure.alt)}">\n'
        f"<figcaption><strong>{escape(figure.title)}.</strong> "
        f"{escape(figure.caption)}</figcaption>\n</figure>"
    )


def suite_html(suite: SuiteResult) -> str:
    """One suite's section: its tables, then its notes, skips and errors."""
    parts = [f'<section id="suite-{escape(suite.name)}">']
    parts.append(f"<h2>{inline(TITLES.get(suite.name, suite.name))}</h2>")
    if suite.name == "store" and suite.rows:
        parts.append(table_html(store_table(suite)))
    elif suite.name == "peers" or (suite.peer and suite.rows):
        peer = suite.peer.get("name", "peer")
        if suite.peer:
            details = ", ".join(f"{k}: {v}" for k, v in suite.peer.items())
            parts.append(f"<p>Peer: {escape(details)}</p>")
        if suite.comparisons:
            parts.append(table_html(peer_table(suite.comparisons, peer)))
        if suite.rows:
            parts.append(f"<p>All rows ({escape(peer)} and actorflow):</p>")
            parts.append(table_html(row_table(suite.rows, engines=True)))
    elif suite.rows:  # an engine column if a suite measured its peer itself
        engines = any(row.engine != "actorflow" for row in suite.rows)
        parts.append(table_html(row_table(suite.rows, engines=engines)))
    items = [f"<li>{inline(note)}</li>" for note in suite.notes]
    items.extend(f"<li>Skipped: {inline(item)}</li>" for item in suite.skipped)
    items.extend(
        f'<li class="error"><strong>Error</strong>: {inline(e)}</li>' for e in suite.errors
    )
    if items:
        parts.extend(["<ul>", *items, "</ul>"])
    parts.append("</section>")
    return "\n".join(parts)


def page(
    suites: Sequence[SuiteResult],
    info: dict[str, Any],
    drawn: Sequence[Figure] = (),
    note: str | None = None,
) -> str:
    """The whole page: the command and machine, ``note`` (raw HTML: why plots are missing),
    the ``drawn`` figures, and every suite's section."""
    head = (
        f"<code>{escape(str(info['command']))}</code> — {escape(str(info['date']))}, "
        f"{escape(machine_text(info))}"
        + (" — <strong>quick mode</strong>" if info["quick"] else "")
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>actorflow benchmarks</title>",
        f"<style>\n{STYLE}\n</style>",
        "</head>",
        "<body>",
        "<h1>actorflow benchmarks</h1>",
        f'<p class="machine">{head}</p>',
        f"<p>{escape(SPREAD_NOTE).replace('**', '')}</p>",
    ]
    if note is not None:
        parts.append(f'<p class="note">{note}</p>')
    if drawn:
        parts.append('<section id="plots">\n<h2>Plots</h2>')
        parts.extend(figure_html(f) for f in drawn)
        parts.append("</section>")
    parts.extend(suite_html(s) for s in suites)
    parts.extend(["</body>", "</html>"])
    return "\n".join(parts) + "\n"


def write_html(directory: Path, suites: Sequence[SuiteResult], info: dict[str, Any]) -> bool:
    """Write the page (``index.html``) and its plots into ``directory``; False if there was
    something to plot but matplotlib is missing (the page then says how to get it)."""
    directory.mkdir(parents=True, exist_ok=True)
    planned = figures(suites)
    try:
        drawn, note = draw(planned, directory) if planned else [], None
    except PlottingUnavailable:
        drawn, note = [], NO_PLOTS
    (directory / REPORT_HTML).write_text(page(suites, info, drawn, note), encoding="utf-8")
    return note is None
