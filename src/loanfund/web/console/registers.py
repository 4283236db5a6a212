"""Registers: banks, enterprises (with the CSV import), applications, loans, claims, contributions — each
with a search box, filters, sorting by a column and pages — and the detail pages of a bank, an
enterprise and a loan.

A register is a query of the domain's own tables, narrowed by the filters the page names, ordered by a
column from a fixed list (then by id, so pages are stable), and cut into pages of `PAGE_SIZE` (the page
after the last shows nothing; a page holds one row more than it shows, to know whether another follows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from loanfund.applications.models import Application, ApplicationStatus
from loanfund.banks.models import Bank, BankStatus
from loanfund.claims.models import Claim, ClaimState
from loanfund.core.config import Settings
from loanfund.core.db import DbSession
from loanfund.core.errors import Forbidden, LoanfundError, NotFound
from loanfund.enterprises import service as enterprises
from loanfund.enterprises.models import Enterprise
from loanfund.fund import breakers
from loanfund.fund.exposure import exposure
from loanfund.fund.models import Contribution
from loanfund.loans.models import Loan, LoanEvent
from loanfund.loans.state import LoanState
from loanfund.reports import service as reports
from loanfund.staff.models import Role, Staff
from loanfund.status_reports import repository as status_report_repository

from .auth import PATH, Posting, Reader, Staffer, settings_of
from .render import done, errors_of, history_of, page

router = APIRouter(prefix=PATH, include_in_schema=False)
PAGE_SIZE = 50
IMPORT_MAX_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class Listing:
    rows: list[Any]
    page: int
    has_next: bool
    sort: str
    descending: bool
    query: dict[str, str]  # the filters as given, for links that keep them

    def link(self, **changes: Any) -> str:
        params = {
            **self.query,
            "sort": self.sort,
            "order": "desc" if self.descending else "asc",
            "page": self.page,
        }
        params.update({k: v for k, v in changes.items()})
        return "?" + "&".join(f"{k}={v}" for k, v in params.items() if v not in (None, ""))

    def sort_link(self, column: str) -> str:
        descending = not self.descending if column == self.sort else False
        return self.link(sort=column, order="desc" if descending else "asc", page=1)

    def aria_sort(self, column: str) -> str | None:
        if column != self.sort:
            return None
        return "descending" if self.descending else "ascending"


def listing(
    session: Session,
    stmt: Any,  # a Select of the register's row
    *,
    sorts: dict[str, Any],  # sort key → column
    id_column: Any,
    sort: str | None,
    order: str | None,
    page_no: int,
    query: dict[str, str],
    scalars: bool = True,
) -> Listing:
    key = sort if sort in sorts else next(iter(sorts))
    descending = order == "desc"
    column = sorts[key]
    ordered = stmt.order_by(
        column.desc() if descending else column.asc(), id_column.desc() if descending else id_column
    )
    page_no = max(1, page_no)
    cut = ordered.offset((page_no - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)
    rows: list[Any] = list(session.scalars(cut)) if scalars else list(session.execute(cut))
    return Listing(
        rows[:PAGE_SIZE],
        page_no,
        len(rows) > PAGE_SIZE,
        key,
        descending,
        {k: v for k, v in query.items() if v},
    )


def _like(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


Sort = Annotated[str | None, Query(max_length=32)]
Order = Annotated[str | None, Query(pattern="^(asc|desc)$")]
PageNo = Annotated[int, Query(ge=1, le=100_000)]
Search = Annotated[str, Query(max_length=100)]


def _bank_filter(session: Session, bank_id: int | None) -> dict[str, Any]:
    """What a register's bank filter needs: the chosen bank, every bank's code by id, the options."""
    banks = list(session.scalars(select(Bank).order_by(Bank.code)))
    return {
        "bank_id": bank_id,
        "bank_codes": {b.id: b.code for b in banks},
        "bank_options": [(b.id, b.code) for b in banks],
    }


# --- banks -------------------------------------------------------------------------------------------


@router.get("/banks")
def bank_register(
    request: Request,
    session: DbSession,
    user: Reader,
    q: Search = "",
    status: Annotated[str, Query(max_length=16)] = "",
    sort: Sort = None,
    order: Order = None,
    page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    stmt = select(Bank)
    if q:
        stmt = stmt.where(or_(Bank.code.ilike(_like(q), escape="\\"), Bank.name.ilike(_like(q), escape="\\")))
    if status in {s.value for s in BankStatus}:
        stmt = stmt.where(Bank.status == BankStatus(status))
    found = listing(
        session,
        stmt,
        sorts={"code": Bank.code, "name": Bank.name, "fund_share": Bank.fund_share, "status": Bank.status},
        id_column=Bank.id,
        sort=sort,
        order=order,
        page_no=page_no,
        query={"q": q, "status": status},
    )
    states = {b.bank_id: b for b in breakers.list_breakers(session) if b.bank_id is not None}
    return page(
        request,
        user,
        "console/banks.html",
        {"list": found, "q": q, "status": status, "breaker_of": states, "statuses": list(BankStatus)},
    )


def bank_context(session: Session, settings: Settings, user: Staffer, bank_id: int) -> dict[str, Any]:
    """A bank's page: its terms, exposure, breaker, closed months and their reopenings, and history."""
    bank = session.get(Bank, bank_id)
    if bank is None:
        raise NotFound("No such bank", code="bank_not_found")
    view = exposure(session, settings, bank_id=bank_id)
    breaker = next((b for b in breakers.list_breakers(session, bank_id)), None)
    history = history_of(session, "bank", str(bank_id), limit=30)
    # the bank's reopened months as `GET /status-reports/reopenings?bank_id=` lists them
    reopenings = status_report_repository.list_reopenings(
        session, user.principal, bank_id=bank_id, open_only=None, after_id=None, limit=100
    )
    officers = {r.reopened_by for r in reopenings}
    return {
        "bank": bank,
        "line": view.banks[0] if view.banks else None,
        "breaker": breaker,
        "history": history,
        "reopenings": reopenings[::-1],
        "reopened_by": {
            i: n for i, n in session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(officers)))
        },
        "closed_months": status_report_repository.reported_months(session, bank_id, limit=24),
        "closed_through": status_report_repository.closed_through(session, bank_id),
        "errors": {},
        "error": None,
        "form": {},
    }


@router.get("/banks/{bank_id}")
def bank_page(request: Request, session: DbSession, user: Reader, bank_id: int) -> Response:
    context = bank_context(session, settings_of(request), user, bank_id)
    return page(request, user, "console/bank.html", context)


# --- enterprises -------------------------------------------------------------------------------------------


@router.get("/enterprises")
def enterprise_register(
    request: Request,
    session: DbSession,
    user: Reader,
    q: Search = "",
    industry: Annotated[str, Query(max_length=1)] = "",
    high_tech: Annotated[str, Query(max_length=3)] = "",
    sort: Sort = None,
    order: Order = None,
    page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    return page(
        request,
        user,
        "console/enterprises.html",
        _enterprise_context(session, q, industry, high_tech, sort, order, page_no),
    )


def _enterprise_context(
    session: Session, q: str, industry: str, high_tech: str, sort: str | None, order: str | None, page_no: int
) -> dict[str, Any]:
    stmt = select(Enterprise)
    if q:
        stmt = stmt.where(
            or_(
                Enterprise.credit_code.ilike(_like(q), escape="\\"),
                Enterprise.name.ilike(_like(q), escape="\\"),
            )
        )
    if industry:
        stmt = stmt.where(Enterprise.industry == industry.upper())
    if high_tech == "yes":
        stmt = stmt.where(Enterprise.high_tech_cert_no.is_not(None))
    found = listing(
        session,
        stmt,
        sorts={
            "credit_code": Enterprise.credit_code,
            "name": Enterprise.name,
            "industry": Enterprise.industry,
            "tech_reg_date": Enterprise.tech_reg_date,
        },
        id_column=Enterprise.id,
        sort=sort,
        order=order,
        page_no=page_no,
        query={"q": q, "industry": industry, "high_tech": high_tech},
    )
    return {
        "list": found,
        "q": q,
        "industry": industry,
        "high_tech": high_tech,
        "industries": reports.INDUSTRY_NAMES,
        "import_errors": None,
        "import_error": None,
    }


@router.post("/enterprises/import")
async def enterprise_import(
    request: Request, session: DbSession, user: Posting, file: Annotated[UploadFile, File()]
) -> Response:
    """The CSV import as an upload: every bad line is reported; nothing is imported unless all are good."""
    if not user.may(Role.officer):
        raise Forbidden("Importing enterprises needs the officer role", code="role_required")
    raw = await file.read(IMPORT_MAX_BYTES + 1)
    try:
        if len(raw) > IMPORT_MAX_BYTES:
            raise LoanfundError("The file is too large", code="payload_too_large", status_code=413)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise LoanfundError("Not UTF-8", code="csv_encoding", status_code=422) from exc
        count = enterprises.import_csv(session, user.actor, text)
    except LoanfundError as exc:
        session.rollback()
        context = _enterprise_context(session, "", "", "", None, None, 1)
        error, _ = errors_of(request, exc)
        lines = exc.details if isinstance(exc.details, list) else []
        context.update(import_error=error, import_errors=lines)
        return page(request, user, "console/enterprises.html", context, status_code=exc.status_code)
    return done(f"{PATH}/enterprises?imported={count}", "imported")


def enterprise_context(session: Session, credit_code: str) -> dict[str, Any]:
    history = reports.enterprise_history(session, reports.Scope(None), credit_code)
    return {
        "h": history,
        "industries": reports.INDUSTRY_NAMES,
        "grades": "ABCDE",
        "errors": {},
        "error": None,
        "form": {},
    }


@router.get("/enterprises/{credit_code}")
def enterprise_page(request: Request, session: DbSession, user: Reader, credit_code: str) -> Response:
    return page(request, user, "console/enterprise.html", enterprise_context(session, credit_code))


# --- applications -------------------------------------------------------------------------------------------


@router.get("/applications")
def application_register(
    request: Request,
    session: DbSession,
    user: Reader,
    q: Search = "",
    status: Annotated[str, Query(max_length=16)] = "",
    bank_id: Annotated[int | None, Query(ge=1)] = None,
    sort: Sort = None,
    order: Order = None,
    page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    stmt = select(Application)
    if q:
        stmt = stmt.where(
            or_(
                Application.application_no.ilike(_like(q), escape="\\"),
                Application.credit_code.ilike(_like(q), escape="\\"),
            )
        )
    if status in {s.value for s in ApplicationStatus}:
        stmt = stmt.where(Application.status == ApplicationStatus(status))
    if bank_id:
        stmt = stmt.where(Application.bank_id == bank_id)
    found = listing(
        session,
        stmt,
        sorts={
            "application_date": Application.application_date,
            "score": Application.score,
            "requested": Application.requested_amount_fen,
            "status": Application.status,
        },
        id_column=Application.id,
        sort=sort or "application_date",
        order=order or ("desc" if sort is None else None),
        page_no=page_no,
        query={"q": q, "status": status, "bank_id": str(bank_id or "")},
    )
    return page(
        request,
        user,
        "console/applications.html",
        {
            "list": found,
            "q": q,
            "status": status,
            **_bank_filter(session, bank_id),
            "statuses": list(ApplicationStatus),
        },
    )


# --- loans --------------------------------------------------------------------------------------------------


@router.get("/loans")
def loan_register(
    request: Request,
    session: DbSession,
    user: Reader,
    q: Search = "",
    state: Annotated[str, Query(max_length=16)] = "",
    bank_id: Annotated[int | None, Query(ge=1)] = None,
    sort: Sort = None,
    order: Order = None,
    page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    stmt = select(Loan, Enterprise.name, Enterprise.credit_code).join(
        Enterprise, Enterprise.id == Loan.enterprise_id
    )
    if q:
        stmt = stmt.where(
            or_(
                Loan.bank_loan_ref.ilike(_like(q), escape="\\"),
                Enterprise.credit_code == q.upper(),
                Enterprise.name.ilike(_like(q), escape="\\"),
            )
        )
    if state in {s.value for s in LoanState}:
        stmt = stmt.where(Loan.state == LoanState(state))
    if bank_id:
        stmt = stmt.where(Loan.bank_id == bank_id)
    found = listing(
        session,
        stmt,
        sorts={
            "id": Loan.id,
            "start_date": Loan.start_date,
            "amount": Loan.contract_amount_fen,
            "outstanding": Loan.outstanding_fen,
            "days_past_due": Loan.days_past_due,
        },
        id_column=Loan.id,
        sort=sort or "id",
        order=order or ("desc" if sort is None else None),
        page_no=page_no,
        query={"q": q, "state": state, "bank_id": str(bank_id or "")},
        scalars=False,
    )
    return page(
        request,
        user,
        "console/loans.html",
        {
            "list": found,
            "q": q,
            "state": state,
            **_bank_filter(session, bank_id),
            "states": list(LoanState),
        },
    )


@router.get("/loans/{loan_id}")
def loan_page(request: Request, session: DbSession, user: Reader, loan_id: int) -> Response:
    loan = session.get(Loan, loan_id)
    if loan is None:
        raise NotFound("No such loan", code="loan_not_found")
    events = list(
        session.scalars(
            select(LoanEvent).where(LoanEvent.loan_id == loan_id).order_by(LoanEvent.event_date, LoanEvent.id)
        )
    )
    changes = history_of(session, "loan", str(loan_id), action="loan.state_change")
    claims = list(session.scalars(select(Claim).where(Claim.loan_id == loan_id).order_by(Claim.id)))
    return page(
        request,
        user,
        "console/loan.html",
        {
            "loan": loan,
            "bank": session.get(Bank, loan.bank_id),
            "enterprise": session.get(Enterprise, loan.enterprise_id),
            "events": events,
            "timeline": _timeline(loan),
            "changes": changes[::-1],
            "claims": claims,
        },
    )


def _timeline(loan: Loan) -> list[tuple[str, Any, bool]]:
    """The loan's states in order with the date each began (None: not reached)."""
    steps: list[tuple[str, Any, bool]] = [
        ("approved", loan.start_date, True),
        ("active", loan.first_disbursed_on, loan.first_disbursed_on is not None),
    ]
    if loan.npl_since or loan.state in (
        LoanState.non_performing,
        LoanState.compensated,
        LoanState.written_off,
    ):
        steps.append(("non_performing", loan.npl_since, loan.npl_since is not None))
    if loan.compensated_on:
        steps.append(("compensated", loan.compensated_on, True))
    if loan.written_off_on:
        steps.append(("written_off", loan.written_off_on, True))
    if loan.settled_on or loan.state in (LoanState.active, LoanState.overdue):
        steps.append(("settled", loan.settled_on, loan.settled_on is not None))
    return steps


# --- claims and contributions ----------------------------------------------------------------------------


@router.get("/claims")
def claim_register(
    request: Request,
    session: DbSession,
    user: Reader,
    state: Annotated[str, Query(max_length=16)] = "",
    bank_id: Annotated[int | None, Query(ge=1)] = None,
    sort: Sort = None,
    order: Order = None,
    page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    stmt = (
        select(Claim, Loan.bank_loan_ref, Enterprise.name)
        .join(Loan, Loan.id == Claim.loan_id)
        .join(Enterprise, Enterprise.id == Loan.enterprise_id)
    )
    if state in {s.value for s in ClaimState}:
        stmt = stmt.where(Claim.state == ClaimState(state))
    if bank_id:
        stmt = stmt.where(Claim.bank_id == bank_id)
    found = listing(
        session,
        stmt,
        sorts={"filed_on": Claim.filed_on, "claimed": Claim.claimed_fen, "state": Claim.state},
        id_column=Claim.id,
        sort=sort or "filed_on",
        order=order or ("desc" if sort is None else None),
        page_no=page_no,
        query={"state": state, "bank_id": str(bank_id or "")},
        scalars=False,
    )
    return page(
        request,
        user,
        "console/claims.html",
        {
            "list": found,
            "state": state,
            **_bank_filter(session, bank_id),
            "states": list(ClaimState),
            "by_state": reports.claims_by_state(session, reports.Scope(None)),
        },
    )


@router.get("/contributions")
def contribution_register(
    request: Request,
    session: DbSession,
    user: Reader,
    source: Annotated[str, Query(max_length=16)] = "",
    sort: Sort = None,
    order: Order = None,
    page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    stmt = select(Contribution)
    if source in ("city", "district"):
        stmt = stmt.where(Contribution.source == source)
    found = listing(
        session,
        stmt,
        sorts={"value_date": Contribution.value_date, "amount": Contribution.amount_fen},
        id_column=Contribution.id,
        sort=sort or "value_date",
        order=order or ("desc" if sort is None else None),
        page_no=page_no,
        query={"source": source},
    )
    return page(request, user, "console/contributions.html", {"list": found, "source": source})
