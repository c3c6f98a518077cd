"""The HTML report's plots: from the suites' series and comparisons to PNG files.

Choosing what to draw is pure (:func:`figures`): a figure is planned only when its data
exists, so no plot is ever empty. Drawing (:func:`draw`) needs matplotlib, the ``bench``
extra; it is imported there only, and its absence raises :class:`PlottingUnavailable`.
Figures are drawn on matplotlib's Agg canvas (no display, no pyplot state) at 100 dpi.

The figures, each from the series or comparisons of every suite:

* ``stso`` — the gap between steps by step index, a line per store and engine;
* ``fanout`` — time to the first and to the last branch by fan-out width (log x);
* ``stream_ttfb`` — the time-to-first-byte samples, a box per store and engine, the streams
  suite's (``stream_ttfb_streams``) beside the reference suite's;
* ``compare-SUITE`` — actorflow beside a peer engine: a bar per scenario and store.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING

from .model import STREAMS_TTFB, Comparison, Series, SuiteResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure as MplFigure

DPI = 100
MAX_POINTS = 250
"""A longer curve is drawn as the medians of bins of consecutive points."""
LOG_SPREAD = 10.0
"""Values whose typical levels differ by more than this factor get a log axis."""
STORE_COLORS = {"memory": "#1f77b4", "sqlite": "#ff7f0e", "postgres": "#2ca02c"}
OTHER_COLORS = ("#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
ENGINE_STYLES = {"actorflow": ("-", "o")}
PEER_STYLE = ("--", "s")
INSTALL_HINT = "pip install 'actorflow[bench]'"
SOURCES = {STREAMS_TTFB: "streams suite", "stream_ttfb": "reference suite"}
"""Series kinds drawn in another kind's figure, and what their labels add to tell them apart."""


class PlottingUnavailable(RuntimeError):
    """matplotlib is not installed: the report is written without its plots."""


@dataclass(frozen=True)
class Figure:
    """One planned plot: its PNG's file name, the page's text for it, and its data."""

    kind: str
    file: str
    title: str
    alt: str
    caption: str
    series: Sequence[Series] = field(default_factory=tuple)
    comparisons: Sequence[Comparison] = field(default_factory=tuple)
    peer: str = "peer"


def series_of(suites: Sequence[SuiteResult], *kinds: str) -> list[Series]:
    """Every series of ``kinds`` with at least one value, in the suites' order; of series of
    one kind, store and engine (actorflow's gaps, measured by the runtime suite and again
    beside a peer) the first."""
    seen: set[tuple[str, str, str]] = set()
    out: list[Series] = []
    for suite in suites:
        for s in suite.series:
            key = (s.kind, s.store, s.engine)
            if s.kind in kinds and s.y and key not in seen:
                seen.add(key)
                out.append(s)
    return out


def label(series: Series) -> str:
    """A line's name in a legend: ``actorflow, sqlite`` (``actorflow, sqlite, streams suite``
    for a kind in :data:`SOURCES`)."""
    source = SOURCES.get(series.kind)
    return f"{series.engine}, {series.store}" + (f", {source}" if source else "")


def _names(series: Sequence[Series]) -> str:
    seen = dict.fromkeys(label(s) for s in series)
    return "; ".join(seen)


def _unit(series: Sequence[Series]) -> str:
    return series[0].unit if series else ""


def figures(suites: Sequence[SuiteResult]) -> list[Figure]:
    """The figures the results have data for, in the page's order."""
    out: list[Figure] = []
    stso = series_of(suites, "stso")
    if stso:
        out.append(
            Figure(
                "stso",
                "stso.png",
                "Gap between steps, by step index",
                f"Line chart of the gap between consecutive steps ({_unit(stso)}) against the "
                f"step's index in the run, one line per engine and store: {_names(stso)}.",
                "Each point is the time from one step's end to the next step's start at that "
                "index; a flat line means the gap does not grow as the run's log does."
                + _bin_text(stso_bin(stso)),
                series=stso,
            )
        )
    fanout = series_of(suites, "fanout_first", "fanout_last")
    if fanout:
        out.append(
            Figure(
                "fanout",
                "fanout.png",
                "Fan-out: time to the first and the last branch, by width",
                f"Line charts of the time ({_unit(fanout)}) from the fan-out's start to its "
                "first and to its last branch running, against the number of branches (log "
                f"scale), one line per engine and store: {_names(fanout)}.",
                "Left: time until the first branch runs; right: until the last one does. "
                "Widths on a log scale.",
                series=fanout,
            )
        )
    ttfb = series_of(suites, "stream_ttfb", STREAMS_TTFB)
    if ttfb:
        out.append(
            Figure(
                "stream_ttfb",
                "stream_ttfb.png",
                "Streams: time to first byte",
                f"Box plot of the stream time-to-first-byte samples ({_unit(ttfb)}), one box "
                f"per engine and store: {_names(ttfb)}.",
                "From starting the run to a reader holding the first chunk. Boxes span the "
                "quartiles, the line is the median, whiskers reach 1.5 times the box; dots are "
                "the samples beyond.",
                series=ttfb,
            )
        )
    for suite in suites:
        drawable = [c for c in suite.comparisons if 0 < speedup(c) < math.inf]
        if drawable:
            peer = suite.peer.get("name", "peer")
            out.append(
                Figure(
                    "compare",
                    f"compare-{_slug(suite.name)}.png",
                    f"actorflow against {peer}",
                    f"Bar chart of how many times faster actorflow is than {peer} on each "
                    "scenario and store, on a log scale with a line at 1: "
                    + "; ".join(_compare_text(c) for c in drawable)
                    + ".",
                    f"A bar right of the line at 1 means actorflow is faster: {peer}'s median "
                    f"over actorflow's for times, actorflow's over {peer}'s for rates. The "
                    "tables below have the medians and p95s.",
                    comparisons=drawable,
                    peer=peer,
                )
            )
    return out


def _bin_text(size: int) -> str:
    if size <= 1:
        return ""
    return f" Drawn as the median of every {size} consecutive steps."


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "-", name.lower()).strip("-") or "suite"


def speedup(comparison: Comparison) -> float:
    """How many times faster actorflow is: peer/ours for times, ours/peer for rates."""
    ours, peer = comparison.ours_median, comparison.peer_median
    if comparison.better == "higher":
        return ours / peer if peer else float("inf")
    return peer / ours if ours else float("inf")


def scenario_label(comparison: Comparison) -> str:
    """``gather n=50``, or the scenario alone without a size."""
    if comparison.size is None:
        return comparison.scenario
    return f"{comparison.scenario} n={comparison.size:,}"


def _compare_text(c: Comparison) -> str:
    return f"{scenario_label(c)} on {c.store} {speedup(c):.2g}x"


def spread(levels: Sequence[float]) -> float:
    """The largest positive level over the smallest (1 with fewer than two)."""
    positive = [v for v in levels if v > 0]
    if len(positive) < 2:
        return 1.0
    return max(positive) / min(positive)


def wants_log(series: Sequence[Series]) -> bool:
    """Whether the series' medians differ by more than :data:`LOG_SPREAD` (all positive)."""
    if any(v <= 0 for s in series for v in s.y):
        return False
    return spread([median(s.y) for s in series]) > LOG_SPREAD


def color(store: str) -> str:
    """A store's color, the same in every figure."""
    if store in STORE_COLORS:
        return STORE_COLORS[store]
    return OTHER_COLORS[sum(map(ord, store)) % len(OTHER_COLORS)]


def style(engine: str) -> tuple[str, str]:
    """An engine's line style and marker: actorflow solid with dots, a peer dashed."""
    return ENGINE_STYLES.get(engine, PEER_STYLE)


def xs(series: Series) -> list[float]:
    """The series' x values: its own, else the index from 1."""
    return list(series.x) if series.x else [float(i) for i in range(1, len(series.y) + 1)]


def bin_size(points: int, most: int = MAX_POINTS) -> int:
    """How many consecutive points :func:`binned` puts in a bin to draw at most ``most``."""
    return max(1, -(-points // most))


def binned(x: Sequence[float], y: Sequence[float], size: int) -> tuple[list[float], list[float]]:
    """The medians of ``x`` and of ``y`` over bins of ``size`` consecutive points."""
    if size <= 1:
        return list(x), list(y)
    starts = range(0, len(y), size)
    return (
        [median(x[i : i + size]) for i in starts],
        [median(y[i : i + size]) for i in starts],
    )


def stso_bin(series: Sequence[Series]) -> int:
    """The bin size of the step-gap figure: one for all its lines, from the longest."""
    return bin_size(max((len(s.y) for s in series), default=0))


# -- drawing (matplotlib) ---------------------------------------------------------------------


def draw(figures_: Sequence[Figure], directory: Path) -> list[Figure]:
    """Draw each figure to ``directory / figure.file``; the figures drawn.

    :class:`PlottingUnavailable` if matplotlib cannot be imported.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure as MplFigure
    except ImportError as exc:
        raise PlottingUnavailable(f"plots need matplotlib: {INSTALL_HINT} ({exc})") from None
    directory.mkdir(parents=True, exist_ok=True)
    for figure in figures_:
        fig = MplFigure(figsize=size(figure), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        DRAWERS[figure.kind](fig, figure)
        fig.suptitle(figure.title, fontsize="large")
        _save(fig, directory / figure.file)
    return list(figures_)


def size(figure: Figure) -> tuple[float, float]:
    """A figure's size in inches: wider for two fan-out panels or many boxes, taller for
    many bars, so no label runs into another."""
    if figure.kind == "fanout" and _panels(figure.series) > 1:
        return 10.0, 4.5
    if figure.kind == "stream_ttfb":
        return max(8.0, 1.2 * len(figure.series) + 1.5), 4.8
    if figure.kind == "compare":
        rows = len(dict.fromkeys(scenario_label(c) for c in figure.comparisons))
        stores = len(dict.fromkeys(c.store for c in figure.comparisons))
        return 8.5, max(4.5, 0.2 * rows * stores + 1.2)
    return 8.0, 4.5


def _log(ax: Axes, which: str, values: Sequence[float], ticks: Sequence[float] = ()) -> None:
    """A log axis with its ticks written as plain numbers: at ``ticks`` if given, else at 1,
    2 and 5 of each decade (1 alone when ``values`` span more than three decades)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    axis = ax.yaxis if which == "y" else ax.xaxis
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    if ticks:
        axis.set_major_locator(FixedLocator(list(ticks)))
    else:
        subs = (1.0,) if spread(values) > 1000 else (1.0, 2.0, 5.0)
        axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.10g}"))
    axis.set_minor_formatter(NullFormatter())


def _save(fig: MplFigure, path: Path) -> None:
    """Save as a PNG of 128 colors: a third of the size of matplotlib's RGBA, as sharp."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=128).save(path, format="PNG", optimize=True)


def _legend(ax: Axes) -> None:
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _draw_stso(fig: MplFigure, figure: Figure) -> None:
    ax = fig.subplots()
    size = stso_bin(figure.series)
    many = max(len(s.y) for s in figure.series) > 60
    for s in figure.series:
        line, marker = style(s.engine)
        x, y = binned(xs(s), s.y, size)
        ax.plot(
            x,
            y,
            linestyle=line,
            marker=None if many else marker,
            markersize=3,
            linewidth=1.2 if many else 1.4,
            color=color(s.store),
            label=label(s),
        )
    ax.set_xlabel("step index in the run")
    what = "gap between steps" if size <= 1 else f"gap between steps, median of {size}"
    ax.set_ylabel(f"{what} ({_unit(figure.series)})")
    if wants_log(figure.series):
        _log(ax, "y", [v for s in figure.series for v in s.y])
    else:
        ax.set_ylim(bottom=0)
    ax.grid(True, which="major", alpha=0.3)
    _legend(ax)


def _panels(series: Sequence[Series]) -> int:
    return len({s.kind for s in series})


FANOUT_PANELS = (
    ("fanout_first", "first branch running"),
    ("fanout_last", "last branch running"),
)


def _draw_fanout(fig: MplFigure, figure: Figure) -> None:
    panels = [(k, t) for k, t in FANOUT_PANELS if any(s.kind == k for s in figure.series)]
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    log_y = wants_log(figure.series)
    widths = sorted({v for s in figure.series for v in xs(s)})
    for ax, (kind, title) in zip(axes, panels, strict=True):
        for s in (s for s in figure.series if s.kind == kind):
            line, marker = style(s.engine)
            ax.plot(xs(s), s.y, linestyle=line, marker=marker, color=color(s.store), label=label(s))
        _log(ax, "x", widths, widths if len(widths) <= 8 else ())
        if log_y:
            _log(ax, "y", [v for s in figure.series for v in s.y])
        ax.set_title(f"time to {title}", fontsize="medium")
        ax.set_xlabel("fan-out width (branches, log scale)")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel(f"time from the fan-out's start ({_unit(figure.series)})")
    if not log_y:
        axes[0].set_ylim(bottom=0)
    _legend(axes[-1])


def _draw_ttfb(fig: MplFigure, figure: Figure) -> None:
    ax = fig.subplots()
    groups = figure.series
    boxes = ax.boxplot(
        [s.y for s in groups],
        patch_artist=True,
        widths=0.5,
        medianprops={"color": "black"},
        flierprops={"markersize": 3, "alpha": 0.5},
    )
    ax.set_xticks(
        range(1, len(groups) + 1),
        ["\n".join([*label(s).split(", "), f"(n={len(s.y)})"]) for s in groups],
    )
    for patch, s in zip(boxes["boxes"], groups, strict=True):
        patch.set_facecolor(color(s.store))
        patch.set_alpha(0.6)
    ax.set_ylabel(f"time to first byte ({_unit(groups)})")
    if wants_log(groups):
        _log(ax, "y", [v for s in groups for v in s.y])
    else:
        ax.set_ylim(bottom=0)
    ax.grid(True, axis="y", alpha=0.3)


def _draw_compare(fig: MplFigure, figure: Figure) -> None:
    ax = fig.subplots()
    rows = list(dict.fromkeys(scenario_label(c) for c in figure.comparisons))
    stores = list(dict.fromkeys(c.store for c in figure.comparisons))
    height = 0.8 / len(stores)
    for i, store in enumerate(stores):
        mine = {scenario_label(c): c for c in figure.comparisons if c.store == store}
        at = [
            r + (i - (len(stores) - 1) / 2) * height for r, name in enumerate(rows) if name in mine
        ]
        values = [speedup(mine[name]) for name in rows if name in mine]
        bars = ax.barh(
            at,
            [v - 1.0 for v in values],
            left=1.0,
            height=height * 0.9,
            color=color(store),
            label=store,
        )
        ax.bar_label(
            bars, [f"{v:.2g}\N{MULTIPLICATION SIGN}" for v in values], padding=3, fontsize="small"
        )
    ax.set_yticks(range(len(rows)), rows)
    ax.invert_yaxis()
    every = [speedup(c) for c in figure.comparisons]
    _log(ax, "x", every)
    ax.set_xlim(min(*every, 1.0) / 1.8, max(*every, 1.0) * 1.8)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xlabel(f"times faster than {figure.peer} (log scale; right of 1: actorflow faster)")
    ax.grid(True, axis="x", which="major", alpha=0.3)
    _legend(ax)


DRAWERS = {
    "stso": _draw_stso,
    "fanout": _draw_fanout,
    "stream_ttfb": _draw_ttfb,
    "compare": _draw_compare,
}
