"""The stress test through the API: stored and audited runs, inputs echoed and reproducible by seed,
presets, figures that can be worked out by hand, the book at an earlier date, exports, refusals."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.risk.stress import months_until
from tests.conftest import NplLoan
from tests.factories import Caller, make_enterprise

URL = "/api/v1/fund/stress-tests"
NO_DEFAULTS = {g: "0" for g in "ABCDEU"}


def _lend(
    client: TestClient, session: Session, caller: Caller, ref: str, amount: str, start: date, months: int = 12
) -> dict[str, Any]:
    body = {
        "bank_loan_ref": ref,
        "credit_code": make_enterprise(session).credit_code,
        "amount": amount,
        "annual_rate_pct": "4.00",
        "start_date": start.isoformat(),
        "maturity_date": (start + timedelta(days=30 * months)).isoformat(),
    }
    r = client.post("/api/v1/loans", json=body, headers=caller.headers)
    assert r.status_code == 201, r.text
    loan: dict[str, Any] = r.json()
    event = {"bank_event_ref": f"{ref}-D", "date": start.isoformat(), "amount": amount}
    r = client.post(f"/api/v1/loans/{loan['id']}/disbursements", json=event, headers=caller.headers)
    assert r.status_code == 201, r.text
    return loan


def _run(client: TestClient, caller: Caller, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    r = client.post(URL, json=body, headers=caller.headers)
    assert r.status_code == status, r.text
    result: dict[str, Any] = r.json()
    return result


@pytest.fixture
def book(client: TestClient, session: Session, bank_a: Caller, bank_b: Caller, today: date) -> None:
    """Bank A: 4 loans of 1,000,000 yuan; bank B: 2 loans of 3,000,000."""
    for i in range(4):
        _lend(client, session, bank_a, f"A-{i}", "1000000.00", today - timedelta(days=30 * i + 10))
    for i in range(2):
        _lend(client, session, bank_b, f"B-{i}", "3000000.00", today - timedelta(days=45))


@pytest.mark.usefixtures("fund_10m", "book")
def test_a_run_is_stored_audited_and_read_back(
    client: TestClient, session: Session, analyst: Caller, officer: Caller, approver: Caller, bank_a: Caller
) -> None:
    run = _run(client, analyst, {"scenarios": 2000, "seed": 5})
    inputs, out = run["inputs"], run["outputs"]
    assert (run["preset"], run["created_by"]) == ("baseline", f"staff:{analyst.name}")
    assert inputs["horizon_months"] == 12
    assert (inputs["correlation"], inputs["seed"], inputs["scenarios"]) == ("0.1500", 5, 2000)
    exposure = client.get("/api/v1/fund/exposure", headers=analyst.headers).json()["total"]
    assert out["covered_outstanding"] == exposure["covered_outstanding"] == "10000000.00"
    assert out["available_balance"] == exposure["available_balance"] == "10000000.00"
    assert out["covered_loans"] == 6
    assert [(b["bank_code"], b["loans"]) for b in out["by_bank"]] == [("BANK_A", 4), ("BANK_B", 2)]
    assert len(out["balance_fan"]) == 12
    assert sum(h["scenarios"] for h in out["loss_histogram"]) == 2000
    for month in out["balance_fan"]:
        assert (
            Decimal(month["p05"]) <= Decimal(month["p50"]) <= Decimal(month["p95"]) <= Decimal("10000000.00")
        )
    assert Decimal(out["var_95"]) <= Decimal(out["var_99"]) <= Decimal(out["expected_shortfall_99"])
    contributions = sum(Decimal(b["var_99_contribution"]) for b in out["by_bank"])
    assert abs(contributions - Decimal(out["var_99"])) <= Decimal("0.02")
    # read back as answered; listed first; audited with who ran it
    assert client.get(f"{URL}/{run['id']}", headers=approver.headers).json() == run
    listed = client.get(URL, headers=officer.headers).json()
    assert listed["items"][0]["id"] == run["id"]
    assert listed["items"][0]["expected_loss"] == out["expected_loss"]
    audit = session.scalar(select(AuditRecord).where(AuditRecord.action == "stress_test.run"))
    assert audit is not None
    assert (audit.entity_id, audit.actor_name) == (str(run["id"]), f"staff:{analyst.name}")
    # the bureau's: a bank is refused, an approver may read but not run
    assert client.post(URL, json={}, headers=bank_a.headers).status_code == 403
    assert client.get(URL, headers=bank_a.headers).status_code == 403
    assert client.post(URL, json={}, headers=approver.headers).status_code == 403
    assert client.get(f"{URL}/999999", headers=analyst.headers).status_code == 404


@pytest.mark.usefixtures("fund_10m", "book")
def test_the_same_seed_and_inputs_give_the_same_results(
    client: TestClient, analyst: Caller, officer: Caller
) -> None:
    first = _run(client, analyst, {"preset": "pds_doubled", "scenarios": 3000, "seed": 9})
    again = _run(client, officer, {"preset": "pds_doubled", "scenarios": 3000, "seed": 9})
    assert again["outputs"] == first["outputs"]
    assert again["inputs"] == first["inputs"]
    # the echoed inputs, sent back as they are, run the same model
    replay = _run(client, officer, first["inputs"])
    assert replay["outputs"] == first["outputs"]
    other = _run(client, officer, {**first["inputs"], "seed": 10})
    assert other["outputs"]["expected_loss"] != first["outputs"]["expected_loss"]


@pytest.mark.usefixtures("fund_10m", "book")
def test_presets_and_what_overrides_them(client: TestClient, analyst: Caller, bank_b: Caller) -> None:
    base = _run(client, analyst, {"scenarios": 4000})
    assert base["inputs"]["pd_multiplier"] == "1.0000"
    doubled = _run(client, analyst, {"preset": "pds_doubled", "scenarios": 4000})
    assert doubled["inputs"]["pd_multiplier"] == "2.0000"
    assert doubled["inputs"]["pd_by_grade"] == base["inputs"]["pd_by_grade"]  # before the multiplier
    grade = doubled["calibration"]["pd_by_grade"]["U"]
    assert Decimal(grade["pd_used"]) == 2 * Decimal(grade["pd"])
    ratio = Decimal(doubled["outputs"]["expected_loss"]) / Decimal(base["outputs"]["expected_loss"])
    assert Decimal("1.8") < ratio < Decimal("2.2")
    correlated = _run(client, analyst, {"preset": "correlation_030", "scenarios": 4000})
    assert correlated["inputs"]["correlation"] == "0.3000"
    overridden = _run(client, analyst, {"preset": "correlation_030", "correlation": "0.2", "scenarios": 200})
    assert overridden["inputs"]["correlation"] == "0.2000"
    # the largest bank (B: 6,000,000 covered) all defaults: its loss is certain
    shock = _run(client, analyst, {"preset": "largest_bank_defaults", "scenarios": 500, "lgd": "0.5"})
    assert shock["inputs"]["all_default_banks"] == [bank_b.id]
    b = next(x for x in shock["outputs"]["by_bank"] if x["bank_code"] == "BANK_B")
    assert b["expected_loss"] == "2400000.00"  # 0.8 × 6,000,000 × 0.5
    assert b["p_bank_breaker"] == "1.000000"
    assert Decimal(shock["outputs"]["var_95"]) >= Decimal("2400000.00")


@pytest.mark.usefixtures("fund_10m", "lenient_breakers")
def test_figures_worked_out_by_hand(
    client: TestClient, session: Session, analyst: Caller, bank_a: Caller, npl_loan: NplLoan, today: date
) -> None:
    """Nothing defaults but the loan already non-performing (PD 1): every scenario loses the fund's share
    of it × LGD, in the first month."""
    npl = npl_loan(bank_a, "2000000")
    _lend(client, session, bank_a, "A-OK", "5000000.00", today - timedelta(days=20))
    run = _run(client, analyst, {"scenarios": 300, "pd_by_grade": NO_DEFAULTS, "lgd": "0.75"})
    out = run["outputs"]
    loss = "1200000.00"  # 0.8 × 2,000,000 × 0.75
    assert out["expected_loss"] == out["var_95"] == out["var_99"] == out["expected_shortfall_99"] == loss
    assert out["expected_loss_standard_error"] == "0.00"
    assert out["p_exhaustion"] == "0.000000"
    assert out["p_programme_breaker"] == "0.000000"  # 1,200,000 < 50% of 10,000,000
    assert {m["p50"] for m in out["balance_fan"]} == {"8800000.00"}  # charged in the first month
    [a] = out["by_bank"]
    assert (a["expected_loss"], a["var_99_contribution"]) == (loss, loss)
    assert a["p_bank_breaker"] == "0.000000"  # 2/7 non-performing, but these breakers trip at 150%
    assert run["calibration"]["pd_by_grade"]["U"]["source"] == "input"
    # a fund smaller than the certain loss is exhausted in every scenario
    run = _run(client, analyst, {"scenarios": 300, "pd_by_grade": NO_DEFAULTS, "lgd": "1"})
    assert run["outputs"]["expected_loss"] == "1600000.00"
    assert npl["state"] == "non_performing"


@pytest.mark.usefixtures("fund_10m", "lenient_breakers")
def test_a_reserved_claim_is_not_counted_twice(
    client: TestClient, analyst: Caller, officer: Caller, bank_a: Caller, npl_loan: NplLoan
) -> None:
    npl = npl_loan(bank_a, "1000000")
    body = {"scenarios": 200, "pd_by_grade": NO_DEFAULTS, "lgd": "1"}
    assert _run(client, analyst, body)["outputs"]["expected_loss"] == "800000.00"
    r = client.post(
        "/api/v1/claims",
        json={"loan_id": npl["id"], "principal_at_default": "1000000"},
        headers=bank_a.headers,
    )
    claim = r.json()
    assert (
        client.post(f"/api/v1/claims/{claim['id']}/approve", json={}, headers=officer.headers).status_code
        == 200
    )
    run = _run(client, analyst, body)
    assert run["outputs"]["expected_loss"] == "0.00"  # its 800,000 is reserved, off the available balance
    assert run["outputs"]["available_balance"] == "9200000.00"
    assert run["outputs"]["covered_outstanding"] == "1000000.00"
    assert run["outputs"]["simulated_outstanding"] == "0.00"
    assert (run["calibration"]["excluded_loans"], run["calibration"]["excluded_outstanding"]) == (
        1,
        "1000000.00",
    )


@pytest.mark.usefixtures("fund_10m")
def test_the_book_at_an_earlier_date(
    client: TestClient, session: Session, analyst: Caller, bank_a: Caller, today: date
) -> None:
    start = today - timedelta(days=100)
    loan = _lend(client, session, bank_a, "EARLIER", "3000000.00", start)
    repaid = today - timedelta(days=40)
    r = client.post(
        f"/api/v1/loans/{loan['id']}/repayments",
        json={"bank_event_ref": "EARLIER-R1", "date": repaid.isoformat(), "principal": "1000000.00"},
        headers=bank_a.headers,
    )
    assert r.status_code == 201, r.text
    for as_of, covered in ((start - timedelta(days=1), "0.00"), (repaid - timedelta(days=1), "3000000.00"),
                           (repaid, "2000000.00"), (today, "2000000.00")):  # fmt: skip
        out = _run(client, analyst, {"as_of": as_of.isoformat(), "scenarios": 100})["outputs"]
        assert out["covered_outstanding"] == covered, as_of
        exposure = client.get(
            "/api/v1/fund/exposure", params={"as_of": as_of.isoformat()}, headers=analyst.headers
        )
        assert exposure.json()["total"]["covered_outstanding"] == covered


def test_months_until_maturity() -> None:
    as_of = date(2021, 12, 31)
    assert months_until(as_of, date(2022, 1, 31)) == 1
    assert months_until(as_of, date(2022, 3, 15)) == 3
    assert months_until(as_of, date(2021, 11, 30)) == 1  # past due: at once
    assert months_until(date(2021, 12, 15), date(2022, 1, 20)) == 2


@pytest.mark.usefixtures("fund_10m", "book")
def test_refusals(client: TestClient, analyst: Caller, today: date) -> None:
    future = (today + timedelta(days=1)).isoformat()
    r = client.post(URL, json={"as_of": future}, headers=analyst.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "as_of_in_future")
    r = client.post(URL, json={"all_default_banks": [987654]}, headers=analyst.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "bank_not_found")
    for bad in (
        {"scenarios": 99},
        {"correlation": "1"},
        {"pd_by_grade": {"F": "0.1"}},
        {"lgd": "1.5"},
        {"x": 1},
    ):
        assert client.post(URL, json=bad, headers=analyst.headers).status_code == 422, bad


@pytest.mark.usefixtures("fund_10m", "book")
def test_exports(client: TestClient, analyst: Caller) -> None:
    run = _run(client, analyst, {"scenarios": 500, "name": "导出 / export"})
    r = client.get(f"{URL}/{run['id']}", params={"format": "csv"}, headers=analyst.headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    text = r.content.decode("utf-8-sig")
    assert run["outputs"]["expected_loss"] in text
    rows = list(csv.reader(io.StringIO(text)))
    assert ["expected_loss", "预期损失 / Expected loss", run["outputs"]["expected_loss"], "", ""] in rows
    r = client.get(f"{URL}/{run['id']}", params={"format": "xlsx"}, headers=analyst.headers)
    book = openpyxl.load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == [
        "结果 Results",
        "输入 Inputs",
        "违约概率 PD",
        "分银行 By bank",
        "损失分布 Losses",
        "余额 Balance",
    ]
    fan = list(book["余额 Balance"].iter_rows(min_row=9, values_only=True))
    assert len(fan) == 12
    r = client.get(URL, params={"format": "csv"}, headers=analyst.headers)
    assert r.status_code == 200
    assert "导出 / export" in r.content.decode("utf-8-sig")
    assert client.get(URL, params={"format": "xlsx"}, headers=analyst.headers).status_code == 200


@pytest.mark.usefixtures("fund_10m")
def test_the_list_pages_newest_first(client: TestClient, analyst: Caller) -> None:
    ids = [_run(client, analyst, {"scenarios": 100})["id"] for _ in range(3)]
    page = client.get(URL, params={"limit": 2}, headers=analyst.headers).json()
    assert [x["id"] for x in page["items"]] == ids[::-1][:2]
    rest = client.get(URL, params={"limit": 2, "cursor": page["next_cursor"]}, headers=analyst.headers).json()
    assert [x["id"] for x in rest["items"]] == [ids[0]]
    assert rest["next_cursor"] is None
