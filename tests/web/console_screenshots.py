"""Pictures of console pages on the demo data, for the README: `make screenshots` runs
`python -m tests.web.console_screenshots` with LOANFUND_SCREENSHOTS=docs/screenshots.

A fresh SQLite database in a temporary folder gets the demo (`loanfund demo`: the 2021 history, the final
step and its baseline stress test), a live server (tests/servers.py) serves it, and Chromium signs in as
the demo's analyst and takes each page at desktop width, once its charts have drawn.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from loanfund.demo.work import DEMO_LOGINS, DEMO_PASSWORD
from tests.live import CHROMIUM, VIEWPORTS
from tests.servers import Server

PAGES = {"console-risk.png": "/console/risk"}  # picture → page


def main(folder: Path) -> None:
    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/demo.db"
        env = {
            **os.environ,
            "LOANFUND_ENV": "dev",
            "LOANFUND_DATABASE_URL": url,
            "LOANFUND_LOG_LEVEL": "WARNING",
        }
        env.pop("LOANFUND_REDIS_URL", None)
        server = Server(database_url=url, env=env, log=Path(tmp) / "server.log")
        server.cli("db", "upgrade")
        server.cli("demo", "--keys-file", f"{tmp}/keys.json")
        server.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                page = browser.new_context(
                    base_url=server.url, locale="zh-CN", **VIEWPORTS["desktop"]
                ).new_page()
                page.goto("/console/sign-in")
                page.fill('input[name="login"]', DEMO_LOGINS["王分析"])
                page.fill('input[name="password"]', DEMO_PASSWORD)
                page.click('form[action="/console/sign-in"] button[type="submit"]')
                page.wait_for_url("**/console/")
                for name, path in PAGES.items():
                    page.goto(path)
                    for chart in page.locator("[data-chart]").all():
                        chart.locator("canvas").wait_for()
                    page.wait_for_timeout(1000)  # the charts' opening animation
                    page.screenshot(path=str(folder / name), full_page=True)
                    sys.stdout.write(f"{folder / name}\n")
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    target = os.environ.get("LOANFUND_SCREENSHOTS")
    if not target:
        sys.exit("set LOANFUND_SCREENSHOTS to the folder for the pictures")
    main(Path(target))
