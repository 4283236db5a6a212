"""By bank, industry, grade and month: each totals row is the sum of its rows and agrees with the summary,
for the bureau, for the bureau narrowed to a bank, and for each bank's own key."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import Caller
from tests.reports.conftest import Book

URL = "/api/v1/reports"
COUNTS = ("loans_disbursed_count", "cumulative_loans_count")
FLOWS = ("loans_disbursed_amount", "principal_repaid_amount", "interest_repaid_amount")
STOCKS = ("outstanding_principal", "overdue_principal", "npl_principal", "compensated_principal")
AMOUNTS = (*FLOWS, "cumulative_disbursed_amount", *STOCKS)


def _get(client: TestClient, path: str, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    r = client.get(f"{URL}/{path}", params=params, headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _sum(rows: list[dict[str, Any]], key: str) -> Any:
    if key.endswith("_count"):
        return sum(r[key] for r in rows)
    return f"{sum((Decimal(r[key]) for r in rows), Decimal('0.00')):.2f}"


def _callers(book: Book, analyst: Caller) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
    return [
        ("bureau", analyst.headers, {}),
        ("bureau, bank A", analyst.headers, {"bank_id": book.bank_a.id}),
        ("bank A", book.bank_a.headers, {}),
        ("bank B", book.bank_b.headers, {}),
    ]


@pytest.mark.parametrize("year", [2020, 2021, 2022])
def test_totals_are_the_sums_of_the_rows_and_agree_with_the_summary(
    client: TestClient, book: Book, analyst: Caller, year: int
) -> None:
    for who, headers, params in _callers(book, analyst):
        summary = _get(client, "summary", headers, year=year, **params)
        for report in ("by-bank", "by-industry", "by-grade"):
            body = _get(client, report, headers, year=year, **params)
            rows, totals = body["rows"], body["totals"]
            for key in (*COUNTS, *AMOUNTS):
                assert totals[key] == _sum(rows, key), (who, report, key)
                assert totals[key] == summary[key], (who, report, key)
            assert totals["npl_ratio"] == summary["npl_ratio"], (who, report)
            if report == "by-bank":
                for key in ("max_liability", "compensation_paid_amount"):
                    assert totals[key] == _sum(rows, key), (who, key)
                assert totals["max_liability"] == summary["max_liability"]
                assert totals["compensation_paid_amount"] == summary["compensation_paid_in_year"]

        months = _get(client, "by-month", headers, year=year, **params)
        rows, totals = months["rows"], months["totals"]
        assert len(rows) == 12
        for key in ("loans_disbursed_count", *FLOWS):
            assert totals[key] == _sum(rows, key) == summary[key], (who, key)
        assert set(totals) == {"loans_disbursed_count", *FLOWS}  # stocks are not additive
        for key in STOCKS:
            assert rows[-1][key] == summary[key], (who, key)


def test_by_bank_lines(client: TestClient, book: Book, analyst: Caller) -> None:
    rows = _get(client, "by-bank", analyst.headers, year=2021)["rows"]
    assert [(r["bank_code"], r["fund_share"]) for r in rows] == [("BANK_A", "0.8000"), ("BANK_B", "0.7000")]
    a, b = rows
    assert (a["loans_disbursed_count"], a["loans_disbursed_amount"]) == (2, "2300000.00")  # L2, L5
    assert (a["outstanding_principal"], a["npl_principal"]) == ("2900000.00", "600000.00")
    assert a["max_liability"] == "2320000.00"
    assert (b["compensated_principal"], b["compensation_paid_amount"]) == ("500000.00", "350000.00")
    assert b["npl_ratio"] == "0.2000"  # 500k compensated / (2M covered + 500k)
    assert b["max_liability"] == "1400000.00"
    # a bank with no loans by the end of the year is not listed
    assert _get(client, "by-bank", analyst.headers, year=2020)["rows"][0]["bank_code"] == "BANK_A"
    assert len(_get(client, "by-bank", analyst.headers, year=2020)["rows"]) == 1


def test_by_industry_and_grade_lines(client: TestClient, book: Book, analyst: Caller) -> None:
    industries = {r["key"]: r for r in _get(client, "by-industry", analyst.headers, year=2021)["rows"]}
    assert set(industries) == {"C", "I", "M"}
    assert industries["C"]["name_zh"] == "制造业"
    assert industries["I"]["overdue_principal"] == "2000000.00"
    assert industries["M"]["npl_ratio"] == "1.0000"
    grades = {r["key"]: r for r in _get(client, "by-grade", analyst.headers, year=2021)["rows"]}
    assert set(grades) == {"A", "U"}  # L4 came from a grade-A application; the others are historical
    assert (grades["A"]["loans_disbursed_count"], grades["A"]["loans_disbursed_amount"]) == (1, "3000000.00")
    assert grades["U"]["name_en"] == "Unrated"


def test_fund_flows_month_by_month(client: TestClient, book: Book, analyst: Caller) -> None:
    y2021 = _get(client, "fund-flows", analyst.headers, year=2021)
    assert y2021["opening_balance"] == "5000000.00"
    moves = {
        r["month"]: (r["contributions"], r["compensation_paid"], r["recoveries_received"], r["other"])
        for r in y2021["rows"]
    }
    assert len(moves) == 12
    nothing = ("0.00", "0.00", "0.00", "0.00")
    assert moves.pop("2021-02") == ("5000000.00", "0.00", "0.00", "0.00")
    assert moves.pop("2021-11") == ("0.00", "350000.00", "0.00", "0.00")
    assert moves.pop("2021-12") == ("0.00", "0.00", "50000.00", "0.00")
    assert set(moves.values()) == {nothing}
    balances = [r["fund_balance"] for r in y2021["rows"]]
    assert balances[0] == "5000000.00"
    assert balances[1:10] == ["10000000.00"] * 9
    assert balances[10:] == ["9650000.00", "9700000.00"]
    assert y2021["totals"] == {
        "contributions": "5000000.00",
        "compensation_paid": "350000.00",
        "recoveries_received": "50000.00",
        "other": "0.00",
    }
    # December's position is the summary's year end
    summary = _get(client, "summary", analyst.headers, year=2021)
    december = y2021["rows"][-1]
    assert (december["fund_size"], december["fund_balance"], december["available_balance"]) == (
        summary["fund_size"],
        summary["fund_balance"],
        summary["available_balance"],
    )
    january = _get(client, "fund-flows", analyst.headers, year=2022)["rows"][0]
    assert (january["reserved_balance"], january["available_balance"]) == ("400000.00", "9300000.00")


def test_fund_flows_are_the_bureaus(client: TestClient, book: Book) -> None:
    r = client.get(f"{URL}/fund-flows", params={"year": 2021}, headers=book.bank_a.headers)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "bureau_only"
