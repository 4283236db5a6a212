"""Monthly status reports: update delinquency, reconcile the bank's balances against the events, and
list every mismatch — including loans the bank forgot to report. Submitting closes the month."""

from __future__ import annotations

import calendar
from datetime import date

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from loanfund.audit.service import Actor, record
from loanfund.banks.models import Bank
from loanfund.core.clock import business_today
from loanfund.core.config import Settings
from loanfund.core.errors import Conflict, InvalidInput, LoanfundError
from loanfund.core.money import to_fen
from loanfund.loans import service as loan_service
from loanfund.loans.models import Loan, LoanEvent
from loanfund.loans.state import OPEN_FOR_BANK_EVENTS, Event, EventKind
from loanfund.risk import ratings
from loanfund.status_reports.models import Discrepancy, StatusReport, StatusReportLine
from loanfund.status_reports.repository import closed_through
from loanfund.status_reports.schemas import StatusLine


def is_month_end(day: date) -> bool:
    return day.day == calendar.monthrange(day.year, day.month)[1]


def outstanding_as_of(session: Session, bank_id: int, day: date) -> dict[int, int]:
    """Event-derived outstanding principal of each of the bank's loans at the end of `day`."""
    signed = case(
        (LoanEvent.kind == EventKind.disbursement, LoanEvent.principal_fen),
        (LoanEvent.kind == EventKind.repayment, -LoanEvent.principal_fen),
        else_=0,
    )
    rows = session.execute(
        select(LoanEvent.loan_id, func.sum(signed))
        .where(LoanEvent.bank_id == bank_id, LoanEvent.event_date <= day)
        .group_by(LoanEvent.loan_id)
    )
    return {loan_id: int(total or 0) for loan_id, total in rows}


def submit(
    session: Session, settings: Settings, actor: Actor, bank: Bank, month_end: date, lines: list[StatusLine]
) -> StatusReport:
    if not is_month_end(month_end):
        raise InvalidInput(
            f"{month_end} is not the last day of a month",
            code="not_month_end",
            details=[{"field": "month_end", "message": "must be a month's last day"}],
        )
    if month_end > business_today(settings):
        raise InvalidInput(
            "The month has not ended yet",
            code="month_not_over",
            details=[{"field": "month_end", "message": "in the future"}],
        )
    closed = closed_through(session, bank.id)
    if closed is not None and month_end <= closed:
        code = "status_report_exists" if month_end == closed else "reporting_month_closed"
        raise Conflict(f"The bank has already reported up to {closed}", code=code)
    seen: dict[str, int] = {}
    dupes = []
    for i, line in enumerate(lines):
        if line.bank_loan_ref in seen:
            dupes.append(
                {
                    "field": f"loans.{i}.bank_loan_ref",
                    "message": f"duplicate of loans.{seen[line.bank_loan_ref]}",
                }
            )
        seen[line.bank_loan_ref] = i
    if dupes:
        raise InvalidInput("A loan is reported twice", code="status_report_duplicate_loan", details=dupes)

    loans = {
        loan.bank_loan_ref: loan for loan in session.scalars(select(Loan).where(Loan.bank_id == bank.id))
    }
    derived = outstanding_as_of(session, bank.id, month_end)
    lookups = loan_service.Lookups(session, settings)
    found: list[Discrepancy] = []

    def note(kind: str, ref: str, loan: Loan | None, line: StatusLine | None) -> None:
        found.append(
            Discrepancy(
                bank_id=bank.id,
                month_end=month_end,
                loan_id=loan.id if loan else None,
                bank_loan_ref=ref,
                kind=kind,
                reported_outstanding_fen=to_fen(line.outstanding_principal) if line else None,
                derived_outstanding_fen=derived.get(loan.id, 0) if loan else None,
                reported_days_past_due=line.days_past_due if line else None,
            )
        )

    report_lines = []
    for line in lines:
        loan = loans.get(line.bank_loan_ref)
        report_lines.append(
            StatusReportLine(
                loan_id=loan.id if loan else None,
                bank_loan_ref=line.bank_loan_ref,
                reported_outstanding_fen=to_fen(line.outstanding_principal),
                reported_days_past_due=line.days_past_due,
            )
        )
        if loan is None:
            note("unknown_loan", line.bank_loan_ref, None, line)
            continue
        if to_fen(line.outstanding_principal) != derived.get(loan.id, 0):
            note("balance_mismatch", line.bank_loan_ref, loan, line)
        if loan.state not in OPEN_FOR_BANK_EVENTS or loan.first_disbursed_on is None:
            if line.days_past_due or line.outstanding_principal:
                note("not_open", line.bank_loan_ref, loan, line)
            continue
        if line.days_past_due != loan.days_past_due and loan.first_disbursed_on <= month_end:
            try:
                loan_service.post_event(
                    session,
                    settings,
                    actor,
                    loan,
                    Event(EventKind.delinquency, month_end, days_past_due=line.days_past_due),
                    bank_event_ref=f"SR{month_end:%Y%m}-{line.bank_loan_ref}"[:64],
                    source="status_report",
                    lookups=lookups,
                )
            except LoanfundError:
                note("update_refused", line.bank_loan_ref, loan, line)
    reported = set(seen)
    for ref, loan in loans.items():
        if ref not in reported and derived.get(loan.id, 0) > 0 and loan.state in OPEN_FOR_BANK_EVENTS:
            note("missing_from_report", ref, loan, None)

    loan_service.evaluate_breakers(session, settings, actor, lookups)
    report = StatusReport(
        bank_id=bank.id, month_end=month_end, line_count=len(lines), discrepancy_count=len(found)
    )
    session.add(report)
    session.flush()
    for line_row in report_lines:
        line_row.report_id = report.id
    for disc in found:
        disc.report_id = report.id
    session.add_all([*report_lines, *found])
    session.flush()
    ratings.month_closed(session, settings, actor, month_end)  # rates the month once every bank closed it
    record(
        session,
        actor,
        "status_report.submit",
        "status_report",
        report.id,
        after={"month_end": month_end, "lines": len(lines), "discrepancies": len(found)},
    )
    return report
