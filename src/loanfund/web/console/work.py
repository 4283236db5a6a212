"""Work queues and the pages where the work is done: a claim (approve, approve reduced, reject, pay; an
early default's approval with the reviewer's note), an application (re-grade, reissue the applicant's
status token), the programme's and a bank's breaker (lift), a bank's status (suspend, reinstate), its
contracts without an application (allow or not) and its closed months (reopen), an enterprise's grade.

Each action is a thin caller of the service function the API's route calls, with the same locking and
the same business date; a refusal (`LoanfundError`) rolls the request back and shows the page again with
the sentence for its code, beside the field it names. Approving and rejecting need the officer or
approver role, paying the approver role (and not the reviewer: maker-checker, shown before the click).
"""

from __future__ import annotations

import re
import secrets
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.applications import service as applications
from loanfund.applications.models import Application, ApplicationStatus, IneligibleReason
from loanfund.applications.schemas import StatusTokenReissue, StatusTokenReissued
from loanfund.banks import service as banks
from loanfund.banks.models import Bank, BankStatus
from loanfund.claims import repository as claim_repository
from loanfund.claims import service as claims
from loanfund.claims.models import Claim, ClaimState
from loanfund.core.clock import business_today
from loanfund.core.db import DbSession
from loanfund.core.errors import Forbidden, InvalidInput, LoanfundError
from loanfund.core.idempotency import Idempotency
from loanfund.core.money import to_fen
from loanfund.enterprises import service as enterprises
from loanfund.enterprises.models import Enterprise
from loanfund.fund import breakers
from loanfund.loans.models import Loan
from loanfund.reports import service as reports
from loanfund.staff.models import Role, Staff
from loanfund.status_reports import service as status_reports
from loanfund.status_reports.schemas import ReopeningCreate
from loanfund.web.messages import validation_errors
from loanfund.web.templating import gettext_for

from .auth import PATH, Posting, Reader, Staffer, settings_of
from .registers import bank_context, enterprise_context
from .render import done, errors_of, history_of, page

router = APIRouter(prefix=PATH, include_in_schema=False)
QUEUE_LIMIT = 100
_ALL = reports.Scope(None)
NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_IN_PROGRESS_WAIT_S = 10.0  # a double click's second post waits this long for the first one's answer


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


def _reason(text: str, field: str = "reason") -> str:
    """A reason the audit record keeps: at least 3 characters (the API's `Reason`)."""
    value = text.strip()
    if len(value) < 3:
        raise InvalidInput(
            "A reason is needed", code="reason_required", details=[{"field": field, "message": "too short"}]
        )
    return value


def _schema_refusal(request: Request, err: ValidationError) -> tuple[str, dict[str, str]]:
    """A form parsed into the API's schema and refused: the sentence on top and the ones per field."""
    gettext = gettext_for(request)
    errors = validation_errors(err, gettext, lambda loc: str(loc[-1]) if loc else "form")
    return errors_of(request, InvalidInput("invalid", code="validation_error"))[0], errors


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
    rows = breakers.listing(session)  # the programme's row first, then the banks'
    programme = rows[0][0]
    suspended = [b for b, _ in rows[1:] if b.state == breakers.BreakerState.suspended and not b.lifted]
    bank_rows = {b.id: b for b in session.scalars(select(Bank))}
    discrepancies = list(reports.discrepancies(session, _ALL, month_end=None, kind=None, stream=True).rows)
    # approved without funds: the API's `GET /claims?funded=false`, with each claim's shortfall as shown there
    unfunded_claims = claim_repository.list_readable(
        session,
        user.principal,
        state=None,
        bank_id=None,
        after_id=None,
        limit=len(approved) + 1,
        funded=False,
    )
    shortfall = {c.id: c.funding()[1] for c in unfunded_claims}
    unfunded = [r for r in approved if r["claim_id"] in shortfall]
    to_pay = [r for r in approved if r["claim_id"] not in shortfall]
    return {
        "to_review": submitted[:QUEUE_LIMIT],
        "to_pay": to_pay[:QUEUE_LIMIT],
        "unfunded": unfunded[:QUEUE_LIMIT],
        "shortfall": shortfall,
        "reviewed_by": reviewed,
        "reviewer_names": _staff_names(session, {v for v in reviewed.values() if v}),
        "regrade": regrade,
        "banks": bank_rows,
        "suspended": suspended,
        "programme": programme,
        "programme_stopped": programme.state is breakers.BreakerState.stopped,
        "suspended_banks": [b for b in bank_rows.values() if b.status == BankStatus.suspended],
        "discrepancies": discrepancies[-QUEUE_LIMIT:][::-1],
        "counts": {
            "to_review": len(submitted),
            "to_pay": len(to_pay),
            "unfunded": len(unfunded),
        },
        "errors": {},
        "error": None,
    }


@router.get("/work")
def work(request: Request, session: DbSession, user: Reader) -> Response:
    return page(request, user, "console/work.html", queues(session, user))


@router.post("/breakers/programme/lift")
def lift_programme(
    request: Request,
    session: DbSession,
    user: Posting,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Let new coverage start again after the programme-wide stop (`POST /fund/breakers/programme/lift`)."""
    if not user.may(Role.officer):
        raise Forbidden("Lifting the programme's stop needs the officer role", code="role_required")
    try:
        breakers.lift_programme(session, user.actor, _reason(reason))
    except LoanfundError as exc:
        session.rollback()
        context = queues(session, user)
        error, errors = errors_of(request, exc)
        context.update(error=error, errors={f"programme_{k}": v for k, v in errors.items()})
        return page(request, user, "console/work.html", context, status_code=exc.status_code)
    return done(f"{PATH}/work#breakers", "programme_lifted")


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
    funded, shortfall = claim.funding()
    return {
        "claim": claim,
        "funded": funded,
        "shortfall": shortfall,
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
    review_note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """`action` = approve | reject | pay, the submit button's value; an early default's approval carries
    the reviewer's `review_note` (the service refuses it without one)."""
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
                review_note=review_note.strip() or None,
            )
        elif action == "reject":
            claims.reject(session, user.actor, claim, reviewer_id=user.id, reason=_reason(reason), day=day)
        else:
            claims.pay(session, settings, user.actor, claim, payer_id=user.id, day=day)
    except LoanfundError as exc:
        session.rollback()
        context = claim_context(session, user, claim_id)
        error, errors = errors_of(request, exc)
        context.update(
            error=error,
            errors=errors,
            form={"amount": amount, "reason": reason, "review_note": review_note, "action": action},
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
        "may_reissue": user.may(Role.officer),
        "nonce": secrets.token_urlsafe(24),  # the reissue form's idempotency key
        "issued_token": None,
        "replayed": False,
        "reissue_superseded": False,
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
        why = _reason(reason)
        app = applications.get_readable(session, user.principal, application_no, for_update=True)
        applications.override_evaluation(
            session,
            user.actor,
            app,
            grade=grade or None,
            credit_line=_amount(credit_line, "credit_line"),
            reason=why,
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


@router.post("/applications/{application_no}/status-token")
def reissue_status_token(
    request: Request,
    session: DbSession,
    user: Posting,
    application_no: str,
    reason: Annotated[str, Form(max_length=2000)] = "",
    nonce: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """A new status token for an applicant who lost theirs (`POST /applications/{no}/status-token`),
    shown once in this answer — never in a redirect, a URL or a log — and never stored: the page is
    `no-store`, and the idempotency record keeps only the salt it is derived from.

    The form's nonce is the idempotency key (in this staff member's scope): a double submit waits for the
    first post and shows the same token, so whichever answer the browser keeps shows the token in force.
    A form posted again after a later reissue (the back button) would replay a token that no longer
    works: it is not shown; the officer is told to issue a new one."""
    if not user.may(Role.officer):
        raise Forbidden("Reissuing a status token needs the officer role", code="role_required")
    settings = settings_of(request)
    form = {"reissue_reason": reason}

    def refused(error: str | None, errors: dict[str, str], status_code: int) -> Response:
        session.rollback()
        context = application_context(session, user, application_no)
        context.update(error=error, errors={f"reissue_{k}": v for k, v in errors.items()}, form=form)
        return page(request, user, "console/application.html", context, status_code=status_code)

    try:
        body = StatusTokenReissue.model_validate({"reason": reason.strip()})
    except ValidationError as err:
        return refused(*_schema_refusal(request, err), status_code=422)
    key = nonce if NONCE.match(nonce) else secrets.token_urlsafe(24)
    idem = Idempotency(session, settings, None, f"console:{key}", "POST", request.url.path, staff_id=user.id)
    sealed = idem.sealed()
    assert sealed is not None

    def produce() -> StatusTokenReissued:
        app = applications.get_readable(session, user.principal, application_no, for_update=True)
        token = applications.reissue_status_token(
            session, settings, user.actor, app, reason=body.reason, token=sealed.issue("lft")
        )
        return StatusTokenReissued(application_no=app.application_no, status_token=token)

    try:
        answer = idem.run(body, 200, produce, sealed=sealed, wait_s=_IN_PROGRESS_WAIT_S)
    except LoanfundError as exc:
        return refused(*errors_of(request, exc), status_code=exc.status_code)
    payload = bytes(answer.body)
    if answer.status_code != 200:
        failure = orjson.loads(payload)["error"]
        refusal = LoanfundError(
            failure["message"],
            code=failure["code"],
            status_code=answer.status_code,
            details=failure["details"],
        )
        return refused(*errors_of(request, refusal), status_code=refusal.status_code)
    issued = StatusTokenReissued.model_validate_json(payload)
    context = application_context(session, user, application_no)
    current = context["app"].status_token_hash == applications.token_hash(settings, issued.status_token)
    if not current:  # a replay of a form whose token was replaced since: never show a dead token
        context.update(error=None, reissue_superseded=True)
        return page(request, user, "console/application.html", context, status_code=409)
    context.update(issued_token=issued.status_token, replayed="idempotent-replayed" in answer.headers)
    return page(
        request,
        user,
        "console/application.html",
        context,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


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
    why = _reason(reason)
    banks.get_bank(session, bank_id)
    breakers.lift(session, settings_of(request), user.actor, bank_id, why)
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
    why = _reason(reason)
    bank = banks.get_bank(session, bank_id)
    banks.set_status(session, user.actor, bank, BankStatus(status), why)
    return done(f"{PATH}/banks/{bank_id}", "suspended" if status == "suspended" else "reinstated")


@router.post("/banks/{bank_id}/contracts-without-application")
def contracts_without_application(
    request: Request,
    session: DbSession,
    user: Posting,
    bank_id: int,
    allow: Annotated[str, Form(pattern="^(yes|no)$")],
) -> Response:
    """Whether the bank may register contracts without an application (historical imports): the bank's
    terms, changed as `PATCH /banks/{id}` changes them (audited as `bank.update`)."""
    if not user.may(Role.officer):
        raise Forbidden("Changing a bank's terms needs the officer role", code="role_required")
    bank = banks.get_bank(session, bank_id)
    banks.update_bank(
        session,
        user.actor,
        bank,
        name=None,
        fund_share=None,
        lending_quota=None,
        clear_lending_quota=False,
        allow_contracts_without_application=allow == "yes",
    )
    return done(f"{PATH}/banks/{bank_id}", "imports_allowed" if allow == "yes" else "imports_refused")


@router.post("/banks/{bank_id}/reopenings")
def reopen_month(
    request: Request,
    session: DbSession,
    user: Posting,
    bank_id: int,
    month_end: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Reopen the bank's closed month, with a reason, so that late events can be posted (as
    `POST /status-reports/reopenings`)."""
    if not user.may(Role.officer):
        raise Forbidden("Reopening a month needs the officer role", code="role_required")
    settings = settings_of(request)
    form = {"reopen_month_end": month_end, "reopen_reason": reason}

    def refused(error: str | None, errors: dict[str, str], status_code: int) -> Response:
        session.rollback()
        context = bank_context(session, settings, user, bank_id)
        context.update(error=error, errors={f"reopen_{k}": v for k, v in errors.items()}, form=form)
        return page(request, user, "console/bank.html", context, status_code=status_code)

    try:
        body = ReopeningCreate.model_validate(
            {"bank_id": bank_id, "month_end": month_end.strip(), "reason": reason.strip()}
        )
    except ValidationError as err:
        return refused(*_schema_refusal(request, err), status_code=422)
    try:
        bank = banks.get_bank(session, bank_id)
        status_reports.reopen_month(session, settings, user.actor, user.id, bank, body.month_end, body.reason)
    except LoanfundError as exc:
        return refused(*errors_of(request, exc), status_code=exc.status_code)
    return done(f"{PATH}/banks/{bank_id}#reopenings", "reopened")


# --- an enterprise: its grade on record ---------------------------------------------------------------


@router.post("/enterprises/{credit_code}/grade")
def set_grade(
    request: Request,
    session: DbSession,
    user: Posting,
    credit_code: str,
    grade: Annotated[str, Form(max_length=1)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """The enterprise's knowledge-value grade on record (what a contract without an application is
    checked against), set by an officer with a reason (audited as `enterprise.grade`)."""
    if not user.may(Role.officer):
        raise Forbidden("Setting a grade needs the officer role", code="role_required")
    try:
        if grade not in ("A", "B", "C", "D", "E"):
            raise InvalidInput(
                "Choose a grade A–E", code="grade_invalid", details=[{"field": "grade", "message": "A–E"}]
            )
        why = _reason(reason)
        ent = enterprises.get_enterprise(session, credit_code)
        enterprises.set_grade(session, user.actor, ent, grade, why)
    except LoanfundError as exc:
        session.rollback()
        context = enterprise_context(session, credit_code)
        error, errors = errors_of(request, exc)
        context.update(error=error, errors=errors, form={"grade": grade, "reason": reason})
        return page(request, user, "console/enterprise.html", context, status_code=exc.status_code)
    return done(f"{PATH}/enterprises/{credit_code}", "graded")
