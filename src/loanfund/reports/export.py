"""The export kit: one report definition, rendered as JSON, CSV or Excel (`?format=json|csv|xlsx`).

A report is a title, a period, a generation time and one or more sections; a section is a table of
typed columns, its rows and an optional totals row. Rows are any iterable of mappings keyed by
`Column.key` (every key must be present; `None` is an empty cell) and may be a lazy, one-shot iterator
fed by a streaming query, so a report of a million rows never sits in memory.

Column kinds and how each format shows them:

========  ======================  ========================  ======================================
kind      row value               JSON / CSV                Excel cell
========  ======================  ========================  ======================================
text      str                     string                    text (never a formula)
int       int                     int / "1234"              number, ``#,##0``
amount    int fen                 "1234.50" (yuan)          number in yuan, ``#,##0.00``
wan       int fen                 "9506.00" (万元, exact)    number in 万元, ``#,##0.00``
ratio     Decimal (or str, int)   "0.0123"                  number, ``0.0000`` (plain ratio)
date      datetime.date           "2021-12-31"              date, ``yyyy-mm-dd``
========  ======================  ========================  ======================================

Choices worth knowing:

* Nothing is a float. Amounts are integer fen; yuan and 万元 values are computed as `Decimal`
  (fen / 100, fen / 1,000,000) and handed to openpyxl as such. (openpyxl writes a number with 16
  significant digits and Excel keeps a double, so a cell is exact up to 15 significant digits, i.e.
  every amount up to `core.money.MAX_YUAN`.)
* 万元 in JSON and CSV is the exact value (2 to 6 places: ``"0.12345"``), so a totals row still equals
  the sum of its rows; Excel holds the exact value and *displays* two places.
* Ratios default to ``0.0000`` in Excel, matching the API's four-place ratio strings, because the same
  kind carries percentages (NPL ratio) and multiples (leverage ×9.5) alike; a column that is a
  percentage sets ``number_format="0.00%"``.
* JSON is the generic fallback answer (individual reports may have their own pydantic models); it is
  the API's response, so it carries no ``Content-Disposition``. CSV and xlsx are downloads.
* CSV is UTF-8 with a BOM (so Excel opens Chinese text correctly), ``\\r\\n`` line ends, a header row of
  ``中文 / English`` cells and the totals row (first cell ``合计 / Total``) last. A single-section report
  is one plain table. A report of several sections writes each section as a block: a line holding the
  section title (``名称 / Name``), the header row, the rows, the totals row, and a blank line before the
  next block. Text cells starting with ``= + - @`` (or a tab / carriage return) get a leading ``'`` so
  that a spreadsheet never runs an enterprise name as a formula.
* CSV streams: the first chunk (BOM + first header) goes out before any row is read, then one chunk per
  `CSV_CHUNK_ROWS` rows. Rows are therefore read *while the response is sent*: rows fed by a streaming
  query need a session that stays open until then, i.e. ``Depends(get_session, scope="request")``,
  not `DbSession` (``scope="function"`` closes it before the response starts). The status line is sent
  with the first chunk, so a failure in a later row can only cut the download short: check what can
  be checked (access, parameters) before calling `render`.
* xlsx is built inside `render` (so a failure is still a proper error response), in openpyxl's
  write-only mode (rows go to temporary files, not memory) into a `SpooledTemporaryFile`, and then
  streamed from it in chunks. A sheet holds at most 1,048,576 rows; a longer section is refused with
  409 ``export_too_large`` (use CSV).

Excel sheet layout (one sheet per section): rows 1–5 hold the report title (zh, en), the period, the
generation time (Asia/Shanghai and UTC) and the section name; row 7 the Chinese headers, row 8 the
English headers; panes are frozen below row 8; data start at row 9; the totals row (bold) follows.

A router declares the non-JSON answers in OpenAPI with `export_responses()`; see `render`.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import IO, Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from loanfund.core.errors import Conflict
from loanfund.core.money import fen_to_yuan, yuan_str

__all__ = [
    "CSV_CHUNK_ROWS",
    "MEDIA_TYPES",
    "TOTAL_LABEL",
    "XLSX_FIRST_DATA_ROW",
    "XLSX_HEADER_ROW",
    "XLSX_MEDIA_TYPE",
    "Column",
    "ColumnKind",
    "FormatQuery",
    "Report",
    "ReportFormat",
    "Section",
    "build_xlsx",
    "content_disposition",
    "export_responses",
    "iter_csv",
    "render",
    "report_format",
    "report_to_dict",
    "wan_str",
]

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
JSON_MEDIA_TYPE = "application/json"
TOTAL_LABEL = "合计 / Total"
CSV_CHUNK_ROWS = 1000
XLSX_SPOOL_BYTES = 8 * 1024 * 1024  # above this the finished workbook spills to a temporary file
XLSX_READ_CHUNK = 64 * 1024
XLSX_MAX_ROWS = 1_048_576  # Excel's sheet limit

# Sheet layout (1-based rows).
XLSX_HEADER_ROW = 7  # Chinese headers; the English ones are on the next row
XLSX_FIRST_DATA_ROW = XLSX_HEADER_ROW + 2

_BOM = "\ufeff".encode()
_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_WAN_EXP = -6  # 1 万元 = 10,000 yuan = 1,000,000 fen


class ColumnKind(StrEnum):
    text = "text"
    int = "int"
    amount = "amount"  # integer fen, shown in yuan
    ratio = "ratio"  # Decimal
    date = "date"
    wan = "wan"  # integer fen, shown in 万元


_NUMBER_FORMATS: dict[ColumnKind, str | None] = {
    ColumnKind.text: None,
    ColumnKind.int: "#,##0",
    ColumnKind.amount: "#,##0.00",
    ColumnKind.wan: "#,##0.00",
    ColumnKind.ratio: "0.0000",
    ColumnKind.date: "yyyy-mm-dd",
}
_MIN_WIDTHS: dict[ColumnKind, float] = {
    ColumnKind.text: 14,
    ColumnKind.int: 10,
    ColumnKind.amount: 18,
    ColumnKind.wan: 14,
    ColumnKind.ratio: 10,
    ColumnKind.date: 12,
}


class ReportFormat(StrEnum):
    json = "json"
    csv = "csv"
    xlsx = "xlsx"


MEDIA_TYPES: dict[ReportFormat, str] = {
    ReportFormat.json: JSON_MEDIA_TYPE,
    ReportFormat.csv: CSV_MEDIA_TYPE,
    ReportFormat.xlsx: XLSX_MEDIA_TYPE,
}


# --- the model ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    zh: str
    en: str
    kind: ColumnKind = ColumnKind.text
    number_format: str | None = None  # Excel only; overrides the kind's format (e.g. "0.00%")
    width: float | None = None  # Excel only; otherwise derived from the headers and the kind

    @property
    def label(self) -> str:
        return f"{self.zh} / {self.en}"

    @property
    def excel_format(self) -> str | None:
        return self.number_format or _NUMBER_FORMATS[self.kind]


@dataclass(frozen=True, slots=True)
class Section:
    name_zh: str
    name_en: str
    sheet_name: str
    columns: Sequence[Column]
    rows: Iterable[Mapping[str, Any]]  # may be a one-shot iterator: a report renders once
    totals: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        name = self.sheet_name
        bad = not name or len(name) > 31 or _SHEET_NAME_FORBIDDEN.search(name) is not None
        if bad or name.startswith("'") or name.endswith("'"):
            raise ValueError(f"invalid Excel sheet name {name!r}: 1–31 characters, none of []:*?/\\")
        if not self.columns:
            raise ValueError(f"section {name!r} has no columns")
        keys = [c.key for c in self.columns]
        if len(set(keys)) != len(keys):
            raise ValueError(f"section {name!r} has duplicate column keys")
        if self.totals is not None:
            unknown = set(self.totals) - set(keys)
            if unknown:
                raise ValueError(f"section {name!r} totals name unknown columns {sorted(unknown)}")

    @property
    def title(self) -> str:
        return f"{self.name_zh} / {self.name_en}"


@dataclass(frozen=True, slots=True)
class Report:
    title_zh: str
    title_en: str
    period: str  # e.g. "2021年 / 2021" or "2021-01-01 – 2021-12-31"
    generated_at: datetime  # timezone-aware; kept in UTC
    sections: list[Section]

    def __post_init__(self) -> None:
        if self.generated_at.tzinfo is None or self.generated_at.utcoffset() is None:
            raise ValueError("generated_at must be a timezone-aware datetime")
        object.__setattr__(self, "generated_at", self.generated_at.astimezone(UTC))
        if not self.sections:
            raise ValueError("a report needs at least one section")
        names = [s.sheet_name.casefold() for s in self.sections]
        if len(set(names)) != len(names):
            raise ValueError("sheet names must be unique (Excel ignores case)")


# --- values ---------------------------------------------------------------------------------------


def _fen(col: Column, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"column {col.key!r} ({col.kind}) takes integer fen, got {type(value).__name__}")
    return value


def _int(col: Column, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"column {col.key!r} (int) takes an int, got {type(value).__name__}")
    return value


def _ratio(col: Column, value: Any) -> Decimal:
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int | str) and not isinstance(value, bool):
        try:
            d = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"column {col.key!r} (ratio): not a decimal: {value!r}") from None
    else:
        raise TypeError(f"column {col.key!r} (ratio) takes a Decimal, got {type(value).__name__}")
    if not d.is_finite():
        raise ValueError(f"column {col.key!r} (ratio): {value!r} is not finite")
    return d


def _date(col: Column, value: Any) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"column {col.key!r} (date) takes a datetime.date, got {type(value).__name__}")
    return value


def _wan(fen: int) -> Decimal:
    """fen as 万元, exactly (fen / 1,000,000)."""
    return Decimal(fen).scaleb(_WAN_EXP)


def wan_str(fen: int) -> str:
    """fen as 万元 in a decimal string: exact, at least two places (``"9506.00"``, ``"0.12345"``)."""
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), 1_000_000)
    return f"{sign}{whole}.{f'{part:06d}'.rstrip('0').ljust(2, '0')}"


Convert = Callable[[Any], Any]


def _json_converter(col: Column) -> Convert:
    """Cell value → its JSON value (None stays None); chosen once per column, called per cell."""
    match col.kind:
        case ColumnKind.text:
            return lambda v: None if v is None else str(v)
        case ColumnKind.int:
            return lambda v: None if v is None else _int(col, v)
        case ColumnKind.amount:
            return lambda v: None if v is None else yuan_str(_fen(col, v))
        case ColumnKind.wan:
            return lambda v: None if v is None else wan_str(_fen(col, v))
        case ColumnKind.ratio:
            return lambda v: None if v is None else format(_ratio(col, v), "f")
        case ColumnKind.date:
            return lambda v: None if v is None else _date(col, v).isoformat()


def _csv_converter(col: Column) -> Convert:
    """Cell value → CSV field (the csv module writes None as an empty field, ints as digits)."""
    if col.kind is not ColumnKind.text:
        return _json_converter(col)

    def text(v: Any) -> str | None:
        if v is None:
            return None
        s = str(v)
        return "'" + s if s.startswith(_FORMULA_START) else s

    return text


def _excel_converter(col: Column) -> Convert:
    """Cell value → the value openpyxl stores (Decimal yuan / 万元, date, int, text)."""
    match col.kind:
        case ColumnKind.text:
            return lambda v: None if v is None else ILLEGAL_CHARACTERS_RE.sub("", str(v))
        case ColumnKind.int:
            return lambda v: None if v is None else _int(col, v)
        case ColumnKind.amount:
            return lambda v: None if v is None else fen_to_yuan(_fen(col, v))
        case ColumnKind.wan:
            return lambda v: None if v is None else _wan(_fen(col, v))
        case ColumnKind.ratio:
            return lambda v: None if v is None else _ratio(col, v)
        case ColumnKind.date:
            return lambda v: None if v is None else _date(col, v)


def _row_values(
    section: Section, row: Mapping[str, Any], converters: Sequence[tuple[str, Convert]]
) -> list[Any]:
    try:
        return [convert(row[key]) for key, convert in converters]
    except KeyError as exc:
        missing = exc.args[0]
        raise KeyError(f"section {section.sheet_name!r}: a row has no value for column {missing!r}") from None


def _totals_values(section: Section, converters: Sequence[tuple[str, Convert]], label: Any) -> list[Any]:
    """The totals row; its first cell is the 合计 / Total label unless the totals give that column."""
    assert section.totals is not None
    values = [convert(section.totals.get(key)) for key, convert in converters]
    if values[0] is None:
        values[0] = label
    return values


def _generated_line(generated_at: datetime) -> str:
    local = generated_at.astimezone(LOCAL_TZ)
    return (
        f"生成时间 / Generated: {local:%Y-%m-%d %H:%M:%S} 北京时间 (Asia/Shanghai, UTC+8) · "
        f"{generated_at:%Y-%m-%d %H:%M:%S} UTC"
    )


# --- JSON -----------------------------------------------------------------------------------------


def _section_dict(section: Section) -> dict[str, Any]:
    convs = [(c.key, _json_converter(c)) for c in section.columns]
    keys = [c.key for c in section.columns]
    totals = section.totals
    return {
        "name_zh": section.name_zh,
        "name_en": section.name_en,
        "columns": [{"key": c.key, "zh": c.zh, "en": c.en, "kind": c.kind.value} for c in section.columns],
        "rows": [dict(zip(keys, _row_values(section, row, convs), strict=True)) for row in section.rows],
        "totals": None if totals is None else {key: convert(totals.get(key)) for key, convert in convs},
    }


def report_to_dict(report: Report) -> dict[str, Any]:
    """The report as plain JSON-ready data (consumes the rows, so it holds them all in memory)."""
    return {
        "title_zh": report.title_zh,
        "title_en": report.title_en,
        "period": report.period,
        "generated_at": report.generated_at.isoformat().replace("+00:00", "Z"),
        "sections": [_section_dict(s) for s in report.sections],
    }


# --- CSV ------------------------------------------------------------------------------------------


def iter_csv(report: Report, *, chunk_rows: int = CSV_CHUNK_ROWS) -> Iterator[bytes]:
    """The report as UTF-8 CSV with a BOM, in chunks of `chunk_rows` rows; rows are read lazily."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    multi = len(report.sections) > 1

    def flush() -> bytes:
        data = buf.getvalue().encode("utf-8")
        buf.seek(0)
        buf.truncate()
        return data

    first = True
    for i, section in enumerate(report.sections):
        if i:
            writer.writerow([])
        if multi:
            writer.writerow([section.title])
        writer.writerow([c.label for c in section.columns])
        if first:
            yield _BOM + flush()  # headers go out before the first row is read
            first = False
        convs = [(c.key, _csv_converter(c)) for c in section.columns]
        pending = 0
        for row in section.rows:
            writer.writerow(_row_values(section, row, convs))
            pending += 1
            if pending >= chunk_rows:
                yield flush()
                pending = 0
        if section.totals is not None:
            writer.writerow(_totals_values(section, convs, TOTAL_LABEL))
    tail = flush()
    if tail:
        yield tail


# --- xlsx -----------------------------------------------------------------------------------------


_BOLD = Font(bold=True)
_TITLE = Font(bold=True, size=14)
_HEADER_ALIGN = Alignment(horizontal="center", vertical="center", wrap_text=True)


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _column_width(col: Column) -> float:
    if col.width is not None:
        return col.width
    header = max(_display_width(col.zh), _display_width(col.en)) + 2
    return float(min(max(header, _MIN_WIDTHS[col.kind]), 60))


def _xcell(ws: Any, col: Column, value: Any, *, bold: bool = False) -> Any:
    """A styled write-only cell for an already converted value."""
    cell = WriteOnlyCell(ws, value=value)
    if value is not None:
        if col.kind is ColumnKind.text or isinstance(value, str):
            cell.data_type = "s"  # a text that starts with "=" stays text, never a formula
        elif (fmt := col.excel_format) is not None:
            cell.number_format = fmt
    if bold:
        cell.font = _BOLD
    return cell


def _text_cell(ws: Any, text: str, font: Font | None = None) -> Any:
    cell = WriteOnlyCell(ws, value=text)
    cell.data_type = "s"
    if font is not None:
        cell.font = font
    return cell


def _write_sheet(ws: Any, report: Report, section: Section) -> None:
    # Column widths and frozen panes must be set before the first row is written.
    for idx, col in enumerate(section.columns, 1):
        ws.column_dimensions[get_column_letter(idx)].width = _column_width(col)
    ws.freeze_panes = f"A{XLSX_FIRST_DATA_ROW}"

    ws.append([_text_cell(ws, report.title_zh, _TITLE)])
    ws.append([_text_cell(ws, report.title_en, _BOLD)])
    ws.append([_text_cell(ws, f"统计期间 / Period: {report.period}")])
    ws.append([_text_cell(ws, _generated_line(report.generated_at))])
    ws.append([_text_cell(ws, section.title, _BOLD)])
    ws.append([])
    for attr in ("zh", "en"):
        header = []
        for col in section.columns:
            cell = _text_cell(ws, getattr(col, attr), _BOLD)
            cell.alignment = _HEADER_ALIGN
            header.append(cell)
        ws.append(header)

    convs = [(c.key, _excel_converter(c)) for c in section.columns]
    last_data_row = XLSX_MAX_ROWS - (1 if section.totals is not None else 0)
    row_idx = XLSX_FIRST_DATA_ROW
    for row in section.rows:
        if row_idx > last_data_row:
            raise Conflict(
                f"section {section.sheet_name!r} has more rows than an Excel sheet holds; use format=csv",
                code="export_too_large",
            )
        values = _row_values(section, row, convs)
        ws.append([_xcell(ws, c, v) for c, v in zip(section.columns, values, strict=True)])
        row_idx += 1
    if section.totals is not None:
        totals = _totals_values(section, convs, TOTAL_LABEL)
        ws.append([_xcell(ws, c, v, bold=True) for c, v in zip(section.columns, totals, strict=True)])


def _discard_sheet_files(wb: Any) -> None:
    """After a failed build, remove the temporary files write-only sheets stream their rows to."""
    for ws in wb.worksheets:
        writer = getattr(ws, "_writer", None)
        if writer is None:
            continue
        try:  # best effort (openpyxl also removes them at exit); private attributes of openpyxl 3.1
            rows = getattr(ws, "_rows", None)
            if rows is not None:
                rows.close()
            writer.close()
            writer.cleanup()
        except Exception:
            pass


def build_xlsx(report: Report, *, spool_bytes: int = XLSX_SPOOL_BYTES) -> IO[bytes]:
    """The finished workbook in a spooled temporary file, positioned at its start (caller closes it)."""
    wb = Workbook(write_only=True)
    out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=spool_bytes)
    try:
        for section in report.sections:
            _write_sheet(wb.create_sheet(title=section.sheet_name), report, section)
        wb.save(out)
        out.seek(0)
    except BaseException:
        _discard_sheet_files(wb)
        out.close()
        raise
    return out


def _iter_file(f: IO[bytes], chunk: int = XLSX_READ_CHUNK) -> Iterator[bytes]:
    try:
        while data := f.read(chunk):
            yield data
    finally:
        f.close()


# --- HTTP -----------------------------------------------------------------------------------------


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the RFC 5987 UTF-8 name (for Chinese names)."""
    filename = re.sub(r'[\x00-\x1f\x7f"\\/]', "_", filename)
    stem, dot, ext = filename.rpartition(".")
    if not dot:
        stem, ext = filename, ""
    fallback = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-") or "report"
    if ext:
        fallback = f"{fallback}.{ext}"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def render(report: Report, fmt: ReportFormat, filename_stem: str) -> Response:
    """The report as the response for `fmt`; CSV and xlsx are attachments named `filename_stem.<fmt>`.

    A report router (a plain `def`, so the xlsx build runs on the thread pool). Lazy rows are read while
    the CSV is sent, so the session must outlive the endpoint (``scope="request"``)::

        ReportSession = Annotated[Session, Depends(get_session, scope="request")]

        @router.get("/by-bank", response_model=ByBankRead, responses={**_ERR, **export_responses()})
        def by_bank(session: ReportSession, caller: AnyCaller, fmt: FormatQuery, year: int) -> Response:
            report = service.by_bank_report(session, caller, year)  # a Report with lazy rows
            return render(report, fmt, f"按银行统计-{year}")

    JSON here is the generic rendering (`report_to_dict`); a report with its own pydantic model returns
    that model for ``fmt is ReportFormat.json`` and calls `render` only for CSV and xlsx.
    """
    if fmt is ReportFormat.json:
        return JSONResponse(report_to_dict(report), media_type=JSON_MEDIA_TYPE)
    headers = {"Content-Disposition": content_disposition(f"{filename_stem}.{fmt.value}")}
    if fmt is ReportFormat.csv:
        return StreamingResponse(iter_csv(report), media_type=CSV_MEDIA_TYPE, headers=headers)
    return StreamingResponse(_iter_file(build_xlsx(report)), media_type=XLSX_MEDIA_TYPE, headers=headers)


def report_format(
    format: Annotated[
        ReportFormat, Query(description="Answer as JSON, CSV (UTF-8 with BOM) or an Excel workbook")
    ] = ReportFormat.json,
) -> ReportFormat:
    return format


FormatQuery = Annotated[ReportFormat, Depends(report_format)]


def export_responses(
    description: str = "The report as JSON, CSV or an Excel workbook",
) -> dict[int | str, Any]:
    """OpenAPI `responses=` entry adding the CSV and xlsx media types to the 200 answer.

    Merge it with the error responses: ``responses={**responses(401, 403, 422), **export_responses()}``;
    FastAPI keeps the endpoint's JSON schema (its `response_model`) beside these entries.
    """
    return {
        200: {
            "description": description,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }
