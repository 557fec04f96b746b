"""audit.html as a new user reads it (issue #23), in headless Chromium where it is installed: points at 0 and 1
drawn whole inside the plot frame, the per-rater tables readable at common widths (no squeezed columns, no
sideways scrolling), and with many raters only the pairs of raters that share items in the agreement table
(16 raters each on their own slice gave 120 empty Cohen's kappa rows)."""
from __future__ import annotations

import base64
import json
import re
from itertools import combinations

import pytest

from rlaif.records import Label, write_jsonl
from tests.support.browser import needs_chromium, opened
from tests.support.cli_helpers import rlaif_inproc as rlaif

N_GROUPS, PER_GROUP, ITEMS = 8, 2, 6  # 16 raters; the 2 raters of a group share its 6 items, no one else's


def _labels() -> list[Label]:
    labels = []
    for g in range(N_GROUPS):
        for i in range(ITEMS):
            item = f"g{g}-{i}"
            for r in range(PER_GROUP):
                rater = f"r{g}{r}"
                if g == 0 and r == 0:  # picks the answer shown first: consistency 0, first-position rate 1
                    wins = ("a", "b")
                else:  # consistent, with a bias for a on some items (so the raters of a group disagree a little)
                    wins = ("a", "a") if (i + r) % 3 else ("b", "b")
                for order, w in zip(("ab", "ba"), wins, strict=True):
                    labels.append(Label(item=item, rater=rater, winner=w, order=order, prompt=f"prompt {item}",
                                        response_a=f"answer a to {item}", response_b=f"answer b to {item}"))
    return labels


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("audit-page")
    write_jsonl(d / "labels.jsonl", _labels())
    r = rlaif("audit", d / "labels.jsonl", "--bootstrap", "100", "-o", d / "out")
    assert r.code == 0, r.stderr
    return d / "out"


def test_only_pairs_of_raters_that_share_items_get_a_kappa(audit_dir):
    agr = json.loads((audit_dir / "audit.json").read_text())["agreement"]
    raters = [f"r{g}{r}" for g in range(N_GROUPS) for r in range(PER_GROUP)]
    sharing = {f"{a}|{b}" for a, b in combinations(raters, 2) if a[1] == b[1]}  # same group
    assert len(sharing) == 8 and agr["n_rater_pairs"] == 120
    assert set(agr["cohen_kappa"]) == sharing and all(e["n"] == ITEMS for e in agr["cohen_kappa"].values())
    md = (audit_dir / "audit.md").read_text()
    assert md.count("cohen\\_kappa r") == 8  # (markdown escapes the underscore)
    note = "Cohen's kappa for the 8 of 120 pairs of raters that judged items in common; the other 112 share no item."
    assert note in md and note in (audit_dir / "audit.html").read_text().replace("&#39;", "'")


def _svgs(html: str) -> list[str]:
    return [base64.b64decode(m).decode() for m in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html)]


def test_points_at_0_and_1_are_drawn_whole_inside_the_frame(audit_dir):
    res = json.loads((audit_dir / "audit.json").read_text())["raters"]
    assert res["r00"]["position_consistency"]["value"] == 0.0 and res["r01"]["position_consistency"]["value"] == 1.0
    assert res["r00"]["first_position_rate"]["value"] == 1.0
    svgs = _svgs((audit_dir / "audit.html").read_text())
    assert len(svgs) == 3  # consistency, first-position, fairness (equal lengths: no length plot; no gold)
    checked = 0
    for svg in svgs[:2]:  # the plots with points at 0 and at 1
        frame = re.search(r'<clipPath id="[^"]+">\s*<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', svg)
        x0, width = float(frame.group(1)), float(frame.group(2))
        radius = 2.0  # the points' marker: 4 pt across
        for m in re.finditer(r'<use xlink:href="#[^"]+" x="([\d.]+)" y="[\d.]+" style="fill: #1f2328', svg):
            x = float(m.group(1))
            assert x0 + radius <= x <= x0 + width - radius, (x, x0, width)  # whole, not cut by the frame
            checked += 1
    assert checked == 32  # 16 raters on each of the two plots


@needs_chromium
@pytest.mark.parametrize("width", [1024, 1366])
def test_rater_tables_are_readable_at_common_widths(audit_dir, width):
    with opened(audit_dir / "audit.html", width=width, console=False) as (page, errors):
        assert errors == [] and page.title() == "Judge and labeler audit"
        tables = page.locator("section").first.locator("table")
        assert tables.count() == 2  # the bias columns, at most five a table
        for t in tables.all():
            # the whole table in view: no column squeezed, nothing scrolled sideways
            assert t.evaluate("t => t.scrollWidth <= t.clientWidth + 1"), t.inner_text()[:200]
            # each estimate cell: its value over its interval and k/n, two lines, never wrapped into more
            lines = t.evaluate("""t => [...t.querySelectorAll('td.est')].map(td => {
                const st = getComputedStyle(td), lh = parseFloat(st.lineHeight);
                const pad = parseFloat(st.paddingTop) + parseFloat(st.paddingBottom);
                return Math.round((td.clientHeight - pad) / lh * 10) / 10; })""")
            assert lines and max(lines) <= 2.0, lines
        invalid = tables.first.locator("td.est").first.inner_text().splitlines()
        assert invalid == ["0.000", "[0.000, 0.000] 0/12"]  # the invalid share of r00's 12 labels
        consistency = tables.first.locator("tr").nth(1).locator("td").nth(4).inner_text().splitlines()
        assert consistency[0] == "0.000" and re.fullmatch(r"\[0\.000, 0\.000\] 0/6", consistency[1]), consistency
        assert page.screenshot(full_page=True)[:4] == b"\x89PNG"
