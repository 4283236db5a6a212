"""Pictures of console pages on the demo data, for the README: `make screenshots` runs
`python -m tests.web.console_screenshots` with LOANFUND_SCREENSHOTS=docs/screenshots.

A fresh SQLite database in a temporary folder gets the demo (`loanfund demo`: the 2021 history, the final
step and its baseline stress test), a live server (tests/servers.py) serves it, and Chromium signs in as
the demo's staff and takes each page at desktop width, once its charts have drawn: the dashboard, the
risk page and a report as the analyst, and an approved claim as the approver who did not review it (so that
the page shows the payout form beside the reviewer's name).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from loanfund.demo.work import DEMO_LOGINS, DEMO_PASSWORD
from tests.live import CHROMIUM, VIEWPORTS
from tests.servers import Server

# picture → (who signs in, page)
PAGES = {
    "console-dashboard.png": ("王分析", "/console/?year=2021"),
    "console-risk.png": ("王分析", "/console/risk"),
    "console-report.png": ("王分析", "/console/reports/by-bank?year=2021"),
    "console-claim.png": ("赵复核", "/console/claims/{claim}"),
}


def _approved_claim(url: str) -> int:
    """The first claim the demo leaves approved and awaiting its payout."""
    from sqlalchemy import create_engine, select

    from loanfund.claims.models import Claim, ClaimState

    engine = create_engine(url)
    try:
        with engine.connect() as c:
            claim = c.scalar(
                select(Claim.id).where(Claim.state == ClaimState.approved).order_by(Claim.id).limit(1)
            )
    finally:
        engine.dispose()
    if claim is None:
        sys.exit("the demo left no approved claim")
    return int(claim)


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
                claim = _approved_claim(url)
                for name, (who, path) in PAGES.items():
                    context = browser.new_context(base_url=server.url, locale="zh-CN", **VIEWPORTS["desktop"])
                    page = context.new_page()
                    page.goto("/console/sign-in")
                    page.fill('input[name="login"]', DEMO_LOGINS[who])
                    page.fill('input[name="password"]', DEMO_PASSWORD)
                    page.click('form[action="/console/sign-in"] button[type="submit"]')
                    page.wait_for_url("**/console/")
                    page.goto(path.format(claim=claim))
                    for chart in page.locator("[data-chart]").all():
                        chart.locator("canvas").wait_for()
                    page.wait_for_timeout(1000)  # the charts' opening animation
                    page.screenshot(path=str(folder / name), full_page=True)
                    context.close()
                    sys.stdout.write(f"{folder / name}\n")
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    target = os.environ.get("LOANFUND_SCREENSHOTS")
    if not target:
        sys.exit("set LOANFUND_SCREENSHOTS to the folder for the pictures")
    main(Path(target))
