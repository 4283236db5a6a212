"""The console's actions for the rules the API gained (issues 13 and 15): an early default's approval with
the reviewer's note, approved claims without funds as `GET /claims?funded=false` lists them, the
applicant's status token reissued, the programme-wide stop lifted, a bank's contracts without an
application allowed, a bank's closed month reopened, an enterprise's grade on record. Each works for its
role and is audited by the service, is hidden from and refused (403) to another role, and shows a
refusal beside its field."""
# ruff: noqa: F811 - the console tests' fixtures, imported below, are parameters here

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.banks.models import Bank
from loanfund.claims.models import Claim, ClaimState
from loanfund.enterprises.models import Enterprise
from loanfund.fund import breakers
from loanfund.staff.models import Staff
from loanfund.status_reports.models import MonthReopening
from tests.conftest import NplLoan
from tests.factories import Caller, application_payload, contribute, make_enterprise
from tests.web.test_console import (  # noqa: F401 - the fixtures are shared with the console's tests
    browser_like,
    csrf_of,
    people,
    signed,
)
from tests.web.test_portal import hidden

Signed = Callable[[str], TestClient]


def _post(c: TestClient, page_url: str, action_url: str, **form: str) -> Any:
    page = c.get(page_url)
    assert page.status_code == 200, page.text[-500:]
    return c.post(action_url, data={"csrf_token": csrf_of(page.text), **form}, follow_redirects=False)


def _audits(session: Session, action: str, entity_id: str | None = None) -> list[AuditRecord]:
    stmt = select(AuditRecord).where(AuditRecord.action == action)
    if entity_id is not None:
        stmt = stmt.where(AuditRecord.entity_id == entity_id)
    return list(session.scalars(stmt))


def _section(html: str, queue: str) -> str:
    start = html.index(f'data-queue="{queue}"')
    end = html.find("<section", start)
    return html[start : end if end > 0 else None]


def _file_claim(client: TestClient, bank: Caller, loan: dict[str, Any], principal: str) -> int:
    r = client.post(
        "/api/v1/claims",
        json={"loan_id": loan["id"], "principal_at_default": principal},
        headers=bank.headers,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


# --- a claim: early default, funded, shortfall ---------------------------------------------------------


@pytest.mark.usefixtures("fund_10m", "lenient_breakers")
def test_an_early_default_is_flagged_and_approved_only_with_a_note(
    client: TestClient, session: Session, signed: Signed, bank_a: Caller, npl_loan: NplLoan
) -> None:
    early = _file_claim(client, bank_a, npl_loan(bank_a, "100000", age=100), "100000")
    later = _file_claim(client, bank_a, npl_loan(bank_a, "100000"), "100000")
    officer, analyst = signed("officer"), signed("analyst")
    page = officer.get(f"/console/claims/{early}")
    assert 'data-flag="early_default"' in page.text
    assert 'name="review_note"' in page.text
    assert "早期违约期限内成为不良" in page.text  # the label says why the note is asked for
    plain = officer.get(f"/console/claims/{later}")
    assert 'data-flag="early_default"' not in plain.text
    assert 'name="review_note"' not in plain.text
    register = officer.get("/console/claims")
    flagged = set(
        re.findall(r'data-claim-id="(\d+)">(?:(?!</tr>).)*data-flag="early_default"', register.text, re.S)
    )
    assert flagged == {str(early)}
    queue = _section(officer.get("/console/work").text, "claims_to_review")
    assert re.search(rf'data-claim-id="{early}">(?:(?!</tr>).)*data-flag="early_default"', queue, re.S)

    assert 'name="review_note"' not in analyst.get(f"/console/claims/{early}").text
    forced = _post(analyst, f"/console/claims/{early}", f"/console/claims/{early}", action="approve",
                   review_note="forced by an analyst")  # fmt: skip
    assert forced.status_code == 403

    refused = _post(officer, f"/console/claims/{early}", f"/console/claims/{early}", action="approve")
    assert refused.status_code == 422
    beside = re.search(r'data-error-for="review_note">([^<]+)<', refused.text)
    assert beside is not None
    assert "批准前请填写审核意见" in beside.group(1)
    claim = session.get(Claim, early)
    assert claim is not None
    session.refresh(claim)
    assert claim.state is ClaimState.submitted

    note = "贷款档案与贷后检查记录已核查，未见欺诈迹象"
    r = _post(
        officer, f"/console/claims/{early}", f"/console/claims/{early}", action="approve", review_note=note
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/claims/{early}?done=approved"
    session.refresh(claim)
    assert (claim.state, claim.review_note) == (ClaimState.approved, note)
    [audit] = _audits(session, "claim.approve", str(early))
    assert audit.after is not None
    assert audit.after["review_note"] == note
    assert audit.actor_kind == "staff"
    shown = officer.get(f"/console/claims/{early}")
    assert "data-review-note" in shown.text
    assert 'data-funded="true"' in shown.text
    assert 'data-amount="shortfall">0.00' in shown.text


@pytest.mark.usefixtures("lenient_breakers")
def test_the_unfunded_queue_is_what_the_api_lists_with_the_shortfall(
    client: TestClient,
    session: Session,
    signed: Signed,
    bank_a: Caller,
    officer: Caller,
    npl_loan: NplLoan,
) -> None:
    contribute(session, 2_000_000)  # covers two claims of 800,000 but not three
    ids = [_file_claim(client, bank_a, npl_loan(bank_a, "1000000"), "1000000") for _ in range(4)]
    for cid in ids[:3]:
        r = client.post(f"/api/v1/claims/{cid}/approve", json={}, headers=officer.headers)
        assert r.status_code == 200, r.text
    # a claim reserved in part: the API counts it unfunded (reserved < approved), not only reserved == 0
    partial = session.get(Claim, ids[1])
    assert partial is not None
    partial.reserved_fen = 50_000_000
    session.commit()
    api = client.get("/api/v1/claims", params={"funded": "false"}, headers=officer.headers).json()["items"]
    assert [(c["id"], c["shortfall"]) for c in api] == [(ids[1], "300000.00"), (ids[2], "800000.00")]
    work = signed("approver").get("/console/work").text
    unfunded = _section(work, "claims_unfunded")
    assert [int(i) for i in re.findall(r'data-claim-id="(\d+)"', unfunded)] == [c["id"] for c in api]
    for c in api:
        shown = re.search(rf'data-shortfall="{c["id"]}">[^<]*?([0-9,]+\.[0-9]{{2}})', unfunded)
        assert shown is not None
        assert shown.group(1).replace(",", "") == c["shortfall"]
    to_pay = _section(work, "claims_to_pay")
    assert re.findall(r'data-claim-id="(\d+)"', to_pay) == [str(ids[0])]  # the fourth is not approved
    page = signed("analyst").get(f"/console/claims/{ids[2]}").text
    assert 'data-funded="false"' in page
    assert 'data-amount="shortfall">800,000.00' in page


# --- an application: the status token reissued ------------------------------------------------------------


def _portal_status(client: TestClient, number: str, token: str) -> int:
    form = client.get(f"/status?application_no={number}")
    r = client.post(
        "/status",
        data={"application_no": number, "token": token, "csrf_token": hidden(form.text, "csrf_token")},
    )
    return r.status_code


def test_an_officer_reissues_the_status_token_once_on_the_page(
    client: TestClient, session: Session, signed: Signed, bank_a: Caller
) -> None:
    created = client.post(
        "/api/v1/applications", json=application_payload(make_enterprise(session).credit_code, "BANK_A")
    )
    assert created.status_code == 201, created.text
    number, old = created.json()["application_no"], created.json()["status_token"]
    url = f"/console/applications/{number}"
    officer, analyst = signed("officer"), signed("analyst")

    assert 'data-form="reissue"' not in analyst.get(url).text
    forced = _post(analyst, url, f"{url}/status-token", reason="forced by an analyst", nonce="a" * 32)
    assert forced.status_code == 403

    page = officer.get(url)
    assert 'data-form="reissue"' in page.text
    nonce = hidden(page.text, "nonce")
    missing = officer.post(f"{url}/status-token", data={"csrf_token": csrf_of(page.text), "nonce": nonce})
    assert missing.status_code == 422
    assert re.search(r'data-error-for="reissue_reason">[^<]+<', missing.text)

    reason = "申请人到局窗口办理，已核对营业执照和身份证"
    form = {"csrf_token": csrf_of(page.text), "nonce": nonce, "reason": reason}
    r = officer.post(f"{url}/status-token", data=form, follow_redirects=False)
    assert r.status_code == 200  # the token is in this answer, never in a redirect
    assert r.headers["cache-control"] == "no-store"
    new = re.search(r"data-status-token>(lft_[A-Za-z0-9_-]+)<", r.text)
    assert new is not None
    token = new.group(1)
    assert token != old
    assert "立即交给申请人" in r.text
    assert _portal_status(client, number, token) == 200
    assert _portal_status(client, number, old) == 404
    assert token not in officer.get(url).text  # shown once

    # a double submit (the same form posted again) shows the same token, the one in force
    again = officer.post(f"{url}/status-token", data=form, follow_redirects=False)
    assert again.status_code == 200
    assert f"data-status-token>{token}<" in again.text
    assert "data-replayed" in again.text
    [audit] = _audits(session, "application.status_token_reissue", number)
    assert audit.reason == reason
    assert token not in str(audit.after)
    assert _portal_status(client, number, token) == 200

    # a later reissue replaces it; the first form posted once more never shows its dead token
    later = officer.get(url)
    r2 = officer.post(
        f"{url}/status-token",
        data={"csrf_token": csrf_of(later.text), "nonce": hidden(later.text, "nonce"), "reason": reason},
    )
    newer = re.search(r"data-status-token>(lft_[A-Za-z0-9_-]+)<", r2.text)
    assert newer is not None
    assert newer.group(1) != token
    stale = officer.post(f"{url}/status-token", data=form)
    assert stale.status_code == 409
    assert "data-token-superseded" in stale.text
    assert token not in stale.text
    assert _portal_status(client, number, newer.group(1)) == 200
    assert len(_audits(session, "application.status_token_reissue", number)) == 2


# --- breakers: the programme-wide stop ---------------------------------------------------------------


def test_an_officer_lifts_the_programme_wide_stop(
    client: TestClient, session: Session, signed: Signed, analyst: Caller
) -> None:
    session.add(breakers.Breaker(scope=breakers.PROGRAMME, bank_id=None, state=breakers.BreakerState.stopped))
    session.commit()
    officer, viewer = signed("officer"), signed("analyst")
    seen = _section(viewer.get("/console/work").text, "breakers_to_lift")
    assert "data-breaker-programme" in seen
    assert "/console/breakers/programme/lift" not in seen
    assert (
        _post(viewer, "/console/work", "/console/breakers/programme/lift", reason="forced").status_code == 403
    )

    work = officer.get("/console/work")
    assert "/console/breakers/programme/lift" in _section(work.text, "breakers_to_lift")
    refused = _post(officer, "/console/work", "/console/breakers/programme/lift", reason="")
    assert refused.status_code == 422
    assert re.search(r'data-error-for="programme_reason">[^<]+<', refused.text)
    r = _post(
        officer, "/console/work", "/console/breakers/programme/lift", reason="年度代偿已核定，基金已补足"
    )
    assert r.status_code == 303
    api = client.get("/api/v1/fund/breakers", headers=analyst.headers).json()
    assert api["programme"]["coverage_stopped"] is False
    [audit] = _audits(session, "breaker.lift", breakers.PROGRAMME)
    assert audit.reason == "年度代偿已核定，基金已补足"
    assert "data-breaker-programme" not in officer.get("/console/work").text
    again = _post(officer, "/console/work", "/console/breakers/programme/lift", reason="once more")
    assert again.status_code == 409  # nothing to lift: the service's refusal, shown on the page


# --- a bank: contracts without an application, reopened months ----------------------------------------


def test_an_officer_toggles_a_banks_contracts_without_an_application(
    session: Session, signed: Signed, bank_a: Caller
) -> None:
    bank = session.get(Bank, bank_a.id)
    assert bank is not None
    bank.allow_contracts_without_application = False  # the default of a new bank
    session.commit()
    url = f"/console/banks/{bank_a.id}"
    officer, analyst = signed("officer"), signed("analyst")
    page = officer.get(url)
    assert 'data-value="no"' in page.text
    assert "历史数据导入" in page.text  # the one-line explanation
    assert "/contracts-without-application" not in analyst.get(url).text
    assert _post(analyst, url, f"{url}/contracts-without-application", allow="yes").status_code == 403
    r = _post(officer, url, f"{url}/contracts-without-application", allow="yes")
    assert r.status_code == 303
    session.refresh(bank)
    assert bank.allow_contracts_without_application is True
    [audit] = _audits(session, "bank.update", str(bank_a.id))
    assert (audit.before or {}).get("allow_contracts_without_application") is False
    assert (audit.after or {}).get("allow_contracts_without_application") is True
    assert 'data-value="yes"' in officer.get(url).text
    assert _post(officer, url, f"{url}/contracts-without-application", allow="no").status_code == 303
    session.refresh(bank)
    assert bank.allow_contracts_without_application is False
    assert len(_audits(session, "bank.update", str(bank_a.id))) == 2


def test_an_officer_reopens_a_banks_closed_month(
    client: TestClient,
    session: Session,
    signed: Signed,
    bank_a: Caller,
    officer: Caller,
    people: dict[str, Staff],
) -> None:
    report = {
        "month_end": "2021-06-30",
        "loans": [{"bank_loan_ref": "GHOST-1", "outstanding_principal": "1.00", "days_past_due": 0}],
    }
    assert client.post("/api/v1/status-reports", json=report, headers=bank_a.headers).status_code == 201
    url = f"/console/banks/{bank_a.id}"
    clerk, analyst = signed("officer"), signed("analyst")
    assert 'data-form="reopen"' not in analyst.get(url).text
    assert (
        _post(analyst, url, f"{url}/reopenings", month_end="2021-06-30", reason="forced").status_code == 403
    )
    page = clerk.get(url)
    assert '<option value="2021-06-30"' in page.text
    short = _post(clerk, url, f"{url}/reopenings", month_end="2021-06-30", reason="x")
    assert short.status_code == 422
    assert re.search(r'data-error-for="reopen_reason">[^<]+<', short.text)
    reason = "银行6月还款文件晚于报告送达"
    r = _post(clerk, url, f"{url}/reopenings", month_end="2021-06-30", reason=reason)
    assert r.status_code == 303
    [row] = session.scalars(select(MonthReopening).where(MonthReopening.bank_id == bank_a.id)).all()
    assert (str(row.month_end), row.reason, row.reopened_by) == ("2021-06-30", reason, people["officer"].id)
    [audit] = _audits(session, "month.reopen", str(row.id))
    assert audit.reason == reason
    listed = client.get(
        "/api/v1/status-reports/reopenings", params={"bank_id": bank_a.id}, headers=officer.headers
    )
    shown = re.findall(r'data-reopening="([0-9-]+)"', clerk.get(url).text)
    assert shown == [r["month_end"] for r in listed.json()["items"]] == ["2021-06-30"]
    twice = _post(clerk, url, f"{url}/reopenings", month_end="2021-06-30", reason=reason)
    assert twice.status_code == 409
    assert re.search(r'data-error-for="reopen_month_end">[^<]*已重新开放', twice.text)


# --- an enterprise: its grade on record -------------------------------------------------------------------


def test_an_officer_sets_an_enterprises_grade_with_a_reason(session: Session, signed: Signed) -> None:
    ent = make_enterprise(session, grade=None)
    url = f"/console/enterprises/{ent.credit_code}"
    officer, analyst = signed("officer"), signed("analyst")
    assert 'data-grade=""' in officer.get(url).text
    assert 'data-form="grade"' not in analyst.get(url).text
    assert _post(analyst, url, f"{url}/grade", grade="B", reason="forced by an analyst").status_code == 403
    missing = _post(officer, url, f"{url}/grade", grade="B")
    assert missing.status_code == 422
    assert re.search(r'data-error-for="reason">[^<]+<', missing.text)
    wrong = _post(officer, url, f"{url}/grade", grade="F", reason="历史合同导入前核定")
    assert wrong.status_code == 422
    assert re.search(r'data-error-for="grade">[^<]+<', wrong.text)
    r = _post(officer, url, f"{url}/grade", grade="B", reason="历史合同导入前核定")
    assert r.status_code == 303
    stored = session.get(Enterprise, ent.id)
    assert stored is not None
    session.refresh(stored)
    assert stored.grade == "B"
    [audit] = _audits(session, "enterprise.grade", ent.credit_code)
    assert (audit.reason, audit.after) == ("历史合同导入前核定", {"grade": "B"})
    register = officer.get(f"/console/enterprises?q={ent.credit_code}").text
    assert 'data-grade="B"' in register
