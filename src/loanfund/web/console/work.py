"""Work queues and the pages where the work is done: a claim (approve, approve reduced, reject, pay), an
application (re-grade), a bank's breaker (lift) and status (suspend, reinstate).

Each action is a thin caller of the service function the API's route calls, with the same locking and
the same business date; a refusal (`LoanfundError`) rolls the request back and shows the page again with
the sentence for its code, beside the field it names. Approving and rejecting need the officer or
approver role, paying the approver role (and not the reviewer: maker-checker, shown before the click).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.applications import service as applications
from loanfund.applications.models import Application, ApplicationStatus, IneligibleReason
from loanfund.banks import service as banks
from loanfund.banks.models import Bank, BankStatus
from loanfund.claims import repository as claim_repository
from loanfund.claims import service as claims
from loanfund.claims.models import Claim, ClaimState
from loanfund.core.clock import business_today
from loanfund.core.db import DbSession
from loanfund.core.errors import Forbidden, InvalidInput, LoanfundError
from loanfund.core.money import to_fen
from loanfund.enterprises.models import Enterprise
from loanfund.fund import breakers
from loanfund.loans.models import Loan
from loanfund.reports import service as reports
from loanfund.staff.models import Role, Staff

from .auth import PATH, Posting, Reader, Staffer, settings_of
from .render import done, errors_of, history_of, page

router = APIRouter(prefix=PATH, include_in_schema=False)
QUEUE_LIMIT = 100
_ALL = reports.Scope(None)


def _amount(value: str, field: str) -> Decimal | None:
    text = value.strip().replace(",", "")
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = Decimal(-1)
    if amount <= 0 or amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise InvalidInput(
            "Enter an amount in yuan with at most two decimal places",
            code="decimal_parsing",
            details=[{"field": field, "message": "not an amount"}],
        )
    return amount


# --- the queues ---------------------------------------------------------------------------------------


def _staff_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {r[0]: r[1] for r in session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(ids)))}


def queues(session: Session, user: Staffer) -> dict[str, Any]:
    """Every queue's first rows (the claims register's rows, the applications the officer may re-grade,
    the suspended banks, the latest status-report discrepancies)."""
    submitted = list(reports.claims_register(session, _ALL, state=ClaimState.submitted, stream=False).rows)
    approved = list(reports.claims_register(session, _ALL, state=ClaimState.approved, stream=False).rows)
    reviewed = {
        r[0]: r[1]
        for r in session.execute(
            select(Claim.id, Claim.reviewed_by).where(Claim.state == ClaimState.approved)
        )
    }
    regrade = list(
        session.scalars(
            select(Application)
            .where(
                (Application.status == ApplicationStatus.pending_bank)
                | (
                    (Application.status == ApplicationStatus.ineligible)
                    & (Application.ineligible_reason == IneligibleReason.score_below_threshold)
                )
            )
            .order_by(Application.application_date, Application.id)
            .limit(QUEUE_LIMIT)
        )
    )
    suspended = [
        b
        for b in breakers.list_breakers(session)
        if b.state == breakers.BreakerState.suspended and not b.lifted
    ]
    bank_rows = {b.id: b for b in session.scalars(select(Bank))}
    discrepancies = list(reports.discrepancies(session, _ALL, month_end=None, kind=None, stream=True).rows)
    return {
        "to_review": submitted[:QUEUE_LIMIT],
        "to_pay": [r for r in approved if r["reserved"] > 0][:QUEUE_LIMIT],
        "unfunded": [r for r in approved if r["reserved"] == 0][:QUEUE_LIMIT],
        "reviewed_by": reviewed,
        "reviewer_names": _staff_names(session, {v for v in reviewed.values() if v}),
        "regrade": regrade,
        "banks": bank_rows,
        "suspended": suspended,
        "suspended_banks": [b for b in bank_rows.values() if b.status == BankStatus.suspended],
        "discrepancies": discrepancies[-QUEUE_LIMIT:][::-1],
        "counts": {
            "to_review": len(submitted),
            "to_pay": sum(1 for r in approved if r["reserved"] > 0),
            "unfunded": sum(1 for r in approved if r["reserved"] == 0),
        },
    }


@router.get("/work")
def work(request: Request, session: DbSession, user: Reader) -> Response:
    return page(request, user, "console/work.html", queues(session, user))


# --- a claim ------------------------------------------------------------------------------------------


def claim_context(session: Session, user: Staffer, claim_id: int) -> dict[str, Any]:
    claim = claims.get_readable(session, user.principal, claim_id)
    loan = session.get(Loan, claim.loan_id)
    assert loan is not None
    bank = session.get(Bank, claim.bank_id)
    enterprise = session.get(Enterprise, loan.enterprise_id)
    names = _staff_names(session, {i for i in (claim.reviewed_by, claim.paid_by) if i})
    may_review = user.may(Role.officer, Role.approver) and claim.state is ClaimState.submitted
    may_reject = user.may(Role.officer, Role.approver) and claim.state in (
        ClaimState.submitted,
        ClaimState.approved,
    )
    approved = claim.state is ClaimState.approved
    return {
        "claim": claim,
        "loan": loan,
        "bank": bank,
        "enterprise": enterprise,
        "recoveries": claim_repository.recoveries_of(session, claim.id),
        "receivable": claim_repository.receivable_fen(session, claim.id),
        "names": names,
        "may_review": may_review,
        "may_reject": may_reject,
        "i_reviewed": approved and claim.reviewed_by == user.id,
        "may_pay": approved and user.may(Role.approver) and claim.reviewed_by != user.id,
        "history": history_of(session, "claim", str(claim.id)),
        "errors": {},
        "error": None,
        "form": {},
    }


@router.get("/claims/{claim_id}")
def claim_page(request: Request, session: DbSession, user: Reader, claim_id: int) -> Response:
    return page(request, user, "console/claim.html", claim_context(session, user, claim_id))


@router.post("/claims/{claim_id}")
def claim_action(
    request: Request,
    session: DbSession,
    user: Posting,
    claim_id: int,
    action: Annotated[str, Form(max_length=16)],
    amount: Annotated[str, Form(max_length=32)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """`action` = approve | reject | pay, the submit button's value."""
    settings = settings_of(request)
    day = business_today(settings)
    if action in ("approve", "reject") and not user.may(Role.officer, Role.approver):
        raise Forbidden("Reviewing a claim needs the officer or approver role", code="role_required")
    if action == "pay" and not user.may(Role.approver):
        raise Forbidden("Confirming a payout needs the approver role", code="role_required")
    if action not in ("approve", "reject", "pay"):
        raise InvalidInput("Unknown action", code="validation_error")
    reason_text = reason.strip() or None
    try:
        claim = claims.get_readable(session, user.principal, claim_id, lock=True)
        if action == "approve":
            value = _amount(amount, "amount")
            claims.approve(
                session,
                settings,
                user.actor,
                claim,
                reviewer_id=user.id,
                amount_fen=None if value is None else to_fen(value),
                reason=reason_text,
                day=day,
            )
        elif action == "reject":
            if reason_text is None or len(reason_text) < 3:
                raise InvalidInput(
                    "A rejection needs a reason",
                    code="reason_required",
                    details=[{"field": "reason", "message": "at least 3 characters"}],
                )
            claims.reject(session, user.actor, claim, reviewer_id=user.id, reason=reason_text, day=day)
        else:
            claims.pay(session, settings, user.actor, claim, payer_id=user.id, day=day)
    except LoanfundError as exc:
        session.rollback()
        context = claim_context(session, user, claim_id)
        error, errors = errors_of(request, exc)
        context.update(
            error=error, errors=errors, form={"amount": amount, "reason": reason, "action": action}
        )
        return page(request, user, "console/claim.html", context, status_code=exc.status_code)
    return done(
        f"{PATH}/claims/{claim_id}", {"approve": "approved", "reject": "rejected", "pay": "paid"}[action]
    )


# --- an application: re-grade ------------------------------------------------------------------------------


def application_context(session: Session, user: Staffer, application_no: str) -> dict[str, Any]:
    app = applications.get_readable(session, user.principal, application_no)
    bank = session.get(Bank, app.bank_id) if app.bank_id else None
    may_regrade = user.may(Role.officer) and (
        app.status == ApplicationStatus.pending_bank
        or (
            app.status == ApplicationStatus.ineligible
            and app.ineligible_reason == IneligibleReason.score_below_threshold
        )
    )
    return {
        "app": app,
        "bank": bank,
        "loan": applications.loan_summary(session, app.id),
        "may_regrade": may_regrade,
        "history": history_of(session, "application", app.application_no),
        "errors": {},
        "error": None,
        "form": {},
    }


@router.get("/applications/{application_no}")
def application_page(request: Request, session: DbSession, user: Reader, application_no: str) -> Response:
    return page(request, user, "console/application.html", application_context(session, user, application_no))


@router.post("/applications/{application_no}/regrade")
def regrade(
    request: Request,
    session: DbSession,
    user: Posting,
    application_no: str,
    grade: Annotated[str, Form(max_length=1)] = "",
    credit_line: Annotated[str, Form(max_length=32)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    if not user.may(Role.officer):
        raise Forbidden("Re-grading needs the officer role", code="role_required")
    try:
        if grade and grade not in "ABCDE":
            raise InvalidInput("Choose a grade A–E", code="validation_error", details=[{"field": "grade"}])
        if len(reason.strip()) < 3:
            raise InvalidInput(
                "A re-grade needs a reason",
                code="reason_required",
                details=[{"field": "reason", "message": "at least 3 characters"}],
            )
        app = applications.get_readable(session, user.principal, application_no, for_update=True)
        applications.override_evaluation(
            session,
            user.actor,
            app,
            grade=grade or None,
            credit_line=_amount(credit_line, "credit_line"),
            reason=reason.strip(),
        )
    except LoanfundError as exc:
        session.rollback()
        context = application_context(session, user, application_no)
        error, errors = errors_of(request, exc)
        context.update(
            error=error, errors=errors, form={"grade": grade, "credit_line": credit_line, "reason": reason}
        )
        return page(request, user, "console/application.html", context, status_code=exc.status_code)
    return done(f"{PATH}/applications/{application_no}", "regraded")


# --- a bank: lift its breaker, suspend or reinstate it --------------------------------------------------


@router.post("/banks/{bank_id}/lift")
def lift(
    request: Request,
    session: DbSession,
    user: Posting,
    bank_id: int,
    reason: Annotated[str, Form(max_length=2000)] = "",
    back: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not user.may(Role.officer):
        raise Forbidden("Lifting a suspension needs the officer role", code="role_required")
    if len(reason.strip()) < 3:
        raise InvalidInput("A reason is needed", code="reason_required", details=[{"field": "reason"}])
    banks.get_bank(session, bank_id)
    breakers.lift(session, settings_of(request), user.actor, bank_id, reason.strip())
    return done(back if back.startswith(f"{PATH}/") else f"{PATH}/banks/{bank_id}", "lifted")


@router.post("/banks/{bank_id}/status")
def bank_status(
    request: Request,
    session: DbSession,
    user: Posting,
    bank_id: int,
    status: Annotated[str, Form(max_length=16)],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    if not user.may(Role.officer):
        raise Forbidden("Changing a bank's status needs the officer role", code="role_required")
    if status not in ("suspended", "active"):
        raise InvalidInput("Unknown status", code="validation_error")
    if len(reason.strip()) < 3:
        raise InvalidInput("A reason is needed", code="reason_required", details=[{"field": "reason"}])
    bank = banks.get_bank(session, bank_id)
    banks.set_status(session, user.actor, bank, BankStatus(status), reason.strip())
    return done(f"{PATH}/banks/{bank_id}", "suspended" if status == "suspended" else "reinstated")
