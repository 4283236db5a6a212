"""The portal's pages over HTTP: forms without JavaScript, CSRF, errors beside their fields, the nonce as
idempotency key, the status lookup and its budget of wrong tokens, the receipt, the headers."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loanfund.applications.models import Application
from loanfund.banks import service as bank_service
from loanfund.banks.models import BankStatus
from loanfund.core.config import Settings
from loanfund.core.ratelimit import RateLimiter
from loanfund.web import csrf
from loanfund.web.portal.router import application_body, form_field
from tests.factories import TEST_ACTOR, Caller, credit_code, make_enterprise


@pytest.fixture(autouse=True)
def fresh_limits(client: TestClient) -> RateLimiter:
    limiter: RateLimiter = client.app.state.rate_limiter  # type: ignore[attr-defined]
    limiter.reset()
    return limiter


def hidden(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, f"no hidden {name}"
    return m.group(1)


def form_for(client: TestClient, code: str, bank: str = "BANK_A", **fields: str) -> dict[str, str]:
    page = client.get("/apply")
    assert page.status_code == 200
    data = {
        csrf.FIELD: hidden(page.text, csrf.FIELD),
        "nonce": hidden(page.text, "nonce"),
        "credit_code": code,
        "contact_name": "张经理",
        "contact_phone": "13800138000",
        "contact_email": "",
        "requested_amount": "1,000,000",
        "term_months": "12",
        "bank_code": bank,
        "invention_patents": "5",
        "utility_model_patents": "5",
        "software_copyrights": "5",
        "rd_spending": "500000",
        "revenue": "10000000",
        "total_staff": "50",
        "rd_staff": "20",
        "senior_talent": "4",
        "high_tech_certificate": "true",
    }
    data.update(fields)
    return data


def count(session: Session, code: str) -> int:
    return int(session.scalar(select(func.count()).where(Application.credit_code == code)) or 0)


def error_beside(html: str, field: str) -> str:
    m = re.search(rf'data-error-for="{field}"[^>]*>([^<]*)<', html)
    assert m, f"no error element for {field}"
    return m.group(1).strip()


def test_the_programme_page(client: TestClient, bank_a: Caller, settings: Settings) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert '<html lang="zh-CN">' in r.text
    assert "5,000,000.00" in r.text  # the credit line of grade A in force
    assert "Bank BANK_A" in r.text
    assert f"{settings.rate_cap_bp} 个基点" in r.text
    assert settings.bureau_contact_phone in r.text
    assert 'href="/apply"' in r.text
    assert 'href="/status"' in r.text
    english = client.get("/?lang=en")
    assert "Credit line by grade" in english.text


def test_apply_without_javascript(client: TestClient, session: Session, bank_a: Caller) -> None:
    ent = make_enterprise(session)
    r = client.post("/apply", data=form_for(client, ent.credit_code))
    assert r.status_code == 200, r.text
    number = re.search(r"data-application-no>(KV\d+)<", r.text)
    token = re.search(r"data-status-token>(lft_[A-Za-z0-9_-]+)<", r.text)
    assert number
    assert token
    assert r.headers["cache-control"] == "no-store"
    app = session.scalar(select(Application).where(Application.application_no == number.group(1)))
    assert app is not None
    assert app.requested_amount_fen == 100_000_000  # "1,000,000" yuan, as typed
    assert app.contact_email is None
    assert app.high_tech_certificate is True
    # the token works on the API too: one service, one rule
    api = client.get(
        f"/api/v1/applications/{number.group(1)}", headers={"Authorization": f"Bearer {token.group(1)}"}
    )
    assert api.status_code == 200


def test_a_post_without_the_csrf_token_is_refused(
    client: TestClient, session: Session, bank_a: Caller
) -> None:
    ent = make_enterprise(session)
    data = form_for(client, ent.credit_code)
    for bad in ("", "0" * 64):
        r = client.post("/apply", data={**data, csrf.FIELD: bad})
        assert r.status_code == 403
        assert "表单已过期" in r.text
        assert ent.credit_code in r.text  # the answers are kept for a second try
    other = TestClient(client.app)  # another browser: its own cookie, not this form's
    assert other.post("/apply", data=data).status_code == 403
    assert client.post("/status", data={"application_no": "KV2021000001", "token": "x"}).status_code == 403
    assert client.post("/receipt", data={"application_no": "KV2021000001", "token": "x"}).status_code == 403
    assert count(session, ent.credit_code) == 0


def test_errors_are_shown_beside_their_fields_in_chinese(
    client: TestClient, session: Session, bank_a: Caller
) -> None:
    data = form_for(
        client,
        "91500114MA0000000X",  # well formed, wrong check character: the schema's pattern lets it through
        requested_amount="abc",
        contact_name="",
        contact_phone="phone",
        rd_staff="60",
        term_months="1.5",
    )
    r = client.post("/apply", data=data)
    assert r.status_code == 422
    assert error_beside(r.text, "requested_amount") == "请以“元”为单位填写金额，例如 800000 或 800000.00。"
    assert error_beside(r.text, "contact_name") == "此项为必填项。"
    assert error_beside(r.text, "contact_phone") == "请填写数字组成的电话号码，例如 13800138000。"
    assert error_beside(r.text, "rd_staff") == "研发人员数不能多于职工总数。"
    assert error_beside(r.text, "term_months") == "请填写整数。"
    assert 'aria-invalid="true"' in r.text
    assert "请修改以下内容" in r.text  # the summary, linking to each field
    assert 'href="#f-requested_amount"' in r.text
    malformed = client.post("/apply", data=form_for(client, "not-a-code"))
    assert error_beside(malformed.text, "credit_code").startswith("统一社会信用代码共18位")


def test_refusals_of_the_service_are_shown_beside_their_fields(
    client: TestClient, session: Session, bank_a: Caller, bank_b: Caller, settings: Settings
) -> None:
    ent = make_enterprise(session)
    r = client.post("/apply", data=form_for(client, ent.credit_code, term_months="24"))
    assert r.status_code == 422
    assert error_beside(r.text, "term_months") == f"期限最长为 {settings.max_term_months} 个月。"
    bank_service.set_status(
        session, TEST_ACTOR, bank_service.get_bank(session, bank_b.id), BankStatus.suspended, "breaker"
    )
    session.commit()
    form = form_for(client, ent.credit_code, bank="BANK_B")
    r = client.post("/apply", data=form)
    assert r.status_code == 409
    assert error_beside(r.text, "bank_code") == "该银行暂不受理申请，请选择其他银行。"
    # the corrected form is a new submission (a new nonce), not a replay of the refusal
    assert hidden(r.text, "nonce") != form["nonce"]
    fixed = {
        **form,
        "bank_code": "BANK_A",
        "nonce": hidden(r.text, "nonce"),
        csrf.FIELD: hidden(r.text, csrf.FIELD),
    }
    assert client.post("/apply", data=fixed).status_code == 200
    assert count(session, ent.credit_code) == 1


def test_a_suspended_bank_is_not_offered(
    client: TestClient, session: Session, bank_a: Caller, bank_b: Caller
) -> None:
    bank_service.set_status(
        session, TEST_ACTOR, bank_service.get_bank(session, bank_b.id), BankStatus.suspended, "breaker"
    )
    session.commit()
    page = client.get("/apply").text
    assert 'value="BANK_A"' in page
    assert 'value="BANK_B"' not in page


def test_the_same_form_posted_twice_is_one_application(
    client: TestClient, session: Session, bank_a: Caller
) -> None:
    ent = make_enterprise(session)
    data = form_for(client, ent.credit_code)
    first, second = client.post("/apply", data=data), client.post("/apply", data=data)
    assert first.status_code == second.status_code == 200
    number = re.search(r"data-application-no>(KV\d+)<", first.text)
    assert number
    assert f"data-application-no>{number.group(1)}<" in second.text
    assert count(session, ent.credit_code) == 1
    # a new form (a new nonce) is a new application
    assert client.post("/apply", data=form_for(client, ent.credit_code)).status_code == 200
    assert count(session, ent.credit_code) == 2


def _apply(client: TestClient, code: str) -> tuple[str, str]:
    r = client.post("/apply", data=form_for(client, code))
    number = re.search(r"data-application-no>(KV\d+)<", r.text)
    token = re.search(r"data-status-token>(lft_[A-Za-z0-9_-]+)<", r.text)
    assert number
    assert token
    return number.group(1), token.group(1)


def _status(client: TestClient, number: str, token: str) -> Any:
    page = client.get(f"/status?application_no={number}")
    return client.post(
        "/status", data={"application_no": number, "token": token, csrf.FIELD: hidden(page.text, csrf.FIELD)}
    )


def test_the_status_page(client: TestClient, session: Session, bank_a: Caller) -> None:
    number, token = _apply(client, make_enterprise(session).credit_code)
    form = client.get(f"/status?application_no={number}")
    assert 'name="application_no"' in form.text
    assert 'name="token"' in form.text
    assert f'value="{number}"' in form.text
    r = _status(client, number, token)
    assert r.status_code == 200
    assert 'data-step="with_bank" data-state="current"' in r.text
    assert 'data-indicator="invention_patents"' in r.text
    assert token not in client.get("/status").text
    receipt = client.post(
        "/receipt", data={"application_no": number, "token": token, csrf.FIELD: hidden(r.text, csrf.FIELD)}
    )
    assert receipt.status_code == 200
    assert receipt.headers["content-disposition"] == f'attachment; filename="receipt-{number}.txt"'
    assert number in receipt.text
    assert "申请回执" in receipt.text


def test_a_wrong_token_reads_like_a_missing_application(
    client: TestClient, session: Session, bank_a: Caller, settings: Settings
) -> None:
    number, token = _apply(client, make_enterprise(session).credit_code)
    wrong = _status(client, number, token[:-2] + "zz")
    missing = _status(client, "KV2099999999", token)
    assert wrong.status_code == missing.status_code == 404
    for r in (wrong, missing):
        assert "没有与该申请编号和查询凭证相符的申请" in r.text
        assert "以 lft_ 开头" in r.text
        assert settings.bureau_contact_phone in r.text
    blank = _status(client, "", "")
    assert blank.status_code == 422
    assert error_beside(blank.text, "application_no") == "请填写申请编号，例如 KV2026000123。"


def test_wrong_tokens_use_up_the_same_budget_as_the_api(
    client: TestClient, session: Session, bank_a: Caller, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "status_token_failure_limit", 3)
    number, token = _apply(client, make_enterprise(session).credit_code)
    for i in range(3):
        assert _status(client, number, f"lft_guess{i}").status_code == 404
    refused = _status(client, number, token)
    assert refused.status_code == 429
    assert "请求过于频繁" in refused.text
    api = client.get(f"/api/v1/applications/{number}", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 429


def test_pages_are_rate_limited_with_the_public_setting(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "public_rate_limit_per_minute", 2)
    assert client.get("/").status_code == 200
    assert client.get("/status").status_code == 200
    r = client.get("/apply")
    assert r.status_code == 429
    assert r.headers["content-type"].startswith("text/html")
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert "请求过于频繁" in r.text
    assert client.get("/static/kit/kit.css").status_code == 200  # static files are not counted


def test_page_headers_name_no_other_host(client: TestClient) -> None:
    for path in ("/", "/apply", "/status"):
        r = client.get(path)
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY"
        srcs = re.findall(r'(?:src|href|action)="([^"]+)"', r.text)
        assert srcs
        external = [s for s in srcs if re.match(r"^(https?:)?//", s)]
        assert not external, external


def test_the_pages_are_not_in_the_api_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not {"/", "/apply", "/status", "/receipt"} & set(paths)


def test_form_fields_map_to_the_api_schema() -> None:
    assert form_field(("contact", "name")) == "contact_name"
    assert form_field("contact.phone") == "contact_phone"
    assert form_field(("indicators", "rd_staff")) == "rd_staff"
    assert form_field(("credit_code",)) == "credit_code"
    body = application_body(
        {"credit_code": " 91500114ma00001 ", "requested_amount": "1 000 000.50", "contact_email": ""}
    )
    assert body["credit_code"] == "91500114ma00001"
    assert body["requested_amount"] == "1000000.50"
    assert "email" not in body["contact"]
    assert body["indicators"]["high_tech_certificate"] is False


def test_unknown_credit_code_is_ineligible_with_a_reason(client: TestClient, bank_a: Caller) -> None:
    r = client.post("/apply", data=form_for(client, credit_code()))
    assert r.status_code == 200
    assert 'data-reason="enterprise_not_in_registry"' in r.text
    assert "不在科技型企业库中" in r.text
