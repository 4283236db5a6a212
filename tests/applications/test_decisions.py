"""Bank decisions, scoping between banks, bureau reading, officer overrides and the hand-over to loans."""

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.applications import service
from loanfund.applications.models import ApplicationStatus
from loanfund.audit.models import AuditRecord
from loanfund.core.config import Settings
from loanfund.core.errors import Conflict, NotFound
from loanfund.core.money import to_fen, yuan_str, yuan_text
from loanfund.rates.service import credit_line_for, max_rate_on
from tests.factories import (
    TEST_ACTOR,
    WEAK_INDICATORS,
    Caller,
    application_payload,
    credit_code,
    make_enterprise,
)

URL = "/api/v1/applications"
BANK_URL = "/api/v1/bank/applications"
DAY = date(2021, 6, 1)  # LPR 3.85 %, the launch credit-line table
SetDay = Callable[[date], None]


def apply(client: TestClient, session: Session, bank: str = "BANK_A", **kw: Any) -> dict[str, Any]:
    ent = make_enterprise(session)
    r = client.post(URL, json=application_payload(ent.credit_code, bank, **kw))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def approval(line: str, **kw: Any) -> dict[str, Any]:
    return {"amount": line, "term_months": 12, "annual_rate_pct": "3.85", **kw}


@pytest.fixture
def in_2021(on_day: SetDay) -> None:
    on_day(DAY)


@pytest.mark.usefixtures("in_2021")
def test_approve_within_the_limits(
    client: TestClient, session: Session, settings: Settings, bank_a: Caller
) -> None:
    app = apply(client, session)
    no, line = app["application_no"], app["evaluation"]["credit_line"]
    assert line == yuan_str(credit_line_for(session, "A", DAY))
    cap = max_rate_on(session, settings, DAY)
    assert cap == Decimal("3.85") + Decimal(settings.rate_cap_bp) / 100

    too_much = client.post(
        f"{BANK_URL}/{no}/approve",
        json=approval(str(Decimal(line) + Decimal("0.01"))),
        headers=bank_a.headers,
    )
    assert too_much.status_code == 422
    assert too_much.json()["error"]["code"] == "amount_exceeds_credit_line"
    assert too_much.json()["error"]["details"][0]["field"] == "amount"
    assert (
        too_much.json()["error"]["message"]
        == f"The amount exceeds the credit line of {yuan_text(to_fen(line))}"
    )
    assert too_much.json()["error"]["details"][0]["credit_line"] == line

    too_long = client.post(
        f"{BANK_URL}/{no}/approve",
        json=approval(line, term_months=settings.max_term_months + 1),
        headers=bank_a.headers,
    )
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "term_too_long"
    assert too_long.json()["error"]["details"][0]["field"] == "term_months"

    too_dear = client.post(
        f"{BANK_URL}/{no}/approve",
        json=approval(line, annual_rate_pct=str(cap + Decimal("0.0001"))),
        headers=bank_a.headers,
    )
    assert too_dear.status_code == 422
    assert too_dear.json()["error"]["code"] == "rate_above_cap"
    assert too_dear.json()["error"]["details"][0]["field"] == "annual_rate_pct"
    assert too_dear.json()["error"]["details"][0]["max_rate_pct"] == f"{cap:.4f}"

    ok = client.post(
        f"{BANK_URL}/{no}/approve", json=approval(line, annual_rate_pct=str(cap)), headers=bank_a.headers
    )
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["status"] == "approved"
    assert body["decision"]["outcome"] == "approved"
    assert body["decision"]["amount"] == line
    assert body["decision"]["term_months"] == 12
    assert Decimal(body["decision"]["annual_rate_pct"]) == cap
    assert body["decision"]["decision_date"] == DAY.isoformat()

    # the applicant sees the decision; no loan yet
    shown = client.get(f"{URL}/{no}", headers={"Authorization": f"Bearer {app['status_token']}"}).json()
    assert shown["status"] == "approved"
    assert shown["decision"] == body["decision"]
    assert shown["loan"] is None

    # a second decision is a state conflict
    again = client.post(f"{BANK_URL}/{no}/approve", json=approval(line), headers=bank_a.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "application_state_invalid"
    reject = client.post(
        f"{BANK_URL}/{no}/reject", json={"reason": "changed our mind"}, headers=bank_a.headers
    )
    assert reject.status_code == 409
    assert reject.json()["error"]["code"] == "application_state_invalid"

    rec = session.scalar(select(AuditRecord).where(AuditRecord.action == "application.approve"))
    assert rec is not None
    assert rec.actor_kind == "bank"
    assert rec.actor_id == bank_a.id
    assert rec.before is not None
    assert rec.before["status"] == "pending_bank"
    assert rec.after is not None
    assert rec.after["status"] == "approved"


def test_the_cap_follows_the_lpr_on_the_decision_date(
    client: TestClient, session: Session, settings: Settings, bank_a: Caller, on_day: SetDay
) -> None:
    on_day(date(2021, 12, 19))
    app = apply(client, session)
    line = app["evaluation"]["credit_line"]
    cap_before = max_rate_on(session, settings, date(2021, 12, 19))
    on_day(date(2021, 12, 20))  # the LPR fell to 3.80 that day
    cap_after = max_rate_on(session, settings, date(2021, 12, 20))
    assert cap_after < cap_before
    r = client.post(
        f"{BANK_URL}/{app['application_no']}/approve",
        json=approval(line, annual_rate_pct=str(cap_before)),
        headers=bank_a.headers,
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "rate_above_cap"


@pytest.mark.usefixtures("in_2021")
def test_reject_with_a_reason(client: TestClient, session: Session, bank_a: Caller) -> None:
    app = apply(client, session)
    no = app["application_no"]
    short = client.post(f"{BANK_URL}/{no}/reject", json={"reason": ""}, headers=bank_a.headers)
    assert short.status_code == 422
    assert short.json()["error"]["details"][0]["field"] == "reason"
    r = client.post(f"{BANK_URL}/{no}/reject", json={"reason": "cash flow too thin"}, headers=bank_a.headers)
    assert r.status_code == 200
    assert r.json()["status"] == "rejected"
    assert r.json()["decision"]["outcome"] == "rejected"
    assert r.json()["decision"]["rejection_reason"] == "cash flow too thin"
    shown = client.get(f"{URL}/{no}", headers={"Authorization": f"Bearer {app['status_token']}"}).json()
    assert shown["decision"]["rejection_reason"] == "cash flow too thin"
    line = app["evaluation"]["credit_line"]
    assert (
        client.post(f"{BANK_URL}/{no}/approve", json=approval(line), headers=bank_a.headers).status_code
        == 409
    )


@pytest.mark.usefixtures("in_2021")
def test_a_bank_sees_and_decides_only_its_own(
    client: TestClient, session: Session, bank_a: Caller, bank_b: Caller, analyst: Caller
) -> None:
    mine = apply(client, session, "BANK_A")
    theirs = apply(client, session, "BANK_B")
    ineligible = apply(client, session, "BANK_A", indicators=WEAK_INDICATORS)
    no = mine["application_no"]

    listed = client.get(BANK_URL, headers=bank_a.headers).json()
    assert [a["application_no"] for a in listed["items"]] == [no]
    assert listed["items"][0]["contact"]["phone"] == "13800138000"
    assert "status_token" not in listed["items"][0]
    assert [a["application_no"] for a in client.get(BANK_URL, headers=bank_b.headers).json()["items"]] == [
        theirs["application_no"]
    ]

    line = mine["evaluation"]["credit_line"]
    assert client.get(f"{BANK_URL}/{no}", headers=bank_a.headers).status_code == 200
    for r in (
        client.get(f"{BANK_URL}/{no}", headers=bank_b.headers),
        client.post(f"{BANK_URL}/{no}/approve", json=approval(line), headers=bank_b.headers),
        client.post(f"{BANK_URL}/{no}/reject", json={"reason": "not ours anyway"}, headers=bank_b.headers),
        client.get(f"{BANK_URL}/{ineligible['application_no']}", headers=bank_a.headers),
    ):
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "application_not_found"
    assert client.get(f"{BANK_URL}/{no}", headers=bank_a.headers).json()["status"] == "pending_bank"

    # roles: staff may not use the bank endpoints, banks may not use the bureau ones
    assert client.get(BANK_URL, headers=analyst.headers).status_code == 403
    assert client.get(URL, headers=bank_a.headers).status_code == 403
    assert client.get(f"{URL}/{no}/detail", headers=bank_a.headers).status_code == 403


@pytest.mark.usefixtures("in_2021")
def test_bank_list_filters_and_pages(client: TestClient, session: Session, bank_a: Caller) -> None:
    apps = [apply(client, session) for _ in range(3)]
    line = apps[0]["evaluation"]["credit_line"]
    no = apps[0]["application_no"]
    assert (
        client.post(f"{BANK_URL}/{no}/approve", json=approval(line), headers=bank_a.headers).status_code
        == 200
    )
    approved = client.get(BANK_URL, params={"status": "approved"}, headers=bank_a.headers).json()
    assert [a["application_no"] for a in approved["items"]] == [no]
    first = client.get(BANK_URL, params={"limit": 2}, headers=bank_a.headers).json()
    assert len(first["items"]) == 2
    assert first["next_cursor"] is not None
    rest = client.get(
        BANK_URL, params={"limit": 2, "cursor": first["next_cursor"]}, headers=bank_a.headers
    ).json()
    assert [a["application_no"] for a in first["items"] + rest["items"]] == [
        a["application_no"] for a in apps
    ]
    assert rest["next_cursor"] is None
    bad = client.get(BANK_URL, params={"status": "sleeping"}, headers=bank_a.headers)
    assert bad.status_code == 422


@pytest.mark.usefixtures("in_2021")
def test_bureau_reads_everything_with_filters(
    client: TestClient, session: Session, bank_a: Caller, bank_b: Caller, analyst: Caller
) -> None:
    a = apply(client, session, "BANK_A")
    b = apply(client, session, "BANK_B")
    unknown = client.post(URL, json=application_payload(credit_code(), "BANK_B")).json()
    every = client.get(URL, headers=analyst.headers).json()["items"]
    assert {x["application_no"] for x in every} >= {
        a["application_no"],
        b["application_no"],
        unknown["application_no"],
    }
    only_b = client.get(URL, params={"bank_code": "BANK_B"}, headers=analyst.headers).json()["items"]
    assert {x["application_no"] for x in only_b} == {b["application_no"], unknown["application_no"]}
    inel = client.get(URL, params={"status": "ineligible"}, headers=analyst.headers).json()["items"]
    assert [x["application_no"] for x in inel] == [unknown["application_no"]]
    by_code = client.get(URL, params={"credit_code": a["credit_code"]}, headers=analyst.headers).json()[
        "items"
    ]
    assert [x["application_no"] for x in by_code] == [a["application_no"]]
    dated = client.get(URL, params={"applied_from": "2022-01-01"}, headers=analyst.headers).json()["items"]
    assert dated == []
    detail = client.get(f"{URL}/{a['application_no']}/detail", headers=analyst.headers)
    assert detail.status_code == 200
    assert detail.json()["indicators"]["rd_spending"] == "500000.00"
    assert "status_token" not in detail.json()
    assert client.get(f"{URL}/KV2021999999/detail", headers=analyst.headers).status_code == 404


@pytest.mark.usefixtures("in_2021")
def test_officer_override_is_audited(
    client: TestClient, session: Session, bank_a: Caller, officer: Caller, analyst: Caller
) -> None:
    app = apply(client, session)
    no = app["application_no"]
    url = f"{URL}/{no}/override"
    reason = "patents verified as licensed out; grade lowered"
    assert client.post(url, json={"grade": "C", "reason": reason}, headers=analyst.headers).status_code == 403
    assert client.post(url, json={"grade": "C", "reason": reason}, headers=bank_a.headers).status_code == 403
    empty = client.post(url, json={"reason": reason}, headers=officer.headers)
    assert empty.status_code == 422
    assert empty.json()["error"]["code"] == "override_empty"
    assert client.post(url, json={"grade": "F", "reason": reason}, headers=officer.headers).status_code == 422

    r = client.post(url, json={"grade": "C", "reason": reason}, headers=officer.headers)
    assert r.status_code == 200, r.text
    ev = r.json()["evaluation"]
    assert ev["grade"] == "C"
    assert ev["computed_grade"] == "A"
    assert ev["credit_line"] == yuan_str(credit_line_for(session, "C", DAY))
    assert ev["computed_credit_line"] == app["evaluation"]["credit_line"]
    assert ev["overridden"] is True
    assert r.json()["override_reason"] == reason

    r = client.post(
        url,
        json={"credit_line": "1234567.89", "reason": "line set by the committee"},
        headers=officer.headers,
    )
    assert r.json()["evaluation"]["grade"] == "C"
    assert r.json()["evaluation"]["credit_line"] == "1234567.89"

    recs = session.scalars(
        select(AuditRecord).where(AuditRecord.action == "application.override").order_by(AuditRecord.id)
    ).all()
    assert len(recs) == 2
    first = recs[0]
    assert first.actor_id == officer.id
    assert first.reason == reason
    assert first.before is not None
    assert first.after is not None
    assert first.before["grade"] == "A"
    assert first.after["grade"] == "C"
    assert first.after["credit_line_fen"] == credit_line_for(session, "C", DAY)

    # the bank is held to the line in force
    over = client.post(f"{BANK_URL}/{no}/approve", json=approval("1234567.90"), headers=bank_a.headers)
    assert over.json()["error"]["code"] == "amount_exceeds_credit_line"
    assert (
        client.post(
            f"{BANK_URL}/{no}/approve", json=approval("1234567.89"), headers=bank_a.headers
        ).status_code
        == 200
    )
    # once decided, no more overrides
    late = client.post(url, json={"grade": "A", "reason": reason}, headers=officer.headers)
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "application_state_invalid"


@pytest.mark.usefixtures("in_2021")
def test_override_can_lift_a_low_score_but_not_a_registry_refusal(
    client: TestClient, session: Session, bank_a: Caller, officer: Caller
) -> None:
    low = apply(client, session, indicators=WEAK_INDICATORS)
    url = f"{URL}/{low['application_no']}/override"
    need_grade = client.post(
        url, json={"credit_line": "100000", "reason": "special case"}, headers=officer.headers
    )
    assert need_grade.status_code == 422
    assert need_grade.json()["error"]["details"][0]["field"] == "grade"
    r = client.post(
        url, json={"grade": "E", "reason": "strategic sector, committee decision"}, headers=officer.headers
    )
    assert r.status_code == 200
    assert r.json()["status"] == "pending_bank"
    assert r.json()["ineligible_reason"] is None
    assert r.json()["evaluation"]["credit_line"] == yuan_str(credit_line_for(session, "E", DAY))
    assert client.get(f"{BANK_URL}/{low['application_no']}", headers=bank_a.headers).status_code == 200

    unknown = client.post(URL, json=application_payload(credit_code(), "BANK_A")).json()
    r = client.post(
        f"{URL}/{unknown['application_no']}/override",
        json={"grade": "A", "reason": "please"},
        headers=officer.headers,
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "application_state_invalid"


def test_hand_over_to_loans(session: Session, settings: Settings, bank_a: Caller, bank_b: Caller) -> None:
    from tests.factories import make_application

    ent = make_enterprise(session)
    app, _ = make_application(session, settings, ent.credit_code, "BANK_A", DAY)
    with pytest.raises(Conflict):
        service.get_approved_for_bank(session, bank_a.id, app.application_no)
    with pytest.raises(NotFound):
        service.get_approved_for_bank(session, bank_b.id, app.application_no)
    with pytest.raises(NotFound):
        service.get_approved_for_bank(session, bank_a.id, "KV2021999999")
    with pytest.raises(Conflict):
        service.mark_lent(session, TEST_ACTOR, app, loan_id=1)

    assert app.credit_line_fen is not None
    service.approve(
        session,
        settings,
        TEST_ACTOR,
        app,
        amount=Decimal(app.credit_line_fen) / 100,
        term_months=6,
        annual_rate_pct=Decimal("4.1"),
        today=DAY,
    )
    got = service.get_approved_for_bank(session, bank_a.id, app.application_no)
    assert got.id == app.id
    assert got.approved_amount_fen == app.credit_line_fen
    assert got.approved_term_months == 6
    assert got.approved_rate_pct == Decimal("4.1")
    assert got.enterprise is not None
    assert got.enterprise.id == ent.id
    service.mark_lent(session, TEST_ACTOR, got, loan_id=42)
    assert got.status == ApplicationStatus.lent
    rec = session.scalar(select(AuditRecord).where(AuditRecord.action == "application.lent"))
    assert rec is not None
    assert rec.after is not None
    assert rec.after["loan_id"] == 42
    with pytest.raises(Conflict):
        service.get_approved_for_bank(session, bank_a.id, app.application_no)
    with pytest.raises(Conflict):
        service.mark_lent(session, TEST_ACTOR, got, loan_id=43)
    assert service.loan_summary(session, app.id) is None
