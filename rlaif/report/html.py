"""Self-contained HTML reports: one file, no external assets, every piece of text escaped.

The API is a page of sections, each a list of blocks. A block is either a plain
string (rendered as an escaped paragraph) or the `Markup` returned by one of the
helpers below. Helpers escape everything they are given, so model text, prompts
and model names can be passed as they are::

    from rlaif.report.html import Section, render_page, table, metrics, figure, new_figure, examples, Example

    fig, ax = new_figure(5, 3)
    ax.bar(["x", "y"], [1, 2])
    html = render_page("Judge audit", [
        Section("Summary", [metrics({"position consistency": 0.95, "n pairs": 100})]),
        Section("Per rater", [table([{"rater": "gpt-4", "accuracy": 0.91}]), figure(fig, caption="...")]),
        Section("Flipped pairs", [examples([Example(title="item 7", fields={"prompt": p, "response a": a})])]),
    ])
    rlaif.records.write_text("report.html", html)

Plots are matplotlib figures made without pyplot (no global state, Agg canvas)
and embedded as `data:` URIs: an SVG inside `<img>` cannot run scripts and its
element ids cannot clash with those of another plot on the page.
"""
from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from jinja2 import Environment
from markupsafe import Markup, escape

from rlaif.report.markdown import fmt, table_rows  # one number format for HTML and markdown

_ENV = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)

@dataclass
class Section:
    """A titled part of a page. `blocks` are helper outputs (Markup) or plain strings (paragraphs)."""

    title: str
    blocks: list[Any] = field(default_factory=list)
    intro: str | None = None
    anchor: str | None = None  # id for in-page links; derived from the title when absent


@dataclass
class Example:
    """One collapsible example: a summary line, named texts shown side by side, and notes.

    `fields` maps a label ("prompt", "response a (model x)") to its text; `side_by_side`
    names the labels laid out in columns (e.g. the two responses); `notes` are short
    key/value facts (verdicts, scores) shown as a small table.
    """

    title: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    side_by_side: Sequence[str] = ()
    notes: Mapping[str, Any] = field(default_factory=dict)
    tag: str | None = None  # a short badge after the title ("flipped", "disagree")


CSS = """
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#fff;--soft:#f6f8fa;--accent:#0969da;--bad:#cf222e;--ok:#1a7f37}
*{box-sizing:border-box}
body{font:15px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;color:var(--fg);
 background:var(--bg);margin:0}
main{max-width:1100px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:20px;margin:36px 0 10px;padding-bottom:6px;border-bottom:1px solid var(--line)}
h3{font-size:16px;margin:20px 0 8px}
.sub{color:var(--muted);margin:0 0 8px}.meta{color:var(--muted);font-size:12px}
nav.toc{font-size:13px;margin:14px 0 0}nav.toc a{margin-right:14px;color:var(--accent);text-decoration:none}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px;max-width:100%;display:block;overflow-x:auto}
th,td{border:1px solid var(--line);padding:4px 9px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.null{color:var(--muted);text-align:center}
td.est{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.est .ci{display:block;font-size:11px;color:var(--muted)}
caption{caption-side:bottom;color:var(--muted);font-size:12px;text-align:left;padding-top:4px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0 16px}
.card{border:1px solid var(--line);border-radius:8px;padding:8px 14px;min-width:140px;background:var(--soft)}
.card .v{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}.card .k{color:var(--muted);font-size:12px}
.card .n{color:var(--muted);font-size:11px}
.card.flagged{border-color:#c0392b}.card .flag{font-size:12px;font-weight:600;color:#fff;background:#c0392b;
border-radius:4px;padding:1px 6px;vertical-align:middle}.card.flagged .v{color:var(--muted)}
figure{margin:10px 0 18px}figure img{max-width:100%;height:auto;border:1px solid var(--line);border-radius:6px}
figcaption{color:var(--muted);font-size:12px}
details{border:1px solid var(--line);border-radius:6px;margin:6px 0;background:var(--bg)}
details>summary{cursor:pointer;padding:6px 10px;background:var(--soft);border-radius:6px}
details[open]>summary{border-bottom:1px solid var(--line);border-radius:6px 6px 0 0}
details .body{padding:8px 10px}
.badge{display:inline-block;font-size:11px;padding:0 7px;border-radius:10px;background:#ffebe9;color:var(--bad);
 margin-left:8px;border:1px solid #ffcecb}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:10px}
.label{font-size:12px;font-weight:600;color:var(--muted);margin:6px 0 2px}
pre{white-space:pre-wrap;word-wrap:break-word;background:var(--soft);border:1px solid var(--line);border-radius:6px;
 padding:8px 10px;margin:0;font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;max-height:420px;
 overflow:auto}
.note{color:var(--muted);font-size:13px}.more{color:var(--muted);font-size:12px;margin:4px 0 12px}
"""

_PAGE = _ENV.from_string("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>{{ css }}</style>
</head>
<body>
<main>
<h1>{{ title }}</h1>
{% if subtitle %}<p class="sub">{{ subtitle }}</p>{% endif %}
<p class="meta">{% for k, v in meta %}{{ k }}: {{ v }}{% if not loop.last %} &middot; {% endif %}{% endfor %}</p>
{% if sections|length > 1 %}
<nav class="toc">{% for s in sections %}<a href="#{{ s.anchor }}">{{ s.title }}</a>{% endfor %}</nav>
{% endif %}
{% for s in sections %}
<section id="{{ s.anchor }}">
<h2>{{ s.title }}</h2>
{% if s.intro %}<p class="note">{{ s.intro }}</p>{% endif %}
{% for b in s.blocks %}{{ b }}
{% endfor %}
</section>
{% endfor %}
</main>
</body>
</html>
""")


def render_page(title: str, sections: Iterable[Section], *, subtitle: str | None = None,
                meta: Mapping[str, Any] | None = None, css: str = "") -> str:
    """Render a whole page as one self-contained HTML string.

    `meta` is shown under the title (inputs, counts); a generation time is added.
    `css` is appended to the built-in stylesheet.
    """
    secs = []
    used: set[str] = set()
    for s in sections:
        anchor = s.anchor or _slug(s.title) or "section"
        while anchor in used:
            anchor += "-x"
        used.add(anchor)
        blocks = [b if isinstance(b, Markup) else paragraph(b) for b in s.blocks]
        secs.append({"title": s.title, "intro": s.intro, "anchor": anchor, "blocks": blocks})
    meta_items = list((meta or {}).items())
    meta_items.append(("generated", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")))
    return _PAGE.render(title=title, subtitle=subtitle, meta=meta_items, sections=secs,
                        css=Markup(CSS + css))


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


# ---- blocks ----

def paragraph(text: str, *, note: bool = False) -> Markup:
    """An escaped paragraph (`note=True`: small grey text)."""
    cls = ' class="note"' if note else ""
    return Markup(f"<p{cls}>{escape(text)}</p>")


def heading(text: str) -> Markup:
    """A sub-heading inside a section."""
    return Markup(f"<h3>{escape(text)}</h3>")


_TABLE = _ENV.from_string("""<table>
{% if caption %}<caption>{{ caption }}</caption>{% endif %}
<thead><tr>{% for h in headers %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in rows %}<tr>{% for c in row %}<td{% if c.cls %} class="{{ c.cls }}"{% endif %}>{{ c.text }}</td>
{%- endfor %}</tr>
{% endfor %}
</tbody>
</table>""")


def table(rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]], columns: Sequence[str] | None = None, *,
          headers: Sequence[str] | None = None, caption: str | None = None, digits: int = 3) -> Markup:
    """A table from a list of dicts (columns = keys of the first row unless given) or of lists.

    Numbers are right-aligned and rounded to `digits`; None and NaN show as a dash.
    `headers` relabels the columns for display.
    """
    shown, body = table_rows(rows, columns, headers)
    cells = []
    for r in body:
        line = []
        for v in r:
            if isinstance(v, Markup):  # a cell the caller built (e.g. an estimate over its interval)
                line.append({"text": v, "cls": "est"})
                continue
            is_null = v is None or (isinstance(v, float) and math.isnan(v))
            is_num = isinstance(v, (int, float)) and not isinstance(v, bool)
            line.append({"text": fmt(v, digits), "cls": "null" if is_null else ("num" if is_num else "")})
        cells.append(line)
    return Markup(_TABLE.render(headers=shown, rows=cells, caption=caption))


_CARDS = _ENV.from_string("""<div class="cards">
{% for c in cards %}<div class="card{% if c.flag %} flagged{% endif %}"><div class="v">{{ c.v }}\
{% if c.flag %} <span class="flag">{{ c.flag }}</span>{% endif %}</div><div class="k">{{ c.k }}</div>
{% if c.n %}<div class="n">{{ c.n }}</div>{% endif %}</div>
{% endfor %}</div>""")


def metrics(items: Mapping[str, Any], *, notes: Mapping[str, str] | None = None, digits: int = 3,
            flags: Mapping[str, str] | None = None) -> Markup:
    """Headline numbers as cards: `{"accuracy": 0.91, ...}`; `notes` adds a small line per key (e.g. "n = 100");
    `flags` a visible mark beside a number that should not be read as it looks (e.g. "no signal")."""
    notes, flags = notes or {}, flags or {}
    cards = [{"k": k, "v": fmt(v, digits), "n": notes.get(k), "flag": flags.get(k)} for k, v in items.items()]
    return Markup(_CARDS.render(cards=cards))


def grid(blocks: Sequence[Markup], *, min_width: int = 420) -> Markup:
    """Lay blocks (plots, tables) out side by side, wrapping on narrow screens."""
    inner = "".join(f"<div>{b if isinstance(b, Markup) else escape(b)}</div>" for b in blocks)
    return Markup(f'<div class="cols" style="grid-template-columns:repeat(auto-fit,minmax({int(min_width)}px,1fr))">'
                  f"{inner}</div>")


_EXAMPLES = _ENV.from_string("""{% if heading %}<h3>{{ heading }}</h3>{% endif %}
{% for e in items %}<details>
<summary>{{ e.title }}{% if e.tag %}<span class="badge">{{ e.tag }}</span>{% endif %}</summary>
<div class="body">
{% if e.notes %}<table><tbody>{% for k, v in e.notes %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}
</tbody></table>{% endif %}
{% for seg in e.segments %}{% if seg.cols %}<div class="cols">{% for k, v in seg.fields %}
<div><div class="label">{{ k }}</div><pre>{{ v }}</pre></div>{% endfor %}</div>
{% else %}{% for k, v in seg.fields %}<div class="label">{{ k }}</div><pre>{{ v }}</pre>
{% endfor %}{% endif %}{% endfor %}
</div>
</details>
{% endfor %}
{% if more %}<p class="more">{{ more }} more not shown.</p>{% endif %}
""")


def examples(items: Iterable[Example], *, heading: str | None = None, limit: int = 50) -> Markup:
    """A collapsible list of examples (each a `<details>`), at most `limit` shown, all text escaped."""
    items = list(items)
    shown = []
    for e in items[:limit]:
        # fields keep their order; consecutive side-by-side fields share one row of columns
        segments: list[dict] = []
        for k, v in e.fields.items():
            cols = k in e.side_by_side
            if not segments or segments[-1]["cols"] != cols:
                segments.append({"cols": cols, "fields": []})
            segments[-1]["fields"].append((k, _text(v)))
        shown.append({"title": e.title, "tag": e.tag, "notes": [(k, fmt(v)) for k, v in e.notes.items()],
                      "segments": segments})
    return Markup(_EXAMPLES.render(items=shown, heading=heading, more=max(0, len(items) - limit)))


def _text(v: Any) -> str:
    """Text of a field: chat message lists are shown one turn per paragraph."""
    if isinstance(v, list) and all(isinstance(m, Mapping) for m in v):
        return "\n\n".join(f"[{m.get('role', '?')}] {m.get('content', '')}" for m in v)
    return "" if v is None else str(v)


# ---- plots ----

def new_figure(width: float = 6.0, height: float = 3.5, *, nrows: int = 1, ncols: int = 1):
    """A matplotlib Figure on an Agg canvas (no pyplot, no display needed) and its axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols)
    return fig, axes


def save_figure(fig, buf: io.BytesIO, *, fmt: str = "svg", dpi: float | str = "figure") -> None:
    """Save `fig` with every text as plain text: model and rater names are data, and mathtext would
    render `$x$` as math or fail on `$\\frac$` (ParseFatalException) after the JSON was written."""
    import matplotlib
    from matplotlib.text import Text

    for t in fig.findobj(Text):
        t.set_parse_math(False)
    # Text drawn as paths: the SVG needs no fonts and carries no raw text to escape. Tick labels made
    # while drawing read text.parse_math from here.
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "rlaif", "text.parse_math": False}):
        fig.savefig(buf, format=fmt, dpi=dpi)


def figure(fig, *, caption: str | None = None, fmt: str = "svg", dpi: int = 110, alt: str = "plot") -> Markup:
    """Embed a matplotlib figure as an `<img>` with a data URI (`fmt`: "svg" or "png")."""
    if fmt not in ("svg", "png"):
        raise ValueError("fmt must be 'svg' or 'png'")
    buf = io.BytesIO()
    save_figure(fig, buf, fmt=fmt, dpi=dpi)
    mime = "image/svg+xml" if fmt == "svg" else "image/png"
    uri = f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return Markup(f'<figure><img alt="{escape(alt)}" src="{uri}">{cap}</figure>')


def interval_plot(labels: Sequence[str], estimates: Sequence[float], lows: Sequence[float | None],
                  highs: Sequence[float | None], *, xlabel: str = "", reference: float | None = None,
                  caption: str | None = None, title: str | None = None, xlim: tuple[float, float] | None = None
                  ) -> Markup:
    """A forest plot: one row per label, a point and its interval (ratings, win rates, metrics with CIs).

    Rows are drawn top to bottom in the given order; `reference` draws a dashed vertical line (e.g. 0.5).
    """
    n = len(labels)
    fig, ax = new_figure(6.4, max(1.6, 0.32 * n + 0.9))
    ys = list(range(n))[::-1]
    for y, est, lo, hi in zip(ys, estimates, lows, highs, strict=True):
        if est is None:
            continue
        if lo is not None and hi is not None:
            ax.plot([lo, hi], [y, y], color="#0969da", lw=2, solid_capstyle="butt")
        ax.plot([est], [y], "o", color="#1f2328", ms=4)
    if reference is not None:
        ax.axvline(reference, ls="--", color="#8c959f", lw=1)
    ax.set_yticks(ys)
    ax.set_yticklabels([str(x) for x in labels], fontsize=8)
    ax.set_xlabel(xlabel)
    if xlim:
        ax.set_xlim(*padded(xlim))
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return figure(fig, caption=caption, alt=title or xlabel or "interval plot")


def padded(lim: tuple[float, float], share: float = 0.04) -> tuple[float, float]:
    """Axis limits a little wider than the values' range (0..1 for a rate), so a point at an end is drawn
    whole inside the frame rather than cut in half by it."""
    lo, hi = lim
    pad = (hi - lo) * share
    return lo - pad, hi + pad


def bar_chart(labels: Sequence[str], values: Sequence[float | None], *, ylabel: str = "", title: str | None = None,
              reference: float | None = None, caption: str | None = None, ylim: tuple[float, float] | None = None
              ) -> Markup:
    """A simple vertical bar chart (None values are left empty); `reference` draws a dashed line."""
    fig, ax = new_figure(max(3.5, 0.55 * len(labels) + 1.5), 3.2)
    xs = range(len(labels))
    ax.bar(list(xs), [0.0 if v is None else v for v in values], color="#54aeff", edgecolor="#0969da")
    if reference is not None:
        ax.axhline(reference, ls="--", color="#8c959f", lw=1)
    ax.set_xticks(list(xs))
    ax.set_xticklabels([str(x) for x in labels], rotation=30 if len(labels) > 4 else 0, ha="right"
                       if len(labels) > 4 else "center", fontsize=8)
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    if title:
        ax.set_title(title, fontsize=10)
    return figure(fig, caption=caption, alt=title or ylabel or "bar chart")
