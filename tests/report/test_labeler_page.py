"""labelers.html in headless Chromium: renders without errors, findings first, plots present, and annotator ids,
prompts and responses carrying markup shown as text (never run)."""
from __future__ import annotations

import csv
import json

import pytest

from tests.support.browser import needs_chromium, opened
from tests.support.cli_helpers import rlaif_inproc as rlaif
from tests.support.crowd_helpers import COLUMNS, crowd_rows, write_annotators

EVIL = "<script>window.__pwned = 1</script><img src=x onerror='window.__pwned=2'>"


@pytest.fixture(scope="module")
def page_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("labelers-page")
    rows = crowd_rows(n_items=160)
    for r in rows:
        r["response_a"] = EVIL + r["response_a"]
        if r["annotator"] == "spam":
            r["annotator"] = "spam" + EVIL  # an annotator id is data too
    with open(d / "crowd.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows(rows)
    assert rlaif("convert", "-f", "csv", d / "crowd.csv", "-o", d / "labels.jsonl").code == 0
    r = rlaif("audit", d / "labels.jsonl", "--annotators", write_annotators(d / "a.csv"), "--bootstrap", "100",
              "-o", d / "out")
    assert r.code == 0, r.stderr
    return d / "out"


def test_markup_in_the_data_is_escaped_in_html_and_markdown(page_dir):
    html = (page_dir / "labelers.html").read_text()
    assert EVIL not in html and "&lt;script&gt;" in html
    md = (page_dir / "labelers.md").read_text()
    assert "<script>" not in md and "spam" in md
    assert any(EVIL in x["annotator"] for x in json.loads((page_dir / "labelers.json").read_text())["labelers"])


@needs_chromium
def test_page_renders_in_chromium(page_dir):
    with opened(page_dir / "labelers.html") as (page, errors):
        assert errors == [] and page.title() == "Human labeler audit"
        headings = page.locator("h2").all_inner_texts()
        assert headings[0] == "Findings" and "Drift over time" in headings and "Groups by region" in headings
        first = page.locator("section").first.locator("table").first.inner_text()
        assert "likely spammer" in first and "position-biased" in first  # what to act on leads
        res = json.loads((page_dir / "labelers.json").read_text())
        assert len(res["drift"]["labelers"]) >= 2  # the crowd's drift plot and one per flagged labeler:
        assert page.locator("img").count() == 1 + len(res["drift"]["labelers"])
        assert page.evaluate("window.__pwned") is None
        page.locator("details").first.evaluate("d => d.open = true")
        assert EVIL in page.locator("details").first.inner_text()  # shown as text
        assert page.screenshot(full_page=True)[:4] == b"\x89PNG"
