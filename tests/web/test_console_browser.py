"""The bureau console in a real headless Chromium against a live server (tests/live.py): sign in, the
dashboard's figures equal the API's and every chart is drawn, a stress test run from the risk page is
drawn, one approver reviews a claim and a second pays it while the reviewer is refused, a report
downloads as a valid workbook, a post without its CSRF token is refused, a signed-out session cannot be
reused, and neither a bank's key nor an analyst reaches an officer's action."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from loanfund.banks import service as bank_service
from loanfund.core.clock import business_today
from loanfund.staff import service as staff_service
from loanfund.staff import signin
from loanfund.staff.models import Role
from loanfund.web.formatting import money
from tests import factories
from tests.factories import TEST_ACTOR
from tests.live import LiveServer

PASSWORD = "browser test passphrase"
CHARTS = ("fund_balance", "disbursements_by_month", "npl_by_bank", "claims_by_state")
# a chart has drawn when its canvas holds a pixel that is not transparent
DRAWN = """el => {
  const c = el.querySelector('canvas');
  if (!c || !c.width || !c.height) return false;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true;
  return false;
}"""


@dataclass(frozen=True)
class World:
    url: str
    claim_id: int
    analyst_key: str
    bank_key: str
    year: int


@pytest.fixture(scope="module")
def world(live_server: LiveServer) -> World:
    """A fund, a bank, its non-performing loan with a claim filed, and staff who sign in with passwords."""
    keys: dict[str, str] = {}
    with live_server.transaction() as session:
        factories.contribute(session, 10_000_000)
        bank = bank_service.create_bank(
            session,
            TEST_ACTOR,
            code="BROWSER_BANK",
            name="浏览器测试银行",
            fund_share=Decimal("0.80"),
            allow_contracts_without_application=True,
        )
        keys["bank"] = staff_service.issue_key(session, live_server.settings, TEST_ACTOR, bank=bank).secret
        for role, login in (("analyst", "b.analyst"), ("officer", "b.officer"), ("approver", "b.first"),
                            ("approver", "b.second")):  # fmt: skip
            staff = staff_service.create_staff(
                session, TEST_ACTOR, name=f"{login}", role=Role(role), login=login
            )
            signin.set_password(session, live_server.settings, TEST_ACTOR, staff, PASSWORD)
            if login == "b.analyst":
                keys["analyst"] = staff_service.issue_key(
                    session, live_server.settings, TEST_ACTOR, staff=staff
                ).secret
        code = factories.make_enterprise(session).credit_code
    today = business_today(live_server.settings)
    start = today - timedelta(days=200)
    bank_headers = {"Authorization": f"Bearer {keys['bank']}"}
    with httpx.Client(base_url=live_server.url, headers=bank_headers, timeout=30) as api:
        loan = api.post("/api/v1/loans", json={
            "bank_loan_ref": "BROWSER-1", "credit_code": code, "amount": "2000000", "annual_rate_pct": "3.80",
            "start_date": start.isoformat(), "maturity_date": (start + timedelta(days=360)).isoformat(),
        })  # fmt: skip
        assert loan.status_code == 201, loan.text
        loan_id = loan.json()["id"]
        for path, body in (
            (
                "disbursements",
                {"bank_event_ref": "BROWSER-1-D", "date": start.isoformat(), "amount": "2000000"},
            ),
            (
                "delinquency",
                {"bank_event_ref": "BROWSER-1-Q", "date": today.isoformat(), "days_past_due": 95},
            ),
        ):
            r = api.post(f"/api/v1/loans/{loan_id}/{path}", json=body)
            assert r.status_code == 201, r.text
        claim = api.post("/api/v1/claims", json={"loan_id": loan_id, "principal_at_default": "2000000"})
        assert claim.status_code == 201, claim.text
    return World(live_server.url, int(claim.json()["id"]), keys["analyst"], keys["bank"], today.year)


def sign_in(page: Any, login: str) -> None:
    page.goto("/console/")
    assert "/console/sign-in" in page.url
    page.fill('input[name="login"]', login)
    page.fill('input[name="password"]', PASSWORD)
    page.click('form[action="/console/sign-in"] button[type="submit"]')
    page.wait_for_url(re.compile(r".*/console/(\?.*)?$"))


def watch_errors(page: Any) -> list[str]:
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(m.text) if m.type == "error" and "favicon" not in m.text else None,
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def test_dashboard_figures_equal_the_api_and_every_chart_is_drawn(
    page_at: Callable[..., Any], world: World
) -> None:
    page = page_at("desktop")
    problems = watch_errors(page)
    sign_in(page, "b.analyst")
    page.goto(f"/console/?year={world.year}")
    shown = {
        name: page.locator(f'[data-figure="{name}"]').inner_text()
        for name in ("fund_size", "fund_balance", "fund_available", "covered_outstanding", "leverage")
    }
    api = httpx.get(
        f"{world.url}/api/v1/reports/summary",
        params={"year": world.year},
        headers={"Authorization": f"Bearer {world.analyst_key}"},
    ).json()
    assert shown == {
        "fund_size": money(api["fund_size"]),
        "fund_balance": money(api["fund_balance"]),
        "fund_available": money(api["available_balance"]),
        "covered_outstanding": money(api["outstanding_principal"]),
        "leverage": api["leverage"],
    }
    for chart in CHARTS:
        box = page.locator(f'[data-chart="{chart}"]')
        box.locator("canvas").wait_for()
        assert box.evaluate(DRAWN), chart
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert not problems, problems  # no script error, no CSP violation


def test_a_stress_test_run_from_the_risk_page_is_drawn(page_at: Callable[..., Any], world: World) -> None:
    page = page_at("desktop")
    problems = watch_errors(page)
    sign_in(page, "b.analyst")
    page.goto("/console/risk")
    assert page.locator("[data-no-run]").count() == 1
    page.check('input[name="preset"][value="baseline"]')
    page.click('form[data-form="stress-test"] button[type="submit"]')
    page.wait_for_url(re.compile(r".*/console/risk\?run=\d+"))
    assert page.locator('[data-figure="p_exhaustion"]').inner_text().endswith("%")
    for chart in ("balance_fan", "loss_histogram"):
        box = page.locator(f'[data-chart="{chart}"]')
        box.locator("canvas").wait_for()
        assert box.evaluate(DRAWN), chart
    assert not problems, problems


def test_one_approver_reviews_and_another_pays_while_the_reviewer_is_refused(
    page_at: Callable[..., Any], world: World
) -> None:
    claim_url = f"/console/claims/{world.claim_id}"
    first = page_at("desktop")
    sign_in(first, "b.first")
    first.goto(claim_url)
    assert first.locator('button[name="action"][value="pay"]').count() == 0
    first.click('button[name="action"][value="approve"]')
    first.locator('[data-claim-state="approved"]').wait_for()
    assert first.locator("[data-maker-checker]").first.is_visible()  # said before any click
    assert first.locator('button[name="action"][value="pay"]').count() == 0
    token = first.locator('input[name="csrf_token"]').first.get_attribute("value")
    forced = first.request.post(claim_url, form={"action": "pay", "csrf_token": token}, max_redirects=0)
    assert forced.status == 403
    assert "另一位审批人" in forced.text()

    second = page_at("desktop")
    sign_in(second, "b.second")
    second.goto(claim_url)
    second.on("dialog", lambda d: d.accept())
    second.click('button[name="action"][value="pay"]')
    second.locator('[data-claim-state="paid"]').wait_for()
    assert "已确认付款" in second.locator("[data-toast]").inner_text()
    first.goto(claim_url)
    assert first.locator('[data-claim-state="paid"]').count() == 1


def test_a_report_downloads_as_a_valid_workbook(page_at: Callable[..., Any], world: World) -> None:
    page = page_at("desktop")
    sign_in(page, "b.analyst")
    page.goto(f"/console/reports/by-bank?year={world.year}")
    assert page.locator('table[data-table="report"] tbody tr').count() >= 1
    with page.expect_download() as caught:
        page.click('[data-download="xlsx"]')
    download = caught.value
    assert download.suggested_filename.endswith(".xlsx")
    book = openpyxl.load_workbook(io.BytesIO(Path(download.path()).read_bytes()))
    codes = [row[0] for row in book.worksheets[0].iter_rows(values_only=True)]
    assert "BROWSER_BANK" in codes


def test_a_post_without_its_csrf_token_is_refused(page_at: Callable[..., Any], world: World) -> None:
    page = page_at("desktop")
    sign_in(page, "b.officer")
    claim_url = f"/console/claims/{world.claim_id}"
    r = page.request.post(claim_url, form={"action": "reject", "reason": "no token here"}, max_redirects=0)
    assert r.status == 403
    r = page.request.post(
        "/console/sign-in", form={"login": "b.officer", "password": PASSWORD}, max_redirects=0
    )
    assert r.status == 403


def test_a_signed_out_session_cannot_be_reused(
    page_at: Callable[..., Any], browser: Any, live_server: LiveServer
) -> None:
    page = page_at("desktop")
    sign_in(page, "b.analyst")
    cookie = next(c for c in page.context.cookies() if c["name"] == "lf_console")
    page.click('[data-action="sign-out"]')
    page.wait_for_url(re.compile(r".*/console/sign-in$"))
    stranger = browser.new_context(base_url=live_server.url)
    try:
        stranger.add_cookies([cookie])
        again = stranger.new_page()
        again.goto("/console/")
        assert "/console/sign-in" in again.url
        assert again.locator('input[name="password"]').count() == 1
    finally:
        stranger.close()


def test_a_bank_key_and_an_analyst_cannot_reach_officer_actions(
    page_at: Callable[..., Any], world: World
) -> None:
    bank = {"Authorization": f"Bearer {world.bank_key}"}
    with httpx.Client(base_url=world.url, headers=bank, follow_redirects=False) as http:
        for path in ("/console/work", f"/console/claims/{world.claim_id}"):
            r = http.get(path)
            assert r.status_code == 303
            assert r.headers["location"].startswith("/console/sign-in")
        r = http.post("/console/banks/1/lift", data={"reason": "a bank lifting itself"})
        assert r.status_code == 303
        assert r.headers["location"].startswith("/console/sign-in")

    page = page_at("desktop")
    sign_in(page, "b.analyst")
    page.goto("/console/work")
    assert page.locator('form[action$="/lift"]').count() == 0
    page.goto(f"/console/claims/{world.claim_id}")
    assert page.locator('button[name="action"]').count() == 0
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    for action in ("approve", "reject", "pay"):
        r = page.request.post(
            f"/console/claims/{world.claim_id}",
            form={"action": action, "reason": "an analyst trying", "csrf_token": token},
            max_redirects=0,
        )
        assert r.status == 403, action
    r = page.request.post("/console/banks/1/lift", form={"reason": "an analyst trying", "csrf_token": token},
                          max_redirects=0)  # fmt: skip
    assert r.status == 403
