"""The shared report helpers: one self-contained page, all text escaped, plots inline."""
from __future__ import annotations

import base64
import re

from markupsafe import Markup

from rlaif.report.html import (
    Example,
    Section,
    bar_chart,
    examples,
    figure,
    grid,
    interval_plot,
    metrics,
    new_figure,
    paragraph,
    render_page,
    table,
)
from rlaif.report.markdown import md_table

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _page():
    fig, ax = new_figure(3, 2)
    ax.plot([0, 1], [0, 1])
    ax.set_title(EVIL)  # text in a plot must not leak markup either
    return render_page(f"Report {EVIL}", [
        Section("Summary", [metrics({"accuracy": 0.912345, EVIL: None}, notes={"accuracy": "n = 100"}),
                            EVIL, paragraph("plain")], intro=EVIL),
        Section("Table", [table([{"model": EVIL, "rate": 0.5, "n": 3, "ci": None}], caption=EVIL),
                          table([[1, 2.0]], ["a", "b"])]),
        Section("Plots", [grid([figure(fig, caption=EVIL), EVIL]), figure(fig, fmt="png"),
                          interval_plot(["m1", EVIL], [0.5, 0.6], [0.4, None], [0.6, None], reference=0.5),
                          bar_chart(["x", "y"], [1.0, None])]),
        Section("Examples", [examples([Example(title=EVIL, tag=EVIL, fields={"prompt": EVIL, "a": EVIL,
                                                                             "b": [{"role": "user", "content": EVIL}]},
                                               side_by_side=["a", "b"], notes={"verdict": EVIL})] * 3, limit=2)]),
    ], subtitle=EVIL, meta={"input": EVIL})


def test_page_is_self_contained_and_escaped():
    html = _page()
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html.lower()
    assert "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")  # only in escaped form
    assert "&lt;script&gt;" in html
    # no external assets: every src is a data URI, no http(s) links
    srcs = re.findall(r'src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/") for s in srcs)
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert "1 more not shown" in html
    assert "0.912" in html and "n = 100" in html


def test_svg_plot_carries_no_raw_text():
    fig, ax = new_figure(3, 2)
    ax.set_title(EVIL)
    m = figure(fig)
    assert isinstance(m, Markup)
    svg = base64.b64decode(re.search(r"base64,([^\"]+)", m).group(1)).decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "<script" not in svg and "<img" not in svg  # text drawn as glyph paths, comments escaped


def test_markdown_table_escapes_pipes_and_aligns_numbers():
    md = md_table([{"model": "a|b\nc", "rate": 0.12345, "n": None}, {"model": "d", "rate": 1.0, "n": 4}])
    lines = md.splitlines()
    assert lines[0] == "| model | rate | n |"
    assert lines[1] == "| --- | ---: | ---: |"
    assert lines[2] == "| a\\|b c | 0.123 | \u2014 |"
