"""Debian's chromium driven by Playwright, for every browser test: where it is, how it starts,
and why a test skips when it (or Playwright) is missing."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else shutil.which("chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if CHROMIUM is None:
        return "no chromium (/usr/bin/chromium or on PATH) for the browser tests"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed"
    return None


@contextmanager
def launched() -> Iterator[Any]:
    """A chromium browser (closed after the block), or a one-line skip."""
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
