"""Screenshots kept as test artifacts.

A screenshot is evidence for people, not part of what a journey asserts: Chromium under a
loaded machine sometimes answers "Unable to capture screenshot", and that must not fail a
journey that worked. The miss is reported as a warning instead.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from playwright.sync_api import Error, Page


def save_screenshot(page: Page, path: Path, *, full_page: bool = False) -> None:
    try:
        page.screenshot(path=str(path), full_page=full_page)
    except Error as error:
        warnings.warn(f"screenshot {path.name} not saved: {error.message}", stacklevel=2)
