"""The export kit: one report rendered as JSON, CSV (streamed, UTF-8 with BOM) and xlsx (typed cells)."""

import asyncio
import csv
import io
import tracemalloc
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

import openpyxl
import pytest
from fastapi import Depends, FastAPI, Response
from fastapi.testclient import TestClient
from openpyxl.worksheet._writer import ALL_TEMP_FILES
from pydantic import BaseModel
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from loanfund.core.errors import install_error_handlers
from loanfund.reports import export
from loanfund.reports.export import (
    TOTAL_LABEL,
    XLSX_FIRST_DATA_ROW,
    XLSX_HEADER_ROW,
    XLSX_MEDIA_TYPE,
    Column,
    ColumnKind,
    FormatQuery,
    Report,
    ReportFormat,
    Section,
    build_xlsx,
    content_disposition,
    export_responses,
    iter_csv,
    render,
    report_to_dict,
)

GENERATED = datetime(2022, 1, 5, 2, 30, tzinfo=UTC)  # 10:30 in Shanghai
BOM = b"\xef\xbb\xbf"

BANK_COLUMNS = [
    Column("bank", "合作银行", "Partner bank"),
    Column("loans", "贷款笔数", "Loans", ColumnKind.int),
    Column("amount", "贷款金额（元）", "Amount (yuan)", ColumnKind.amount),
    Column("amount_wan", "贷款金额（万元）", "Amount (10k yuan)", ColumnKind.wan),
    Column("share", "占比", "Share", ColumnKind.ratio, number_format="0.00%"),
    Column("first_loan", "首笔放款日", "First loan", ColumnKind.date),
]
BANK_ROWS: list[dict[str, Any]] = [
    {
        "bank": "重庆农村商业银行黔江分行",
        "loans": 40,
        "amount": 6_000_000_050,
        "amount_wan": 6_000_000_050,
        "share": Decimal("0.6312"),
        "first_loan": date(2021, 1, 8),
    },
    {
        "bank": "中国建设银行黔江支行",
        "loans": 20,
        "amount": 3_005_999_950,
        "amount_wan": 3_005_999_950,
        "share": Decimal("0.3162"),
        "first_loan": date(2021, 3, 15),
    },
    {
        "bank": "招商银行",
        "loans": 4,
        "amount": 500_000_000,
        "amount_wan": 500_000_000,
        "share": Decimal("0.0526"),
        "first_loan": None,
    },
]
MONTH_COLUMNS = [
    Column("month", "月份", "Month", ColumnKind.date),
    Column("disbursed", "放款金额（元）", "Disbursed (yuan)", ColumnKind.amount),
    Column("disbursed_wan", "放款金额（万元）", "Disbursed (10k yuan)", ColumnKind.wan),
    Column("repaid", "还款金额（元）", "Repaid (yuan)", ColumnKind.amount),
]
MONTH_ROWS: list[dict[str, Any]] = [
    {
        "month": date(2021, m, 1),
        "disbursed": 792_166_666 + (8 if m == 12 else 0),
        "disbursed_wan": 792_166_666 + (8 if m == 12 else 0),
        "repaid": 12_345 * m,
    }
    for m in range(1, 13)
]


def _sum(rows: list[dict[str, Any]], key: str) -> int:
    return sum(r[key] for r in rows if r[key] is not None)


def sample_report() -> Report:
    """Two sections; the rows are one-shot generators, as a streaming query would give."""
    return Report(
        title_zh="知识价值信用贷款统计报表",
        title_en="Knowledge-value credit loans",
        period="2021年 / 2021",
        generated_at=GENERATED,
        sections=[
            Section(
                name_zh="按合作银行",
                name_en="By partner bank",
                sheet_name="按银行 By bank",
                columns=BANK_COLUMNS,
                rows=(dict(r) for r in BANK_ROWS),
                totals={
                    "loans": _sum(BANK_ROWS, "loans"),
                    "amount": _sum(BANK_ROWS, "amount"),
                    "amount_wan": _sum(BANK_ROWS, "amount_wan"),
                    "share": Decimal("1.0000"),
                },
            ),
            Section(
                name_zh="按月",
                name_en="By month",
                sheet_name="按月 By month",
                columns=MONTH_COLUMNS,
                rows=(dict(r) for r in MONTH_ROWS),
                totals={k: _sum(MONTH_ROWS, k) for k in ("disbursed", "disbursed_wan", "repaid")},
            ),
        ],
    )


def test_sample_data_adds_up() -> None:
    assert _sum(BANK_ROWS, "amount") == 9_506_000_000
    assert _sum(MONTH_ROWS, "disbursed") == 9_506_000_000
    assert _sum(BANK_ROWS, "loans") == 64


# --- a tiny app, as a report router would use the kit -----------------------------------------------


class SummaryRead(BaseModel):
    loans_disbursed_amount: str


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/report", response_model=SummaryRead, responses=export_responses())
    def report(fmt: FormatQuery) -> Response:
        return render(sample_report(), fmt, "知识价值信用贷款-2021")

    return app


@pytest.fixture(scope="module")
def api() -> Iterator[TestClient]:
    with TestClient(make_app()) as c:
        yield c


# --- JSON -----------------------------------------------------------------------------------------


def test_json_is_plain_data_with_yuan_strings(api: TestClient) -> None:
    r = api.get("/report")  # json is the default
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert "content-disposition" not in r.headers
    body = r.json()
    assert body["title_zh"] == "知识价值信用贷款统计报表"
    assert body["period"] == "2021年 / 2021"
    assert body["generated_at"] == "2022-01-05T02:30:00Z"
    banks, months = body["sections"]
    assert banks["columns"][2] == {
        "key": "amount",
        "zh": "贷款金额（元）",
        "en": "Amount (yuan)",
        "kind": "amount",
    }
    assert banks["rows"][0] == {
        "bank": "重庆农村商业银行黔江分行",
        "loans": 40,
        "amount": "60000000.50",
        "amount_wan": "6000.00005",
        "share": "0.6312",
        "first_loan": "2021-01-08",
    }
    assert banks["rows"][2]["first_loan"] is None
    assert banks["totals"]["amount"] == "95060000.00"
    assert banks["totals"]["amount_wan"] == "9506.00"
    assert banks["totals"]["loans"] == 64
    assert banks["totals"]["bank"] is None
    assert months["rows"][11]["month"] == "2021-12-01"
    assert months["totals"]["disbursed"] == "95060000.00"
    assert sum(Decimal(row["disbursed"]) for row in months["rows"]) == Decimal("95060000.00")
    assert r.json() == api.get("/report?format=json").json()


def test_unknown_format_is_422(api: TestClient) -> None:
    r = api.get("/report?format=pdf")
    assert r.status_code == 422
    assert r.json()["error"]["code"]


# --- CSV ------------------------------------------------------------------------------------------


def _csv_blocks(content: bytes) -> list[list[list[str]]]:
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    blocks: list[list[list[str]]] = [[]]
    for row in rows:
        if row:
            blocks[-1].append(row)
        else:
            blocks.append([])
    return blocks


def test_csv_is_utf8_with_bom_bilingual_and_exact(api: TestClient) -> None:
    r = api.get("/report?format=csv")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    cd = r.headers["content-disposition"]
    assert cd.startswith("attachment; filename=")
    assert "filename*=UTF-8''%E7%9F%A5%E8%AF%86" in cd
    assert cd.endswith("-2021.csv")
    assert r.content.startswith(BOM)
    assert not r.content[3:].startswith(BOM)

    banks, months = _csv_blocks(r.content)
    assert banks[0] == ["按合作银行 / By partner bank"]
    assert banks[1][2] == "贷款金额（元） / Amount (yuan)"
    assert banks[1] == [c.label for c in BANK_COLUMNS]
    data, total = banks[2:-1], banks[-1]
    assert [row[0] for row in data] == [r["bank"] for r in BANK_ROWS]
    assert [Decimal(row[2]) for row in data] == [Decimal(r["amount"]) / 100 for r in BANK_ROWS]
    assert data[0][2] == "60000000.50"
    assert data[0][3] == "6000.00005"
    assert data[2][5] == ""
    assert total[0] == TOTAL_LABEL
    assert total[1] == "64"
    assert total[2] == "95060000.00"
    assert sum(Decimal(row[2]) for row in data) == Decimal(total[2])
    assert sum(Decimal(row[3]) for row in data) == Decimal(total[3]) == Decimal("9506")

    assert months[0] == ["按月 / By month"]
    assert months[1][0] == "月份 / Month"
    assert [row[0] for row in months[2:-1]] == [f"2021-{m:02d}-01" for m in range(1, 13)]
    assert months[-1][1] == "95060000.00"
    assert sum(Decimal(row[1]) for row in months[2:-1]) == Decimal("95060000.00")


def test_single_section_csv_is_one_plain_table() -> None:
    report = Report(
        "单表", "One table", "2021", GENERATED, [Section("银行", "Banks", "S", BANK_COLUMNS, BANK_ROWS)]
    )
    blocks = _csv_blocks(b"".join(iter_csv(report)))
    assert len(blocks) == 1
    assert blocks[0][0][0] == "合作银行 / Partner bank"
    assert len(blocks[0]) == 1 + len(BANK_ROWS)  # no totals given, no totals row


def test_csv_text_never_runs_as_a_formula() -> None:
    cols = [Column("name", "名称", "Name"), Column("amount", "金额", "Amount", ColumnKind.amount)]
    rows = [{"name": '=HYPERLINK("http://x","y")', "amount": -5}, {"name": "@SUM(1)", "amount": 0}]
    report = Report("t", "t", "p", GENERATED, [Section("s", "s", "s", cols, rows)])
    (table,) = _csv_blocks(b"".join(iter_csv(report)))
    assert table[1] == ['\'=HYPERLINK("http://x","y")', "-0.05"]
    assert table[2] == ["'@SUM(1)", "0.00"]


# --- xlsx -----------------------------------------------------------------------------------------


def _load(content: bytes) -> Any:
    return openpyxl.load_workbook(io.BytesIO(content))


def test_xlsx_is_a_real_workbook_with_typed_cells(api: TestClient) -> None:
    r = api.get("/report?format=xlsx")
    assert r.status_code == 200
    assert r.headers["content-type"] == XLSX_MEDIA_TYPE
    assert r.headers["content-disposition"].endswith("-2021.xlsx")
    wb = _load(r.content)
    assert wb.sheetnames == ["按银行 By bank", "按月 By month"]

    ws = wb["按银行 By bank"]
    top = [ws.cell(row=i, column=1).value for i in range(1, XLSX_HEADER_ROW)]
    assert top[0] == "知识价值信用贷款统计报表"
    assert top[1] == "Knowledge-value credit loans"
    assert "2021年 / 2021" in top[2]
    assert "2022-01-05 10:30:00" in top[3]
    assert "Asia/Shanghai" in top[3]
    assert "2022-01-05 02:30:00 UTC" in top[3]
    assert top[4] == "按合作银行 / By partner bank"

    assert ws.freeze_panes == f"A{XLSX_FIRST_DATA_ROW}"
    zh = [c.value for c in ws[XLSX_HEADER_ROW]]
    en = [c.value for c in ws[XLSX_HEADER_ROW + 1]]
    assert zh == [c.zh for c in BANK_COLUMNS]
    assert en == [c.en for c in BANK_COLUMNS]
    assert all(c.font.b for c in ws[XLSX_HEADER_ROW])

    data = list(ws.iter_rows(min_row=XLSX_FIRST_DATA_ROW, max_row=XLSX_FIRST_DATA_ROW + len(BANK_ROWS) - 1))
    for cells, expected in zip(data, BANK_ROWS, strict=True):
        name, loans, amount, wan, share, first = cells
        assert name.value == expected["bank"]
        assert name.data_type == "s"
        assert loans.value == expected["loans"]
        assert loans.number_format == "#,##0"
        assert amount.data_type == "n"
        assert amount.number_format == "#,##0.00"
        assert Decimal(str(amount.value)) == Decimal(expected["amount"]) / 100
        assert wan.data_type == "n"
        assert wan.number_format == "#,##0.00"
        assert Decimal(str(wan.value)) == Decimal(expected["amount_wan"]) / 1_000_000
        assert share.data_type == "n"
        assert share.number_format == "0.00%"
        assert Decimal(str(share.value)) == expected["share"]
        if expected["first_loan"] is None:
            assert first.value is None
        else:
            assert first.value.date() == expected["first_loan"]
            assert first.is_date
            assert first.number_format == "yyyy-mm-dd"
    assert Decimal(str(data[0][2].value)) == Decimal("60000000.50")

    (total,) = ws.iter_rows(min_row=XLSX_FIRST_DATA_ROW + len(BANK_ROWS))
    assert total[0].value == TOTAL_LABEL
    assert all(c.font.b for c in total if c.value is not None)
    assert total[2].data_type == "n"
    assert total[2].number_format == "#,##0.00"
    assert Decimal(str(total[2].value)) == sum(Decimal(str(row[2].value)) for row in data) == 95_060_000
    assert Decimal(str(total[3].value)) == sum(Decimal(str(row[3].value)) for row in data) == 9506
    assert total[1].value == sum(row[1].value for row in data) == 64
    assert ws.max_row == XLSX_FIRST_DATA_ROW + len(BANK_ROWS)
    assert ws.column_dimensions["C"].width >= 18

    ws = wb["按月 By month"]
    assert ws.freeze_panes == f"A{XLSX_FIRST_DATA_ROW}"
    assert ws.cell(row=3, column=1).value.endswith("2021年 / 2021")
    months = list(ws.iter_rows(min_row=XLSX_FIRST_DATA_ROW, max_row=XLSX_FIRST_DATA_ROW + 11))
    assert [row[0].value.date() for row in months] == [date(2021, m, 1) for m in range(1, 13)]
    total = ws[XLSX_FIRST_DATA_ROW + 12]
    assert total[0].value == TOTAL_LABEL
    for col in (1, 2, 3):
        assert Decimal(str(total[col].value)) == sum(Decimal(str(row[col].value)) for row in months)
    assert Decimal(str(total[1].value)) == Decimal("95060000.00")


def test_xlsx_text_is_never_a_formula_and_control_characters_go() -> None:
    cols = [Column("name", "名称", "Name"), Column("n", "数", "N", ColumnKind.int)]
    rows = [
        {"name": '=HYPERLINK("http://x")', "n": 1},
        {"name": "#N/A", "n": None},
        {"name": "a\x01b", "n": 2},
    ]
    report = Report("t", "t", "p", GENERATED, [Section("s", "s", "s", cols, rows)])
    with build_xlsx(report) as f:
        ws = _load(f.read())["s"]
    names = [ws.cell(row=XLSX_FIRST_DATA_ROW + i, column=1) for i in range(3)]
    assert [c.value for c in names] == ['=HYPERLINK("http://x")', "#N/A", "ab"]
    assert {c.data_type for c in names} == {"s"}


def test_xlsx_too_many_rows_is_a_409_and_leaves_no_temporary_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "XLSX_MAX_ROWS", XLSX_FIRST_DATA_ROW + 5)
    before = list(ALL_TEMP_FILES)
    with TestClient(make_app()) as c:
        r = c.get("/report?format=xlsx")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "export_too_large"
    assert ALL_TEMP_FILES == before


# --- streaming ------------------------------------------------------------------------------------

BIG = 200_000


class Counter:
    def __init__(self) -> None:
        self.produced = 0
        self.exhausted = False

    def rows(self, n: int = BIG) -> Iterator[Mapping[str, Any]]:
        for i in range(n):
            self.produced += 1
            yield {"bank": f"银行{i % 17}", "loans": i, "amount": i * 101, "amount_wan": i * 101}
        self.exhausted = True


def big_report(counter: Counter) -> Report:
    cols = BANK_COLUMNS[:4]
    return Report(
        "大表", "Big", "2021", GENERATED, [Section("大表", "Big", "big", cols, counter.rows(), {"loans": 1})]
    )


def test_csv_streams_rows_lazily_in_chunks_in_bounded_memory() -> None:
    counter = Counter()
    tracemalloc.start()
    try:
        chunks = iter_csv(big_report(counter), chunk_rows=1000)
        first = next(chunks)
        assert first.startswith(BOM)
        assert "合作银行 / Partner bank".encode() in first
        assert counter.produced == 0  # the headers left before any row was read
        second = next(chunks)
        assert counter.produced == 1000
        assert not counter.exhausted
        size, count, lines = len(first) + len(second), 2, first.count(b"\r\n") + second.count(b"\r\n")
        for chunk in chunks:
            size, count, lines = size + len(chunk), count + 1, lines + chunk.count(b"\r\n")
            assert len(chunk) < 100_000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert counter.exhausted
    assert count > 200
    assert lines == 1 + BIG + 1  # header, rows, totals
    assert size > 5_000_000
    assert peak < 5 * 1024 * 1024, peak  # a few chunks, never the file (the bar is 50 MB)


def test_csv_through_the_asgi_app_sends_the_first_chunk_before_the_rows_are_read() -> None:
    """Drive the ASGI app by hand: TestClient would collect the whole body before returning."""
    counter = Counter()
    app = FastAPI()

    @app.get("/big")
    def big(fmt: FormatQuery) -> Response:
        return render(big_report(counter), fmt, "big")

    produced_at_first_body: list[int] = []
    bodies = 0

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: Mapping[str, Any]) -> None:
        nonlocal bodies
        if message["type"] == "http.response.body" and message.get("body"):
            bodies += 1
            if not produced_at_first_body:
                produced_at_first_body.append(counter.produced)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/big",
        "raw_path": b"/big",
        "query_string": b"format=csv",
        "root_path": "",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    asyncio.run(app(scope, receive, send))
    assert produced_at_first_body == [0]
    assert counter.exhausted
    assert bodies > 100


# --- streaming from the database ------------------------------------------------------------------


def test_csv_streams_a_database_query_through_a_request_scoped_session(connection: Connection) -> None:
    """Lazy rows are read while the response is sent: the session must live until then."""
    app = FastAPI()

    def report_session() -> Iterator[Session]:
        with Session(bind=connection, join_transaction_mode="create_savepoint") as s:
            yield s

    ReportSession = Annotated[Session, Depends(report_session, scope="request")]

    def rows(session: Session, n: int) -> Iterator[Mapping[str, Any]]:
        stmt = text(
            "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < :n) "
            "SELECT n AS loans, n * 101 AS amount FROM seq ORDER BY n"
        )
        result = session.execute(stmt, {"n": n}, execution_options={"yield_per": 500})
        for row in result.mappings():
            yield {"loans": row["loans"], "amount": row["amount"]}

    @app.get("/db")
    def db(session: ReportSession, fmt: FormatQuery) -> Response:
        cols = [BANK_COLUMNS[1], BANK_COLUMNS[2]]
        section = Section("序列", "Sequence", "seq", cols, rows(session, 5000))
        return render(Report("t", "t", "p", GENERATED, [section]), fmt, "seq")

    with TestClient(app) as c:
        csv_body = c.get("/db?format=csv").content
        xlsx_body = c.get("/db?format=xlsx").content
    (table,) = _csv_blocks(csv_body)
    assert len(table) == 5001
    assert table[-1] == ["5000", "5050.00"]
    ws = _load(xlsx_body)["seq"]
    assert ws.max_row == XLSX_FIRST_DATA_ROW + 4999
    assert Decimal(str(ws.cell(row=ws.max_row, column=2).value)) == Decimal("5050.00")


# --- the model refuses what it cannot render faithfully -------------------------------------------


def test_amounts_must_be_integer_fen() -> None:
    cols = [Column("amount", "金额", "Amount", ColumnKind.amount)]
    for bad in (1.5, Decimal("1.50"), True, "150"):
        report = Report("t", "t", "p", GENERATED, [Section("s", "s", "s", cols, [{"amount": bad}])])
        with pytest.raises(TypeError, match="integer fen"):
            report_to_dict(report)


def test_ratio_refuses_floats_and_dates_refuse_datetimes() -> None:
    ratio = [Column("r", "比率", "Ratio", ColumnKind.ratio)]
    with pytest.raises(TypeError, match="Decimal"):
        report_to_dict(Report("t", "t", "p", GENERATED, [Section("s", "s", "s", ratio, [{"r": 0.5}])]))
    when = [Column("d", "日期", "Date", ColumnKind.date)]
    with pytest.raises(TypeError, match="date"):
        report_to_dict(Report("t", "t", "p", GENERATED, [Section("s", "s", "s", when, [{"d": GENERATED}])]))


def test_a_row_missing_a_column_is_an_error() -> None:
    report = Report("t", "t", "p", GENERATED, [Section("s", "s", "s", BANK_COLUMNS, [{"bank": "x"}])])
    with pytest.raises(KeyError, match="loans"):
        list(iter_csv(report))


def test_report_validation() -> None:
    cols = [Column("a", "甲", "A")]
    with pytest.raises(ValueError, match="timezone-aware"):
        Report("t", "t", "p", datetime(2022, 1, 1), [Section("s", "s", "s", cols, [])])
    with pytest.raises(ValueError, match="sheet name"):
        Section("s", "s", "a/b", cols, [])
    with pytest.raises(ValueError, match="sheet name"):
        Section("s", "s", "x" * 32, cols, [])
    with pytest.raises(ValueError, match="unique"):
        Report("t", "t", "p", GENERATED, [Section("s", "s", "S", cols, []), Section("s", "s", "s", cols, [])])
    with pytest.raises(ValueError, match="unknown columns"):
        Section("s", "s", "s", cols, [], totals={"b": 1})
    with pytest.raises(ValueError, match="at least one section"):
        Report("t", "t", "p", GENERATED, [])
    shanghai = Report(
        "t", "t", "p", datetime.fromisoformat("2022-01-05T10:30:00+08:00"), [Section("s", "s", "s", cols, [])]
    )
    assert shanghai.generated_at == GENERATED
    assert shanghai.generated_at.tzinfo is UTC


# --- HTTP details ---------------------------------------------------------------------------------


def test_content_disposition_has_an_ascii_fallback_and_the_utf8_name() -> None:
    assert content_disposition("by-bank-2021.csv") == (
        "attachment; filename=\"by-bank-2021.csv\"; filename*=UTF-8''by-bank-2021.csv"
    )
    cd = content_disposition("按银行统计-2021.xlsx")
    assert cd.startswith('attachment; filename="2021.xlsx"; ')
    assert cd.endswith("filename*=UTF-8''%E6%8C%89%E9%93%B6%E8%A1%8C%E7%BB%9F%E8%AE%A1-2021.xlsx")
    assert content_disposition("汇总.csv").startswith('attachment; filename="report.csv"')
    evil = content_disposition('a"\r\nSet-Cookie: x/..\\b.csv')
    assert "\r" not in evil
    assert "\n" not in evil
    assert '"a_' in evil


def test_openapi_declares_json_csv_and_xlsx(api: TestClient) -> None:
    op = api.get("/openapi.json").json()["paths"]["/report"]["get"]
    content = op["responses"]["200"]["content"]
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/SummaryRead"}
    assert content["text/csv"]["schema"] == {"type": "string"}
    assert content[XLSX_MEDIA_TYPE]["schema"] == {"type": "string", "format": "binary"}
    (param,) = op["parameters"]
    assert param["name"] == "format"
    assert param["in"] == "query"
    assert param["schema"]["default"] == "json"


def test_render_picks_the_media_type() -> None:
    assert render(sample_report(), ReportFormat.json, "x").media_type == "application/json"
    assert render(sample_report(), ReportFormat.csv, "x").media_type == "text/csv; charset=utf-8"
    assert render(sample_report(), ReportFormat.xlsx, "x").media_type == XLSX_MEDIA_TYPE


def test_wan_is_exact() -> None:
    assert export.wan_str(9_506_000_000) == "9506.00"
    assert export.wan_str(0) == "0.00"
    assert export.wan_str(1) == "0.000001"
    assert export.wan_str(-123_450) == "-0.12345"
    for fen in (7, 10_000, 123_456_789_012, -999_999, 1_000_000):
        assert Decimal(export.wan_str(fen)) == Decimal(fen) / 1_000_000
