"""Headless Chromium for the HTML tests: Debian's chromium (installed by .ci/run), driven by playwright."""
from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@contextlib.contextmanager
def opened(path: Path, *, width: int | None = None, console: bool = True) -> Iterator[tuple]:
    """The page at `path`, loaded, and the list of errors it raised: script errors, and (with `console`) console
    errors. `width`: the viewport's, 900 px high (default: playwright's)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(**({"viewport": {"width": width, "height": 900}} if width else {}))
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            if console:
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            yield page, errors
        finally:
            browser.close()
