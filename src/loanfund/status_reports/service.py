"""Monthly status reports: update delinquency, reconcile the bank's balances against the events, and
list every mismatch — including loans the bank forgot to report. Submitting closes the month.

Corrections: a bank may file an amended report for a closed month, with a reason (the month's next
version; earlier versions stay readable), and an officer may reopen a bank's closed month, with a
reason, so that late events can be posted. The loan write path asks `repository.closed_through`, which
answers the day before the earliest reopened month while a reopening is open; the month's amended
report closes it again."""

from __future__ import annotations

import calendar
from datetime import date

from sqlalchemy.orm import Session

from loanfund.audit.service import Actor, record
from loanfund.banks.models import Bank
from loanfund.core.clock import business_today
from loanfund.core.config import Settings
from loanfund.core.db import utcnow
from loanfund.core.errors import Conflict, InvalidInput, field_error
from loanfund.core.money import to_fen
from loanfund.loans import writes
from loanfund.loans.models import Loan
from loanfund.loans.state import OPEN_FOR_BANK_EVENTS, Event, EventKind
from loanfund.risk import ratings
from loanfund.status_reports import repository
from loanfund.status_reports.models import Discrepancy, MonthReopening, StatusReport, StatusReportLine
from loanfund.status_reports.schemas import StatusLine
from loanfund.webhooks import events as webhook_events


def is_month_end(day: date) -> bool:
    return day.day == calendar.monthrange(day.year, day.month)[1]


def _check_month_end(settings: Settings, month_end: date) -> None:
    if not is_month_end(month_end):
        raise field_error("not_month_end", f"{month_end} is not the last day of a month", "month_end")
    if month_end > business_today(settings):
        raise field_error("month_not_over", f"The month ending {month_end} is not over yet", "month_end")


def _check_closed(session: Session, bank: Bank, month_end: date, what_then: str) -> None:
    """The bank has reported the month (or a later one): it is closed."""
    last = repository.last_reported(session, bank.id)
    if last is None or month_end > last:
        raise Conflict(
            f"Bank {bank.code} has not closed the month ending {month_end}: {what_then}",
            code="month_not_closed",
            details=[
                {"field": "month_end", "message": f"must be on or before {last}" if last else "no report yet"}
            ],
        )


def submit(
    session: Session, settings: Settings, actor: Actor, bank: Bank, month_end: date, lines: list[StatusLine]
) -> StatusReport:
    """The month's report, which closes the month."""
    _check_month_end(settings, month_end)
    last = repository.last_reported(session, bank.id)
    if last is not None and month_end <= last:
        code = "status_report_exists" if month_end == last else "reporting_month_closed"
        raise Conflict(
            f"The bank has already reported up to {last}; a closed month takes an amended report",
            code=code,
            details=[{"field": "month_end", "message": f"must be after {last}"}],
        )
    return _file(session, settings, actor, bank, month_end, lines)


def amend(
    session: Session,
    settings: Settings,
    actor: Actor,
    bank: Bank,
    month_end: date,
    lines: list[StatusLine],
    reason: str,
) -> StatusReport:
    """An amended report for a closed month, with a reason: the month's next version, reconciled against
    the events as they stand now. If an officer had reopened the month, the amendment closes it again."""
    _check_month_end(settings, month_end)
    _check_closed(session, bank, month_end, "file its report, not an amendment")
    previous = repository.latest_version(session, bank.id, month_end)
    return _file(session, settings, actor, bank, month_end, lines, amends=previous, reason=reason)


def _file(
    session: Session,
    settings: Settings,
    actor: Actor,
    bank: Bank,
    month_end: date,
    lines: list[StatusLine],
    *,
    amends: StatusReport | None = None,
    reason: str | None = None,
) -> StatusReport:
    version = 1 if amends is None else amends.version + 1
    # the delinquency events a report posts: SR202106-<ref>, an amendment's SR202106v2-<ref>
    event_prefix = f"SR{month_end:%Y%m}" + ("" if version == 1 else f"v{version}")
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

    loans = repository.loans_by_ref(session, bank.id)
    derived = repository.outstanding_as_of(session, bank.id, month_end)
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
    updates: list[tuple[StatusLine, Loan, writes.Submission]] = []  # delinquency the report changes
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
            event = Event(EventKind.delinquency, month_end, days_past_due=line.days_past_due)
            item = writes.EventIn(loan.id, event, f"{event_prefix}-{line.bank_loan_ref}"[:64])
            updates.append((line, loan, writes.Submission(bank.id, actor, [item], source="status_report")))
    # each line's update on its own: one refused is a discrepancy, the others are written
    outcomes = writes.run(session, settings, [sub for _, _, sub in updates]) if updates else []
    for (line, loan, _), outcome in zip(updates, outcomes, strict=True):
        if not outcome.ok:
            note("update_refused", line.bank_loan_ref, loan, line)
    reported = set(seen)
    for ref, loan in loans.items():
        if ref not in reported and derived.get(loan.id, 0) > 0 and loan.state in OPEN_FOR_BANK_EVENTS:
            note("missing_from_report", ref, loan, None)

    report = StatusReport(
        bank_id=bank.id,
        month_end=month_end,
        version=version,
        amends_id=None if amends is None else amends.id,
        reason=reason,
        line_count=len(lines),
        discrepancy_count=len(found),
    )
    session.add(report)
    session.flush()
    for line_row in report_lines:
        line_row.report_id = report.id
    for disc in found:
        disc.report_id = report.id
    session.add_all([*report_lines, *found])
    session.flush()
    webhook_events.status_report_processed(session, report, found)
    after = {"month_end": month_end, "version": version, "lines": len(lines), "discrepancies": len(found)}
    if amends is None:
        ratings.month_closed(session, settings, actor, month_end)  # rates the month once every bank closed it
        record(session, actor, "status_report.submit", "status_report", report.id, after=after)
        return report
    after["amends_report_id"] = amends.id
    record(session, actor, "status_report.amend", "status_report", report.id, after=after, reason=reason)
    reopening = repository.open_reopening(session, bank.id, month_end, lock=True)
    if reopening is not None:
        reopening.closed_by_report_id = report.id
        reopening.closed_at = utcnow()
        session.flush()
        record(
            session,
            actor,
            "month.close",
            "month_reopening",
            reopening.id,
            after={"bank_id": bank.id, "month_end": month_end, "closed_by_report_id": report.id},
        )
    return report


def reopen_month(
    session: Session,
    settings: Settings,
    actor: Actor,
    staff_id: int,
    bank: Bank,
    month_end: date,
    reason: str,
) -> MonthReopening:
    """`month.reopened`: an officer reopens a bank's closed month, with a reason, so that late events can
    be posted. From that month on the bank's events are accepted again (`repository.closed_through`)
    until the bank files the month's amended report."""
    _check_month_end(settings, month_end)
    _check_closed(session, bank, month_end, "there is nothing to reopen")
    if repository.open_reopening(session, bank.id, month_end) is not None:
        raise Conflict(
            f"The month ending {month_end} of bank {bank.code} is already reopened",
            code="month_already_reopened",
            details=[{"field": "month_end", "message": "already reopened"}],
        )
    reopening = MonthReopening(bank_id=bank.id, month_end=month_end, reason=reason, reopened_by=staff_id)
    session.add(reopening)
    session.flush()
    record(
        session,
        actor,
        "month.reopen",
        "month_reopening",
        reopening.id,
        after={"bank_id": bank.id, "month_end": month_end},
        reason=reason,
    )
    webhook_events.month_reopened(
        session,
        bank_id=bank.id,
        month_end=month_end,
        closed_through=repository.closed_through(session, bank.id),
        reason=reason,
    )
    return reopening
