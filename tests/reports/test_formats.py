"""Every report as CSV (UTF-8 with BOM, Chinese headers, totals equal to the sums) and as an Excel
workbook (typed numeric cells, yuan formats, 万元 columns, frozen headers); malformed input → 422."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from loanfund.reports.export import TOTAL_LABEL, XLSX_FIRST_DATA_ROW, XLSX_HEADER_ROW, XLSX_MEDIA_TYPE
from tests.factories import Caller
from tests.reports.conftest import Book

URL = "/api/v1/reports"
BOM = b"\xef\xbb\xbf"
ALL = [
    "summary?year=2021",
    "by-bank?year=2021",
    "by-industry?year=2021",
    "by-grade?year=2021",
    "by-month?year=2021",
    "fund-flows?year=2021",
    "aging?detail=true",
    "claims",
    "status-discrepancies",
]


def _download(client: TestClient, path: str, fmt: str, headers: dict[str, str]) -> bytes:
    sep = "&" if "?" in path else "?"
    r = client.get(f"{URL}/{path}{sep}format={fmt}", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].startswith("attachment;")
    assert f".{fmt}" in r.headers["content-disposition"]
    return r.content


def _blocks(body: bytes) -> list[list[list[str]]]:
    """A CSV download as its blocks (one per section; a block of several sections starts with a title)."""
    assert body.startswith(BOM)
    text = body[len(BOM) :].decode("utf-8")
    out: list[list[list[str]]] = [[]]
    for row in csv.reader(io.StringIO(text)):
        if not row:
            out.append([])
        else:
            out[-1].append(row)
    return [b for b in out if b]


def _workbook(body: bytes) -> Any:
    return openpyxl.load_workbook(io.BytesIO(body))


@pytest.mark.parametrize("path", ALL)
def test_every_report_downloads_as_csv_and_xlsx(
    client: TestClient, book: Book, analyst: Caller, path: str
) -> None:
    body = _download(client, path, "csv", analyst.headers)
    blocks = _blocks(body)
    for block in blocks:
        header = block[1] if len(blocks) > 1 else block[0]
        assert all(" / " in cell for cell in header)  # 中文 / English
    wb = _workbook(_download(client, path, "xlsx", analyst.headers))
    assert len(wb.sheetnames) == len(blocks)
    for ws in wb.worksheets:
        assert ws.freeze_panes == f"A{XLSX_FIRST_DATA_ROW}"
        assert ws["A3"].value.startswith("统计期间 / Period")
        assert ws["A4"].value.startswith("生成时间 / Generated")


def test_csv_headers_totals_and_year_boundaries(client: TestClient, book: Book, analyst: Caller) -> None:
    (table,) = _blocks(_download(client, "by-bank?year=2021", "csv", analyst.headers))
    header, *rows, totals = table
    assert header[:4] == [
        "银行代码 / Bank code",
        "合作银行 / Partner bank",
        "基金代偿比例 / Fund share",
        "放款笔数 / Loans disbursed",
    ]
    assert totals[0] == TOTAL_LABEL
    assert [r[0] for r in rows] == ["BANK_A", "BANK_B"]
    for i, title in enumerate(header):
        if "（元）" in title or "（万元）" in title:
            assert Decimal(totals[i]) == sum(Decimal(r[i]) for r in rows), title
        if title.startswith("放款笔数"):
            assert int(totals[i]) == sum(int(r[i]) for r in rows)
    col = {h.split(" / ")[1]: i for i, h in enumerate(header)}
    assert totals[col["Amount disbursed (yuan)"]] == "5800000.00"
    assert totals[col["Amount disbursed (10k yuan)"]] == "580.00"

    (months,) = _blocks(_download(client, "by-month?year=2021", "csv", analyst.headers))
    assert months[1][:3] == ["2021-01", "1", "1200000.00"]
    assert months[12][:3] == ["2021-12", "1", "300000.00"]
    assert months[13][:3] == [TOTAL_LABEL, "4", "5800000.00"]
    assert months[13][5:] == ["", "", "", ""]  # stocks are not summed


def test_streamed_csv_totals_equal_the_rows(client: TestClient, book: Book, analyst: Caller) -> None:
    (table,) = _blocks(_download(client, "status-discrepancies", "csv", analyst.headers))
    header, *rows, totals = table
    assert header[0] == "报送月末 / Month end"
    assert [r[2] for r in rows] == ["L1", "L2", "GHOST"]
    for i in (4, 5, 6):
        assert Decimal(totals[i]) == sum(Decimal(r[i]) for r in rows if r[i])
    summary, detail = _blocks(_download(client, "aging?detail=true", "csv", analyst.headers))
    assert summary[0] == ["逾期账龄 / Aging of overdue loans"]
    assert detail[0] == ["逾期贷款明细 / Overdue loans"]
    *loans, loan_totals = detail[2:]
    assert [r[1] for r in loans] == ["L1", "L2", "L5"]
    assert Decimal(loan_totals[7]) == sum(Decimal(r[7]) for r in loans) == Decimal("2900000.00")


def test_claims_register_csv_and_xlsx(client: TestClient, book: Book, analyst: Caller) -> None:
    (table,) = _blocks(_download(client, "claims", "csv", analyst.headers))
    header, *rows, totals = table
    assert header[0] == "代偿申请编号 / Claim id"
    assert len(rows) == 3
    assert totals[0] == TOTAL_LABEL
    for i, title in enumerate(header):
        if "（元）" in title:
            assert Decimal(totals[i]) == sum(Decimal(r[i] or 0) for r in rows), title
    paid = header.index("已代偿（元） / Paid (yuan)")
    assert totals[paid] == "350000.00"
    ws = _workbook(_download(client, "claims", "xlsx", analyst.headers))["代偿 Claims"]
    first = next(ws.iter_rows(min_row=XLSX_FIRST_DATA_ROW))
    assert first[paid].value == 350_000
    assert first[paid].data_type == "n"
    assert first[1].is_date


def test_summary_workbook(client: TestClient, book: Book, analyst: Caller) -> None:
    wb = _workbook(_download(client, "summary?year=2021", "xlsx", analyst.headers))
    assert wb.sheetnames == ["笔数 Counts", "金额 Amounts", "年末余额 Year end", "比率 Ratios"]
    ws = wb["金额 Amounts"]
    assert [c.value for c in ws[XLSX_HEADER_ROW]][:3] == ["指标代码", "指标", "本年（元）"]
    assert [c.value for c in ws[XLSX_HEADER_ROW + 1]][:3] == ["Code", "Indicator", "Year (yuan)"]
    rows = {r[0].value: r for r in ws.iter_rows(min_row=XLSX_FIRST_DATA_ROW)}
    amount = rows["loans_disbursed_amount"]
    assert isinstance(amount[2].value, int | float)
    assert amount[2].value == 5_800_000
    assert amount[2].number_format == "#,##0.00"
    assert amount[3].value == 580  # 万元
    assert amount[4].value == 6_800_000
    assert amount[5].value == 680
    ws = wb["年末余额 Year end"]
    rows = {r[0].value: r for r in ws.iter_rows(min_row=XLSX_FIRST_DATA_ROW)}
    assert rows["fund_size"][2].value == 10_000_000
    assert rows["fund_size"][3].value == 1000
    ws = wb["比率 Ratios"]
    rows = {r[0].value: r for r in ws.iter_rows(min_row=XLSX_FIRST_DATA_ROW)}
    assert rows["npl_ratio"][2].value == pytest.approx(0.2037)
    counts = wb["笔数 Counts"]
    first = next(counts.iter_rows(min_row=XLSX_FIRST_DATA_ROW))
    assert (first[0].value, first[2].value, first[3].value) == ("loans_disbursed_count", 4, 5)
    assert first[2].data_type == "n"


def test_a_banks_summary_workbook_has_no_fund_rows(client: TestClient, book: Book) -> None:
    wb = _workbook(_download(client, "summary?year=2021", "xlsx", book.bank_b.headers))
    assert "Bank: BANK_B" in wb["年末余额 Year end"]["A3"].value

    def keys(sheet: str) -> list[str]:
        return [r[0] for r in wb[sheet].iter_rows(min_row=XLSX_FIRST_DATA_ROW, values_only=True)]

    assert keys("比率 Ratios") == ["npl_ratio"]
    assert "fund_size" not in keys("年末余额 Year end")
    assert "contributions_city" not in keys("金额 Amounts")
    assert "compensation_paid" in keys("金额 Amounts")


def test_by_bank_workbook_totals_row(client: TestClient, book: Book, analyst: Caller) -> None:
    ws = _workbook(_download(client, "by-bank?year=2021", "xlsx", analyst.headers))["按银行 By bank"]
    header = [c.value for c in ws[XLSX_HEADER_ROW + 1]]
    data = list(ws.iter_rows(min_row=XLSX_FIRST_DATA_ROW, values_only=True))
    *rows, totals = data
    assert totals[0] == TOTAL_LABEL
    assert ws.cell(row=XLSX_FIRST_DATA_ROW + len(rows), column=4).font.b
    for i, title in enumerate(header):
        if "yuan" in title:
            assert all(isinstance(r[i], int | float) for r in rows), title
            assert totals[i] == pytest.approx(sum(r[i] for r in rows)), title
    i = header.index("Amount disbursed (10k yuan)")
    assert totals[i] == 580
    assert totals[header.index("Amount disbursed (yuan)")] == 5_800_000


@pytest.mark.parametrize(
    "query",
    [
        "summary?year=abc",
        "summary?year=1999",
        "summary",
        "by-bank?year=2101",
        "by-month?year=2021.5",
        "summary?year=2021&format=pdf",
        "aging?format=XLSX",
        "aging?as_of=yesterday",
        "status-discrepancies?month_end=2021-13-31",
        "by-industry?year=2021&bank_id=abc",
    ],
)
def test_malformed_parameters_are_422(client: TestClient, analyst: Caller, query: str) -> None:
    r = client.get(f"{URL}/{query}", headers=analyst.headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"


def test_a_key_is_required(client: TestClient) -> None:
    for path in ("summary?year=2021", "aging", "status-discrepancies?format=csv"):
        r = client.get(f"{URL}/{path}")
        assert r.status_code == 401
        r = client.get(f"{URL}/{path}", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401


def test_openapi_tells_the_truth(app: FastAPI) -> None:
    spec = app.openapi()
    schemas = spec["components"]["schemas"]
    summary = schemas["SummaryRead"]
    for field in (
        "year",
        "loans_disbursed_count",
        "loans_disbursed_amount",
        "cumulative_disbursed_amount",
        "fund_size",
        "fund_balance",
        "outstanding_principal",
        "npl_ratio",
        "leverage",
    ):
        assert field in summary["required"], field
    assert "description" in summary["properties"]["npl_ratio"]
    for path, ops in spec["paths"].items():
        if not path.startswith(URL):
            continue
        answers = ops["get"]["responses"]
        assert set(answers["200"]["content"]) == {"application/json", "text/csv", XLSX_MEDIA_TYPE}, path
        assert answers["200"]["content"]["application/json"]["schema"]["$ref"].startswith("#/components")
        for code in ("401", "422"):
            assert code in answers, (path, code)
        # another bank's slice is not found; the fund's own accounts are refused to a bank
        assert ("403" if path.endswith("/fund-flows") else "404") in answers, path
        names = {p["name"] for p in ops["get"]["parameters"]}
        assert "format" in names, path
