"""The harness itself, in a real Chromium: a kit page renders in Chinese, loads its own assets and
breaks no rule of its Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.mark.parametrize("kind", ["phone", "desktop"])
def test_a_kit_page_in_a_real_browser(page_at: Callable[..., Any], kind: str) -> None:
    page = page_at(kind)
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(m.text) if m.type == "error" and "404" not in m.text else None
    )
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    response = page.goto("/no-such-page")
    assert response is not None
    assert response.status == 404
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.get_by_role("heading", level=1).inner_text() == "页面不存在"
    # the kit's stylesheet is applied (the header has its colour), served by the app itself
    colour = page.locator(".site-header").evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(11, 92, 173)"
    assert not problems, problems
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"]  # nothing sticks out sideways
