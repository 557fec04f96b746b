"""training.html: the per-step curves and, with a gold reward, the proxy-vs-gold section built from the monitor's
numbers; rendered in headless Chromium without errors."""
from __future__ import annotations

from rlaif.report.training_page import hacking_sentence, render_training_html
from rlaif.train.rl.hacking import HackingMonitor, OnsetTest
from tests.support.browser import needs_chromium, opened

PROXY = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
GOLD = [0.0, 0.2, 0.4, 0.5, 0.5, 0.4, 0.3, 0.2]


def _run(gold=GOLD) -> tuple[list[dict], dict]:
    mon = HackingMonitor(OnsetTest(window=2, z=1.0, patience=2))
    rows = []
    for i, (p, g) in enumerate(zip(PROXY, gold, strict=True)):
        row = {"split": "train", "step": i + 1, "reward": p, "reward_std": 0.2, "rows": 4, "gold": g,
               "gold/spearman": -0.5, "kl_k3": 0.1 * i, "response_length": 12.0}
        rows.append(row)
        mon.add(row)
    return rows, {"out_dir": "runs/<b>x</b>", "steps": 8, "stopped_by": "max_steps", "train_seconds": 1.5,
                  "hacking": mon.summary()}


def test_the_sentence_reads_the_measured_numbers():
    _, result = _run()
    text = hacking_sentence(result["hacking"])
    assert text.startswith("Smoothed over 2 steps, the proxy went from 0.050 to 0.650 and the gold reward from "
                           "0.100 to 0.250 while the KL to the start reached 0.700. Onset at step 6, KL 0.500")
    _, aligned = _run(gold=PROXY)
    assert "No onset" in hacking_sentence(aligned["hacking"])


def test_markup_is_escaped_and_the_section_is_there():
    rows, result = _run()
    html = render_training_html(rows, result)
    assert "Proxy vs gold reward" in html and "Onset at step 6" in html
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "Proxy vs gold reward" not in render_training_html(rows, {**result, "hacking": None})


@needs_chromium
def test_page_renders_in_chromium(tmp_path):
    rows, result = _run()
    page_path = tmp_path / "training.html"
    page_path.write_text(render_training_html(rows, result))
    with opened(page_path) as (page, errors):
        assert errors == [] and page.title() == "rlaif training run"
        assert page.locator("h2").all_inner_texts()[:2] == ["Training", "Proxy vs gold reward"]
        assert page.locator("img").count() == 2
