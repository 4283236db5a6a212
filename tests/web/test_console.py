"""The bureau console over HTTP: sign-in, sessions, CSRF, roles, the pages, and the actions as thin
callers of the services (the browser tests drive the same in Chromium)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import openpyxl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.claims.models import Claim, ClaimState
from loanfund.core.config import Settings
from loanfund.loans.models import Loan
from loanfund.staff import service as staff_service
from loanfund.staff import signin
from loanfund.staff.models import Role, Staff
from loanfund.web.formatting import money
from tests.conftest import NplLoan
from tests.factories import TEST_ACTOR, Caller

PASSWORD = "console test passphrase"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def staff_login(session: Session, settings: Settings, role: str, login: str) -> Staff:
    staff = staff_service.create_staff(
        session, TEST_ACTOR, name=f"{role} {login}", role=Role(role), login=login
    )
    signin.set_password(session, settings, TEST_ACTOR, staff, PASSWORD)
    session.commit()
    return staff


def csrf_of(html: str) -> str:
    found = TOKEN.search(html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


def sign_in(client: TestClient, login: str, password: str = PASSWORD) -> Any:
    form = client.get("/console/sign-in")
    return client.post(
        "/console/sign-in",
        data={"login": login, "password": password, "csrf_token": csrf_of(form.text), "next": "/console/"},
        follow_redirects=False,
    )


@pytest.fixture
def browser_like(app: FastAPI, client: TestClient) -> Iterator[Callable[[], TestClient]]:
    """More clients, each with its own cookies, over the same rolled-back test transaction."""
    made: list[TestClient] = []

    def make() -> TestClient:
        c = TestClient(app)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def people(session: Session, settings: Settings) -> dict[str, Staff]:
    return {
        role: staff_login(session, settings, role, f"{role}.one")
        for role in ("analyst", "officer", "approver", "admin")
    } | {"approver2": staff_login(session, settings, "approver", "approver.two")}


@pytest.fixture
def signed(browser_like: Callable[[], TestClient], people: dict[str, Staff]) -> Callable[[str], TestClient]:
    def make(who: str) -> TestClient:
        c = browser_like()
        login = people[who].login
        assert login is not None
        r = sign_in(c, login)
        assert r.status_code == 303, r.text
        return c

    return make


@pytest.fixture
def claim_id(
    client: TestClient,
    session: Session,
    fund_10m: None,
    lenient_breakers: None,
    bank_a: Caller,
    npl_loan: NplLoan,
) -> int:
    loan = npl_loan(bank_a, "1000000")
    r = client.post("/api/v1/claims", json={"loan_id": loan["id"], "principal_at_default": "1000000"},
                    headers=bank_a.headers)  # fmt: skip
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _action(c: TestClient, claim: int, action: str, **form: str) -> Any:
    page = c.get(f"/console/claims/{claim}")
    assert page.status_code == 200
    return c.post(
        f"/console/claims/{claim}",
        data={"action": action, "csrf_token": csrf_of(page.text), **form},
        follow_redirects=False,
    )


# --- signing in ------------------------------------------------------------------------------------------


def test_pages_need_a_session_and_never_take_a_key(client: TestClient, officer: Caller) -> None:
    for path in ("/console/", "/console/work", "/console/claims/1", "/console/admin/staff"):
        r = client.get(path, headers=officer.headers, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/console/sign-in?next=")
    r = client.post(
        "/console/claims/1", data={"action": "approve"}, headers=officer.headers, follow_redirects=False
    )
    assert r.status_code == 303
    # the form has no field for a key, and a key as the password is just a wrong password
    form = client.get("/console/sign-in")
    assert 'name="login"' in form.text
    assert 'name="password"' in form.text
    assert "Bearer" not in form.text
    assert sign_in(client, "officer", officer.key).status_code == 401


def test_sign_in_sets_a_safe_cookie_and_a_page_csp(client: TestClient, people: dict[str, Staff]) -> None:
    r = sign_in(client, "analyst.one")
    assert r.status_code == 303
    assert r.headers["location"] == "/console/"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("lf_console=lfc_")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
    assert "Path=/console" in cookie
    assert "Secure" not in cookie  # not in test; see the production test below
    home = client.get("/console/")
    assert home.status_code == 200
    csp = home.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "http" not in csp


def test_the_cookie_is_secure_in_production(
    app: FastAPI,
    client: TestClient,
    people: dict[str, Staff],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "env", "prod")
    with TestClient(
        app, base_url="https://testserver"
    ) as https:  # a Secure cookie comes back over HTTPS only
        r = sign_in(https, "analyst.one")
    assert r.status_code == 303
    assert "Secure" in r.headers["set-cookie"]


def test_wrong_password_is_refused_and_throttled(
    client: TestClient, people: dict[str, Staff], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "console_signin_failures_per_login", 2)
    r = sign_in(client, "officer.one", "not the password")
    assert r.status_code == 401
    assert "登录名或密码错误" in r.text
    assert sign_in(client, "officer.one", "still not it!").status_code == 401
    throttled = sign_in(client, "officer.one")  # the right password, but the login waits
    assert throttled.status_code == 429
    wait = int(throttled.headers["retry-after"])
    assert 0 < wait <= settings.console_signin_failure_window_s
    assert f"{wait} 秒" in throttled.text


def test_a_sign_in_post_without_its_token_is_refused(client: TestClient, people: dict[str, Staff]) -> None:
    client.get("/console/sign-in")
    r = client.post(
        "/console/sign-in", data={"login": "analyst.one", "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 403
    assert "lf_console" not in r.headers.get("set-cookie", "")


def test_sign_out_ends_the_session_for_good(signed: Callable[[str], TestClient], browser_like: Any) -> None:
    c = signed("analyst")
    token = c.cookies.get("lf_console", path="/console")
    assert token
    home = c.get("/console/")
    r = c.post("/console/sign-out", data={"csrf_token": csrf_of(home.text)}, follow_redirects=False)
    assert r.status_code == 303
    replay = browser_like()
    replay.cookies.set("lf_console", token, path="/console")
    r = replay.get("/console/", follow_redirects=False)
    assert r.status_code == 303
    assert "/console/sign-in" in r.headers["location"]


def test_deactivation_and_a_new_password_end_sessions_at_once(
    session: Session, settings: Settings, signed: Callable[[str], TestClient], people: dict[str, Staff]
) -> None:
    officer, analyst = signed("officer"), signed("analyst")
    admin = signed("admin")
    page = admin.get("/console/admin/staff")
    r = admin.post(
        f"/console/admin/staff/{people['officer'].id}",
        data={"action": "deactivate", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert officer.get("/console/", follow_redirects=False).status_code == 303
    signin.set_password(session, settings, TEST_ACTOR, people["analyst"], "a different passphrase")
    session.commit()
    assert analyst.get("/console/", follow_redirects=False).status_code == 303


def test_a_role_that_needs_a_code_reaches_nothing_before_it(
    client: TestClient, people: dict[str, Staff], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "console_totp_roles", ["approver"])
    r = sign_in(client, "approver.one")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/console/sign-in/code")
    assert client.get("/console/", follow_redirects=False).headers["location"] == "/console/sign-in/code"
    enrol = client.get("/console/sign-in/code")  # nothing enrolled yet: the enrolment first
    assert 'name="otp"' in enrol.text
    assert "data-totp-secret" in enrol.text


# --- roles and CSRF on actions -----------------------------------------------------------------------


def test_a_post_without_the_sessions_token_is_refused(
    signed: Callable[[str], TestClient], claim_id: int, session: Session
) -> None:
    officer, other = signed("officer"), signed("approver")
    assert officer.post(f"/console/claims/{claim_id}", data={"action": "approve"}).status_code == 403
    foreign = csrf_of(other.get(f"/console/claims/{claim_id}").text)  # another session's token
    r = officer.post(f"/console/claims/{claim_id}", data={"action": "approve", "csrf_token": foreign})
    assert r.status_code == 403
    assert "表单已过期" in r.text
    claim = session.get(Claim, claim_id)
    assert claim is not None
    assert claim.state is ClaimState.submitted


def test_an_analyst_sees_no_action_and_is_refused_if_forced(
    signed: Callable[[str], TestClient], claim_id: int
) -> None:
    analyst = signed("analyst")
    page = analyst.get(f"/console/claims/{claim_id}")
    assert page.status_code == 200
    assert 'name="action"' not in page.text
    for action in ("approve", "reject", "pay"):
        r = _action(analyst, claim_id, action, reason="forced by an analyst")
        assert r.status_code == 403, action
    assert analyst.get("/console/admin/staff").status_code == 403
    work = analyst.get("/console/work")
    assert work.status_code == 200
    assert "/lift" not in work.text


def test_one_approver_reviews_another_pays(
    signed: Callable[[str], TestClient], claim_id: int, session: Session, people: dict[str, Staff]
) -> None:
    first, second, officer = signed("approver"), signed("approver2"), signed("officer")
    page = first.get(f"/console/claims/{claim_id}")
    assert 'value="approve"' in page.text
    assert 'value="reject"' in page.text
    assert 'value="pay"' not in page.text
    assert _action(first, claim_id, "approve").status_code == 303
    mine = first.get(f"/console/claims/{claim_id}")
    assert 'value="pay"' not in mine.text
    assert "data-maker-checker" in mine.text  # shown before any click
    refused = _action(first, claim_id, "pay")
    assert refused.status_code == 403
    assert "另一位审批人" in refused.text
    assert _action(officer, claim_id, "pay").status_code == 403  # an officer never pays
    theirs = second.get(f"/console/claims/{claim_id}")
    assert 'value="pay"' in theirs.text
    r = _action(second, claim_id, "pay")
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/claims/{claim_id}?done=paid"
    session.expire_all()
    claim = session.get(Claim, claim_id)
    assert claim is not None
    assert (claim.state, claim.reviewed_by, claim.paid_by) == (
        ClaimState.paid,
        people["approver"].id,
        people["approver2"].id,
    )
    loan = session.get(Loan, claim.loan_id)
    assert loan is not None
    assert loan.state.value == "compensated"


def test_reduced_approval_needs_a_reason_shown_beside_the_field(
    signed: Callable[[str], TestClient], claim_id: int, session: Session
) -> None:
    officer = signed("officer")
    r = _action(officer, claim_id, "approve", amount="500000")
    assert r.status_code == 422
    assert 'data-error-for="reason">' in r.text
    assert "减额批准须说明理由" in r.text
    assert (
        _action(officer, claim_id, "approve", amount="500000", reason="保证人已部分清偿").status_code == 303
    )
    claim = session.scalar(select(Claim).where(Claim.id == claim_id))
    assert claim is not None
    session.refresh(claim)
    assert (claim.state, claim.approved_fen) == (ClaimState.approved, 50_000_000)
    assert _action(officer, claim_id, "reject").status_code == 422  # a rejection needs a reason too


# --- pages ---------------------------------------------------------------------------------------------


def test_dashboard_figures_are_the_summary_reports(
    signed: Callable[[str], TestClient], client: TestClient, claim_id: int, analyst: Caller, today: date
) -> None:
    year = today.year
    page = signed("analyst").get(f"/console/?year={year}")
    assert page.status_code == 200
    figures = dict(re.findall(r'data-figure="(\w+)">([^<]*)<', page.text))
    api = client.get(f"/api/v1/reports/summary?year={year}", headers=analyst.headers).json()
    as_shown = {k: money(v) for k, v in api.items() if k.endswith(("balance", "size", "principal"))}
    assert figures["fund_size"] == as_shown["fund_size"] == "10,000,000.00"
    assert figures["fund_balance"] == as_shown["fund_balance"]
    assert figures["fund_available"] == as_shown["available_balance"]
    assert figures["covered_outstanding"] == as_shown["outstanding_principal"]
    assert figures["leverage"] == api["leverage"]
    for chart in ("fund_balance", "disbursements_by_month", "npl_by_bank", "claims_by_state"):
        assert f'data-chart="{chart}"' in page.text
        assert f'data-chart-data="{chart}"' in page.text
    assert signed("analyst").get("/console/?year=1999").status_code == 422


def test_every_page_renders_for_every_role(
    signed: Callable[[str], TestClient], claim_id: int, session: Session, bank_a: Caller
) -> None:
    claim = session.get(Claim, claim_id)
    assert claim is not None
    code = session.scalar(select(Loan).where(Loan.id == claim.loan_id))
    assert code is not None
    pages = [
        "/console/", "/console/work", f"/console/claims/{claim_id}",
        "/console/claims?state=submitted&sort=claimed",
        "/console/applications?status=pending_bank", "/console/loans?sort=outstanding&order=desc",
        f"/console/loans/{claim.loan_id}", "/console/banks", f"/console/banks/{bank_a.id}",
        "/console/enterprises?q=91&page=1", "/console/contributions", "/console/reports", "/console/audit",
        "/console/account", "/console/reports/aging?detail=true", "/console/reports/claims?state=submitted",
    ]  # fmt: skip
    for who in ("analyst", "officer", "approver", "admin"):
        c = signed(who)
        for path in pages:
            r = c.get(path)
            assert r.status_code == 200, (who, path, r.text[-500:])
            assert '<html lang="zh-CN">' in r.text
    english = signed("analyst").get("/console/work?lang=en")
    assert "Work queues" in english.text


def test_reports_download_as_real_workbooks_and_csv(
    signed: Callable[[str], TestClient], claim_id: int, today: date
) -> None:
    c = signed("analyst")
    year = today.year
    for name in ("summary", "by-bank", "by-month", "fund-flows", "claims"):
        page = c.get(f"/console/reports/{name}?year={year}")
        assert page.status_code == 200, name
        assert 'data-download="xlsx"' in page.text
        xlsx = c.get(f"/console/reports/{name}/download?year={year}&format=xlsx")
        assert xlsx.status_code == 200
        assert xlsx.headers["content-disposition"].startswith("attachment;")
        book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
        assert book.worksheets[0].max_row > 5
        csv = c.get(f"/console/reports/{name}/download?year={year}&format=csv")
        assert csv.content.startswith(b"\xef\xbb\xbf")
    claims = c.get("/console/reports/claims/download?format=csv").content.decode("utf-8-sig")
    assert f"{claim_id}," in claims


def test_enterprise_import_reports_every_bad_line(
    signed: Callable[[str], TestClient], session: Session, make_csv: Callable[..., str]
) -> None:
    officer = signed("officer")
    page = officer.get("/console/enterprises")
    bad = make_csv(good=2, bad_checksum_line=3, missing_name_line=4)
    r = officer.post(
        "/console/enterprises/import",
        data={"csrf_token": csrf_of(page.text)},
        files={"file": ("firms.csv", bad.encode(), "text/csv")},
    )
    assert r.status_code == 422
    assert set(re.findall(r'data-bad-line="(\d+)"', r.text)) == {"3", "4"}
    good = make_csv(good=3)
    r = officer.post(
        "/console/enterprises/import",
        data={"csrf_token": csrf_of(page.text)},
        files={"file": ("firms.csv", good.encode(), "text/csv")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "imported=3" in r.headers["location"]
    analyst = signed("analyst")
    refused = analyst.post(
        "/console/enterprises/import",
        data={"csrf_token": csrf_of(analyst.get("/console/enterprises").text)},
        files={"file": ("firms.csv", good.encode(), "text/csv")},
    )
    assert refused.status_code == 403


@pytest.fixture
def make_csv() -> Callable[..., str]:
    from tests.factories import credit_code

    def make(good: int, bad_checksum_line: int | None = None, missing_name_line: int | None = None) -> str:
        lines = ["credit_code,name,industry"]
        line = 2
        rows = good + (bad_checksum_line is not None) + (missing_name_line is not None)
        for _ in range(rows):
            code = credit_code()
            if line == bad_checksum_line:
                code = code[:-1] + ("1" if code[-1] != "1" else "2")
                lines.append(f"{code},重庆校验错误科技有限公司,C")
            elif line == missing_name_line:
                lines.append(f"{code},,C")
            else:
                lines.append(f"{code},重庆导入{line}科技有限公司,I")
            line += 1
        return "\n".join(lines) + "\n"

    return make


def test_admin_issues_a_key_once_and_revokes_it(
    signed: Callable[[str], TestClient], people: dict[str, Staff]
) -> None:
    admin = signed("admin")
    page = admin.get("/console/admin/staff")
    r = admin.post(
        "/console/admin/keys",
        data={"owner": f"staff:{people['analyst'].id}", "label": "reports", "csrf_token": csrf_of(page.text)},
    )
    assert r.status_code == 201
    key = re.search(r"data-key>(lfs_[^<]+)<", r.text)
    assert key is not None
    again = admin.get("/console/admin/staff")
    assert key.group(1) not in again.text  # shown once
    api = admin.get("/api/v1/reports/summary?year=2021", headers={"Authorization": f"Bearer {key.group(1)}"})
    assert api.status_code == 200
    key_id = re.findall(r'data-key-id="(\d+)"', again.text)[-1]
    r = admin.post(f"/console/admin/keys/{key_id}/revoke", data={"csrf_token": csrf_of(again.text)},
                   follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
