"""The browser of the browser tests: defined here so that it lives as long as this package's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live import CHROMIUM


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One Chromium for the package of browser tests (tests/web). Playwright's sync API keeps an event loop
    running in this thread while it lives: closed with the package, it leaves later tests free to run
    their own (`asyncio.run`)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"No Chromium at {CHROMIUM}: run `make browser` (apt-get install chromium chromium-driver "
            "fonts-noto-cjk) or set LOANFUND_CHROMIUM. Browser tests never skip."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()
