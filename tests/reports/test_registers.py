"""Aging, status-report discrepancies and enterprise history; and what a bank's key may see of each."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from loanfund.core.clock import business_today
from loanfund.core.config import Settings
from loanfund.reports import service
from tests.factories import Caller, credit_code, make_enterprise
from tests.reports.conftest import FUND_FIELDS, Book

URL = "/api/v1/reports"


def _get(client: TestClient, path: str, headers: dict[str, str], status: int = 200, **params: Any) -> Any:
    r = client.get(f"{URL}/{path}", params=params or None, headers=headers)
    assert r.status_code == status, r.text
    return r.json()


# --- aging ------------------------------------------------------------------------------------------


def test_aging_buckets_and_detail(client: TestClient, book: Book, analyst: Caller) -> None:
    body = _get(client, "aging", analyst.headers, detail="true")
    buckets = {b["bucket"]: (b["loans"], b["principal_at_risk"]) for b in body["buckets"]}
    assert buckets == {
        "1-30": (1, "300000.00"),  # L5, 10 days
        "31-60": (1, "2000000.00"),  # L2, 45 days
        "61-90": (0, "0.00"),
        "90+": (1, "600000.00"),  # L1, 95 days; L3 is compensated, no longer at risk
    }
    assert [(b["min_days"], b["max_days"]) for b in body["buckets"]] == [
        (1, 30),
        (31, 60),
        (61, 90),
        (91, None),
    ]
    assert body["totals"] == {"loans": 3, "principal_at_risk": "2900000.00", "share_of_covered": "0.5631"}
    assert body["covered_outstanding"] == "5150000.00"  # L1 + L2 + L4 + L5 + L6 today
    assert [(x["bank_loan_ref"], x["days_past_due"], x["bucket"]) for x in body["loans"]] == [
        ("L1", 95, "90+"),
        ("L2", 45, "31-60"),
        ("L5", 10, "1-30"),
    ]
    total = sum(Decimal(x["outstanding_principal"]) for x in body["loans"])
    assert f"{total:.2f}" == body["totals"]["principal_at_risk"]
    assert _get(client, "aging", analyst.headers)["loans"] is None


def test_aging_is_for_today_only(client: TestClient, book: Book, analyst: Caller, settings: Settings) -> None:
    today = business_today(settings)
    assert _get(client, "aging", analyst.headers, as_of=today.isoformat())["as_of"] == today.isoformat()
    err = _get(client, "aging", analyst.headers, 422, as_of=(today - timedelta(days=1)).isoformat())
    assert err["error"]["code"] == "as_of_not_supported"


def test_aging_buckets_follow_the_setting(session: Session, settings: Settings, book: Book) -> None:
    custom = settings.model_copy(update={"aging_bucket_days": [15, 100]})
    report = service.aging(
        session,
        custom,
        service.Scope(None),
        today=business_today(settings),
        as_of=None,
        detail=False,
        stream=False,
    )
    assert [(b.key, b.loans) for b in report.buckets] == [("1-15", 1), ("16-100", 2), ("100+", 0)]
    with pytest.raises(ValueError, match="aging_bucket_days"):
        Settings(aging_bucket_days=[30, 30])


# --- discrepancies ----------------------------------------------------------------------------------


def test_discrepancies(client: TestClient, book: Book, analyst: Caller) -> None:
    body = _get(client, "status-discrepancies", analyst.headers)
    kinds = [(r["bank_code"], r["bank_loan_ref"], r["kind"]) for r in body["rows"]]
    assert kinds == [
        ("BANK_A", "L1", "balance_mismatch"),
        ("BANK_A", "L2", "missing_from_report"),
        ("BANK_B", "GHOST", "unknown_loan"),
    ]
    assert body["rows"][0]["difference"] == "-10000.00"
    assert body["totals"] == {
        "count": 3,
        "reported_outstanding": "600000.00",
        "derived_outstanding": "2600000.00",
        "difference": "-10000.00",
    }
    only = _get(client, "status-discrepancies", analyst.headers, kind="unknown_loan")["rows"]
    assert [r["bank_loan_ref"] for r in only] == ["GHOST"]
    assert _get(client, "status-discrepancies", analyst.headers, month_end="2021-12-31")["rows"] == []
    narrowed = _get(client, "status-discrepancies", analyst.headers, bank_id=book.bank_b.id)["rows"]
    assert [r["bank_code"] for r in narrowed] == ["BANK_B"]


def test_a_register_too_long_for_json_is_refused_but_streams_as_csv(
    client: TestClient, book: Book, analyst: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "JSON_MAX_ROWS", 2)
    err = _get(client, "status-discrepancies", analyst.headers, 409)
    assert err["error"]["code"] == "report_too_large"
    assert _get(client, "status-discrepancies", analyst.headers, 409, format="xlsx")
    r = client.get(f"{URL}/status-discrepancies?format=csv", headers=analyst.headers)
    assert r.status_code == 200
    assert len(r.content.decode("utf-8-sig").strip().splitlines()) == 1 + 3 + 1  # header, rows, totals


# --- claims -----------------------------------------------------------------------------------------------


def test_claims_register(client: TestClient, book: Book, analyst: Caller) -> None:
    body = _get(client, "claims", analyst.headers)
    rows = body["rows"]
    assert [(r["claim_id"], r["bank_code"], r["bank_loan_ref"], r["state"]) for r in rows] == [
        (book.claims["C1"], "BANK_B", "L3", "paid"),
        (book.claims["C2"], "BANK_A", "L1", "rejected"),
        (book.claims["C3"], "BANK_A", "L1", "approved"),
    ]
    c1, c2, c3 = rows
    assert (c1["npl_since"], c1["filed_on"], c1["reviewed_on"], c1["paid_on"]) == (
        "2021-08-21",
        "2021-11-01",
        "2021-11-10",
        "2021-11-15",
    )
    assert c1["days_default_to_payment"] == 86
    assert (c1["principal_at_default"], c1["fund_share"], c1["claimed"], c1["paid"]) == (
        "500000.00",
        "0.7000",
        "350000.00",
        "350000.00",
    )
    assert (c1["recovered_gross"], c1["recovery_costs"], c1["recoveries_fund_share"]) == (
        "120000.00",
        "20000.00",
        "70000.00",
    )
    assert (c1["remitted"], c1["receivable"], c1["reserved"]) == ("50000.00", "20000.00", "0.00")
    assert (c2["reason"], c2["approved"], c2["paid"], c2["days_default_to_payment"]) == (
        "文件不全",
        None,
        None,
        None,
    )
    assert (c3["claimed"], c3["approved"], c3["reserved"]) == ("480000.00", "400000.00", "400000.00")
    assert c3["reason"] == "部分本金已由保证人清偿"

    totals = body["totals"]
    assert totals["count"] == 3
    for key, value in totals.items():
        if key != "count":
            assert value == f"{sum(Decimal(r[key] or 0) for r in rows):.2f}", key
    # the register agrees with the summary (no reversals here)
    y2021 = _get(client, "summary", analyst.headers, year=2021)
    y2022 = _get(client, "summary", analyst.headers, year=2022)
    assert y2021["compensation_paid_in_year"] == totals["paid"]
    assert y2022["recoveries_recognised_cumulative"] == totals["recoveries_fund_share"]
    assert y2022["recoveries_received_cumulative"] == totals["remitted"]
    assert y2022["reserved_balance"] == totals["reserved"]
    # counted per state, every state listed, in the workflow's order
    assert [(s["state"], s["count"], s["claimed"], s["approved"], s["paid"]) for s in body["by_state"]] == [
        ("submitted", 0, "0.00", "0.00", "0.00"),
        ("approved", 1, "480000.00", "400000.00", "0.00"),
        ("rejected", 1, rows[1]["claimed"], "0.00", "0.00"),
        ("paid", 1, "350000.00", "350000.00", "350000.00"),
    ]


def test_claims_register_filters_and_scope(client: TestClient, book: Book, analyst: Caller) -> None:
    paid = _get(client, "claims", analyst.headers, state="paid")
    assert [r["claim_id"] for r in paid["rows"]] == [book.claims["C1"]]
    assert paid["state"] == "paid"
    assert [(s["state"], s["count"]) for s in paid["by_state"]] == [("paid", 1)]
    _get(client, "claims", analyst.headers, 422, state="lost")
    own_b = _get(client, "claims", book.bank_b.headers)
    assert [r["claim_id"] for r in own_b["rows"]] == [book.claims["C1"]]
    own_a = _get(client, "claims", book.bank_a.headers)
    assert [r["claim_id"] for r in own_a["rows"]] == [book.claims["C2"], book.claims["C3"]]
    assert own_a["totals"]["paid"] == "0.00"
    narrowed = _get(client, "claims", analyst.headers, bank_id=book.bank_a.id)
    assert narrowed["rows"] == own_a["rows"]


# --- enterprise history ----------------------------------------------------------------------------------


def test_enterprise_history(client: TestClient, book: Book, analyst: Caller) -> None:
    code = book.enterprises["e1"]
    body = _get(client, f"enterprises/{code}/history", analyst.headers)
    assert body["enterprise"]["credit_code"] == code
    assert [(a["bank_code"], a["status"], a["grade"]) for a in body["applications"]] == [
        ("BANK_B", "lent", "A")
    ]
    assert [(x["bank_loan_ref"], x["state"], x["outstanding_principal"]) for x in body["loans"]] == [
        ("L1", "non_performing", "600000.00"),
        ("L4", "active", "2000000.00"),
    ]
    assert [(c["claim_id"], c["state"]) for c in body["claims"]] == [
        (book.claims["C2"], "rejected"),
        (book.claims["C3"], "approved"),
    ]
    e3 = _get(client, f"enterprises/{book.enterprises['e3']}/history", analyst.headers)
    assert [(c["state"], c["paid"], c["days_default_to_payment"]) for c in e3["claims"]] == [
        ("paid", "350000.00", 86)
    ]


def test_enterprise_history_not_found_and_malformed(
    client: TestClient, session: Session, book: Book, analyst: Caller
) -> None:
    unknown = credit_code()
    assert _get(client, f"enterprises/{unknown}/history", analyst.headers, 404)["error"]["code"] == (
        "enterprise_not_found"
    )
    # registered, no history: the bureau sees the empty record; a bank has nothing to see
    quiet = make_enterprise(session).credit_code
    body = _get(client, f"enterprises/{quiet}/history", analyst.headers)
    assert (body["applications"], body["loans"]) == ([], [])
    _get(client, f"enterprises/{quiet}/history", book.bank_a.headers, 404)
    _get(client, "enterprises/NOT-A-CODE/history", analyst.headers, 422)


# --- a bank's key ------------------------------------------------------------------------------------------


def test_a_bank_sees_only_its_own_rows_in_every_report(
    client: TestClient, book: Book, analyst: Caller
) -> None:
    a, b = book.bank_a, book.bank_b
    for year in (2020, 2021, 2022):
        for report in ("summary", "by-bank", "by-industry", "by-grade", "by-month"):
            own = _get(client, report, a.headers, year=year)
            narrowed = _get(client, report, analyst.headers, year=year, bank_id=a.id)
            own.pop("generated_at"), narrowed.pop("generated_at")
            if report == "summary":  # the fund's position is the bureau's
                assert own.pop("contributions") == []
                narrowed.pop("contributions")
                for key in FUND_FIELDS:
                    assert own.pop(key) is None, key
                    narrowed.pop(key)
            assert own == narrowed, (report, year)
            assert own["bank"]["code"] == "BANK_A"
        rows = _get(client, "by-bank", a.headers, year=year)["rows"]
        assert {r["bank_code"] for r in rows} <= {"BANK_A"}

    b_summary = _get(client, "summary", b.headers, year=2021)
    assert (b_summary["loans_disbursed_count"], b_summary["loans_disbursed_amount"]) == (2, "3500000.00")
    assert b_summary["compensation_paid_in_year"] == "350000.00"
    assert _get(client, "summary", a.headers, year=2021)["compensation_paid_in_year"] == "0.00"

    aging = _get(client, "aging", b.headers, detail="true")
    assert aging["totals"]["loans"] == 0
    assert aging["loans"] == []
    assert {x["bank_code"] for x in _get(client, "aging", a.headers, detail="true")["loans"]} == {"BANK_A"}

    assert [r["bank_loan_ref"] for r in _get(client, "status-discrepancies", b.headers)["rows"]] == ["GHOST"]
    assert {r["bank_code"] for r in _get(client, "status-discrepancies", a.headers)["rows"]} == {"BANK_A"}

    # e1 borrowed from both banks: each sees its own loan; e3 only from B: A gets 404
    e1 = book.enterprises["e1"]
    seen_by_a = _get(client, f"enterprises/{e1}/history", a.headers)
    assert [x["bank_loan_ref"] for x in seen_by_a["loans"]] == ["L1"]
    assert [c["bank_code"] for c in seen_by_a["claims"]] == ["BANK_A", "BANK_A"]
    assert seen_by_a["applications"] == []  # the application went to bank B
    seen_by_b = _get(client, f"enterprises/{e1}/history", b.headers)
    assert [x["bank_loan_ref"] for x in seen_by_b["loans"]] == ["L4"]
    assert len(seen_by_b["applications"]) == 1
    assert seen_by_b["claims"] == []  # bank A's claims on L1 are not bank B's to see
    err = _get(client, f"enterprises/{book.enterprises['e3']}/history", a.headers, 404)
    assert err["error"]["code"] == "enterprise_not_found"


@pytest.mark.parametrize(
    "path",
    [
        "summary?year=2021",
        "by-bank?year=2021",
        "by-month?year=2021",
        "aging",
        "claims",
        "status-discrepancies",
    ],
)
def test_asking_for_another_bank_or_an_unknown_one_is_404(
    client: TestClient, book: Book, analyst: Caller, path: str
) -> None:
    sep = "&" if "?" in path else "?"
    err = _get(client, f"{path}{sep}bank_id={book.bank_b.id}", book.bank_a.headers, 404)
    assert err["error"]["code"] == "bank_not_found"
    _get(client, f"{path}{sep}bank_id={book.bank_a.id}", book.bank_a.headers)  # its own: fine
    _get(client, f"{path}{sep}bank_id=999999", analyst.headers, 404)
    for fmt in ("csv", "xlsx"):
        r = client.get(f"{URL}/{path}{sep}bank_id={book.bank_b.id}&format={fmt}", headers=book.bank_a.headers)
        assert r.status_code == 404
