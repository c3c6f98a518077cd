"""The HTML report of ``actorflow bench --report DIR``: its page, its plots, and the page
without matplotlib. Results are made up (``synthetic_results``); nothing is measured here.

The page is checked as a browser would need it: well nested, every image an existing PNG of
a sane size with alt text, the tables there, every piece of text escaped.
"""

from __future__ import annotations

import asyncio
import json
import struct
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from benchmarks.command import BenchOptions, Planned, bench, write_outputs
from benchmarks.html_report import REPORT_HTML, inline, page, write_html
from benchmarks.model import Comparison, Row, Series, SuiteResult
from benchmarks.plots import (
    PlottingUnavailable,
    bin_size,
    binned,
    draw,
    figures,
    speedup,
    wants_log,
)

from .synthetic_results import every_plot, info

VOID = {"meta", "img", "br", "hr", "link", "input"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Page(HTMLParser):
    """What the checks need of a page, read with the standard library's parser; nesting
    errors are collected instead of raised."""

    open: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    images: list[dict[str, str | None]] = field(default_factory=list)
    tables: int = 0
    text: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs))
        if tag == "table":
            self.tables += 1
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:]}")
        else:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def read_page(directory: Path) -> Page:
    """Parse ``directory``'s page and check what every page must be: well nested, each image
    an existing PNG of a sane size (3 to 150 KB, about 800 by 450 pixels) with alt text."""
    source = (directory / REPORT_HTML).read_text(encoding="utf-8")
    assert source.startswith("<!DOCTYPE html>")
    parsed = Page()
    parsed.feed(source)
    parsed.close()
    assert parsed.problems == [] and parsed.open == []
    for image in parsed.images:
        src, alt = image.get("src"), image.get("alt")
        assert src and alt and len(alt) > 40, image
        png = directory / src
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC), src
        assert 3_000 < len(data) < 150_000, (src, len(data))
        width, height = struct.unpack(">II", data[16:24])
        assert 700 <= width <= 1100 and 400 <= height <= 500, (src, width, height)
    return parsed


def sources(parsed: Page) -> list[str | None]:
    return [image["src"] for image in parsed.images]


def no_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import matplotlib`` (and its submodules, even ones loaded) fail."""
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def stso(store: str, level: float, engine: str = "actorflow") -> Series:
    return Series("stso", store, engine, "ms", [level, level * 1.1, level * 0.9], [1, 2, 3])


def comparison(scenario: str, store: str = "sqlite") -> Comparison:
    return Comparison(scenario, 10, store, "ms", 1.0, 1.2, 4.0, 5.0, "lower")


ONE_KIND = {
    "stso": [SuiteResult("runtime", series=[stso("memory", 0.2), stso("sqlite", 1.2)])],
    "fanout": [
        SuiteResult(
            "fanout",
            series=[
                Series("fanout_first", "memory", "actorflow", "ms", [0.4, 0.5], [1, 100]),
                Series("fanout_last", "memory", "actorflow", "ms", [0.5, 30.0], [1, 100]),
            ],
        )
    ],
    "stream_ttfb": [
        SuiteResult(
            "streams",
            series=[Series("stream_ttfb", "sqlite", "actorflow", "ms", [4.0, 4.5, 5.0, 9.0])],
        )
    ],
    "compare": [
        SuiteResult("peers", comparisons=[comparison("ttfs")], peer={"name": "DBOS"}),
    ],
}
FILES = {
    "stso": "stso.png",
    "fanout": "fanout.png",
    "stream_ttfb": "stream_ttfb.png",
    "compare": "compare-peers.png",
}


# -- the plots ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(ONE_KIND))
def test_each_plot_kind_is_drawn_alone_from_its_data(kind: str, tmp_path: Path) -> None:
    suites = ONE_KIND[kind]
    planned = figures(suites)
    assert [f.kind for f in planned] == [kind]
    assert write_html(tmp_path, suites, info()) is True
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [FILES[kind]]
    parsed = read_page(tmp_path)
    assert sources(parsed) == [FILES[kind]]


def test_the_page_of_every_plot_kind(tmp_path: Path) -> None:
    suites = every_plot()
    assert write_html(tmp_path, suites, info()) is True
    parsed = read_page(tmp_path)
    assert sources(parsed) == ["stso.png", "fanout.png", "stream_ttfb.png", "compare-peers.png"]
    source = (tmp_path / REPORT_HTML).read_text()
    assert source.count("<figcaption>") == 4 and "Plots need matplotlib" not in source
    # a table per suite with rows (not fanout's), two for the peers (comparisons, every row)
    assert parsed.tables == 4
    text = "".join(parsed.text)
    assert "actorflow bench --synthetic" in text and "PostgreSQL 15.5" in text
    assert "SQLite 3.40.1" in text and "2 CPUs (Example CPU)" in text


def test_a_kind_without_data_is_left_out(tmp_path: Path) -> None:
    empty = Series("stream_ttfb", "memory", "actorflow", "ms", [])
    suites = [
        SuiteResult("runtime", series=[stso("memory", 0.2)]),
        SuiteResult(
            "streams", series=[empty], rows=[Row("streams", "memory", "ttfb", None, "ms", 1, 2, 3)]
        ),
        SuiteResult("peers", peer={"name": "DBOS"}),
    ]
    assert [f.kind for f in figures(suites)] == ["stso"]
    write_html(tmp_path, suites, info())
    assert [p.name for p in tmp_path.glob("*.png")] == ["stso.png"]
    assert sources(read_page(tmp_path)) == ["stso.png"]


def test_results_without_any_plot_data_make_a_page_of_tables_only(tmp_path: Path) -> None:
    rows = [Row("runtime", "memory", "ttfs", None, "ms", 0.5, 0.6, 10)]
    assert write_html(tmp_path, [SuiteResult("runtime", rows=rows)], info()) is True
    parsed = read_page(tmp_path)
    assert parsed.images == [] and parsed.tables == 1
    source = (tmp_path / REPORT_HTML).read_text()
    assert 'id="plots"' not in source and "Plots need" not in source
    assert list(tmp_path.glob("*.png")) == []


def test_fanout_with_one_of_its_kinds_draws_one_panel(tmp_path: Path) -> None:
    last = Series("fanout_last", "sqlite", "dbos", "ms", [3.0, 30.0, 300.0], [1, 10, 100])
    (drawn,) = draw(figures([SuiteResult("fanout", series=[last])]), tmp_path)
    data = (tmp_path / drawn.file).read_bytes()
    assert struct.unpack(">II", data[16:24]) == (800, 450)  # one panel: the narrow figure


def test_comparisons_read_as_times_faster_whichever_way_is_better() -> None:
    slower = Comparison("gather", 50, "sqlite", "ms", 10.0, None, 400.0, None, "lower")
    rate = Comparison("one_step_runs", 1000, "sqlite", "runs/s", 900.0, None, 90.0, None, "higher")
    behind = Comparison("ttfs", None, "postgres", "ms", 5.0, None, 4.0, None, "lower")
    assert speedup(slower) == 40.0 and speedup(rate) == 10.0 and speedup(behind) == 0.8
    (figure,) = figures([SuiteResult("peers", comparisons=[slower, rate, behind])])
    assert "gather n=50 on sqlite 40x" in figure.alt and "ttfs on postgres 0.8x" in figure.alt
    assert figure.title == "actorflow against peer"  # no peer name given
    # a median of zero has no ratio to draw on a log axis
    nothing = Comparison("ttfs", None, "sqlite", "ms", 1.0, None, 0.0, None, "lower")
    assert figures([SuiteResult("peers", comparisons=[nothing])]) == []
    (figure,) = figures([SuiteResult("peers", comparisons=[nothing, slower])])
    assert figure.comparisons == [slower]


def test_long_curves_are_drawn_as_bin_medians_and_spread_levels_get_a_log_axis() -> None:
    assert bin_size(100) == 1 and bin_size(1000) == 4 and bin_size(10_000) == 40
    assert binned([1, 2, 3, 4, 5], [5, 1, 3, 9, 7], 2) == ([1.5, 3.5, 5], [3, 6, 7])
    assert binned([1, 2], [3, 4], 1) == ([1, 2], [3, 4])
    assert wants_log([stso("memory", 0.2), stso("sqlite", 5.0)])
    assert not wants_log([stso("memory", 1.0), stso("sqlite", 5.0)])
    long = Series("stso", "memory", "actorflow", "ms", [0.2] * 1000)
    (figure,) = figures([SuiteResult("runtime", series=[long])])
    assert "median of every 4 consecutive steps" in figure.caption


# -- without matplotlib -------------------------------------------------------------------------


def test_without_matplotlib_the_page_has_its_tables_and_says_how_to_get_plots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_matplotlib(monkeypatch)
    suites = every_plot()
    with pytest.raises(PlottingUnavailable, match=r"pip install 'actorflow\[bench\]'"):
        draw(figures(suites), tmp_path)
    assert write_html(tmp_path, suites, info()) is False
    parsed = read_page(tmp_path)
    assert parsed.images == [] and parsed.tables == 4
    assert "Plots need matplotlib: pip install 'actorflow[bench]'" in "".join(parsed.text)
    assert list(tmp_path.glob("*.png")) == []


def test_without_matplotlib_the_command_says_so_and_its_status_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_matplotlib(monkeypatch)

    async def made_up(planned: Planned) -> list[SuiteResult]:
        return every_plot()

    monkeypatch.setattr("benchmarks.command.run_planned", made_up)
    options = BenchOptions(stores=["memory"], report_dir=tmp_path / "rep", argv=["--report"])
    assert asyncio.run(bench(options)) == 0
    out, err = capsys.readouterr()
    assert out.startswith("# actorflow benchmarks")
    assert "index.html has no plots: they need matplotlib, pip install 'actorflow[bench]'" in err
    assert {p.name for p in (tmp_path / "rep").iterdir()} == {
        "report.md",
        "results.json",
        "index.html",
    }


def test_the_command_writes_the_page_and_its_plots_beside_the_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = BenchOptions(report_dir=tmp_path)
    write_outputs(options, every_plot(), info())
    err = capsys.readouterr().err
    assert "report.md, results.json and index.html" in err and "no plots" not in err
    assert len(read_page(tmp_path).images) == 4


# -- escaping -----------------------------------------------------------------------------------


def test_the_page_escapes_text(tmp_path: Path) -> None:
    odd = "a<b & c"
    suites = [
        SuiteResult(
            "streams",
            rows=[Row("streams", "memory", odd, None, "ms", 1.0, 2.0, 3)],
            notes=["<script>alert(1)</script> & `code`"],
            errors=["x < y"],
        ),
        SuiteResult("peers", comparisons=[comparison(odd)], peer={"name": "D&B<"}),
    ]
    meta = {**info(), "command": "actorflow bench '<x>' && true"}
    write_html(tmp_path, suites, meta)
    source = (tmp_path / REPORT_HTML).read_text()
    assert "a&lt;b &amp; c" in source and odd not in source
    assert "<script>" not in source and "&lt;script&gt;" in source
    assert "actorflow bench &#x27;&lt;x&gt;&#x27; &amp;&amp; true" in source
    parsed = read_page(tmp_path)
    text = "".join(parsed.text)
    assert odd in text and "D&B<" in text and "x < y" in text
    (image,) = parsed.images
    assert f"{odd} n=10 on sqlite 4x" in str(image["alt"])  # the parser unescapes attributes


def test_inline_markup_is_escaped_first() -> None:
    assert inline("`a<b>` & **no**") == "<code>a&lt;b&gt;</code> &amp; <strong>no</strong>"
    assert "<p" not in page([], info(), (), None).split("<body>")[1].split("</h1>")[0]


# -- rendering an earlier run again, and figure sizes ------------------------------------------


def test_a_results_file_renders_the_same_report_again(tmp_path: Path) -> None:
    from benchmarks.report import from_json, markdown, to_json

    suites = every_plot()
    data = to_json(suites, info())
    again, meta_again = from_json(json.loads(json.dumps(data)))
    assert markdown(again, meta_again) == markdown(suites, info())
    assert to_json(again, meta_again) == data


def test_bench_from_a_results_file_writes_the_page_without_measuring(tmp_path: Path) -> None:
    from benchmarks.report import write_json

    results = tmp_path / "results.json"
    write_json(results, every_plot(), info())
    status = asyncio.run(bench(BenchOptions(from_path=results, report_dir=tmp_path / "page")))
    assert status == 0
    assert len(read_page(tmp_path / "page").images) == 4
    assert "actorflow bench --synthetic" in (tmp_path / "page" / "report.md").read_text()


@pytest.mark.parametrize(
    ("content", "says"),
    [(None, "cannot read"), ("{not json", "is not JSON"), ('{"suites": {}}', "not a results")],
)
def test_bench_from_a_file_that_is_not_results_says_what_is_wrong(
    tmp_path: Path, content: str | None, says: str
) -> None:
    from benchmarks.report import ResultsFileError

    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ResultsFileError, match=says):
        asyncio.run(bench(BenchOptions(from_path=path)))


def test_a_curve_measured_twice_is_drawn_once() -> None:
    curve = Series("stso", "sqlite", "actorflow", "ms", [1.0, 1.1], [1, 2])
    again = Series("stso", "sqlite", "actorflow", "ms", [1.2, 1.3], [1, 2])
    theirs = Series("stso", "sqlite", "dbos", "ms", [5.0, 5.1], [1, 2])
    suites = [SuiteResult("runtime", series=[curve]), SuiteResult("peers", series=[again, theirs])]
    (stso,) = figures(suites)
    assert list(stso.series) == [curve, theirs]


def test_many_comparisons_make_a_taller_figure_and_many_boxes_a_wider_one() -> None:
    from benchmarks.plots import size

    def compared(n: int) -> SuiteResult:
        rows = [
            Comparison(f"s{i}", 10, store, "ms", 1.0, None, 2.0, None, "lower")
            for i in range(n)
            for store in ("sqlite", "postgres")
        ]
        return SuiteResult("reference", comparisons=rows, peer={"name": "dbos"})

    few, many = figures([compared(3)])[0], figures([compared(40)])[0]
    assert size(few) == (8.5, 4.5) and size(many)[1] > 15
    boxes = [Series("stream_ttfb", f"s{i}", "actorflow", "ms", [1.0]) for i in range(8)]
    (ttfb,) = figures([SuiteResult("streams", series=boxes)])
    assert size(ttfb)[0] > 10
