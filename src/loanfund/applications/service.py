"""Applications: submission, eligibility and evaluation, officer overrides, bank decisions.

Every state change goes through one function here that checks the transition is legal and writes an
audit record in the caller's transaction:

    (submit) ─┬─> ineligible ──(override, score_below_threshold only)──┐
              └─> pending_bank <───────────────────────────────────────┘
                  pending_bank ─> approved ─> lent   (mark_lent, by the loans domain)
                  pending_bank ─> rejected
"""

from __future__ import annotations

import secrets
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.applications import repository
from loanfund.applications.evaluation import evaluate
from loanfund.applications.models import Application, ApplicationStatus, IneligibleReason
from loanfund.applications.schemas import ApplicationCreate, LoanSummary
from loanfund.audit.service import Actor, record, snapshot
from loanfund.banks import repository as bank_repository
from loanfund.banks.models import BankStatus
from loanfund.core.auth import Principal
from loanfund.core.config import Settings
from loanfund.core.db import utcnow
from loanfund.core.errors import Conflict, InvalidInput, NotFound, field_error
from loanfund.core.money import to_fen, yuan_str, yuan_text
from loanfund.core.security import hash_secret, new_secret, same
from loanfund.enterprises import repository as enterprise_repository
from loanfund.enterprises import service as enterprise_service
from loanfund.enterprises.credit_code import checksum_ok
from loanfund.enterprises.models import Enterprise
from loanfund.loans.models import Loan
from loanfund.rates.service import credit_line_for, max_rate_on
from loanfund.webhooks import events as webhook_events

_RATE_PLACES = Decimal("0.0001")
_FIELDS = [
    "application_no",
    "status",
    "ineligible_reason",
    "credit_code",
    "enterprise_id",
    "bank_id",
    "requested_amount_fen",
    "term_months",
    "application_date",
    "score",
    "computed_grade",
    "computed_line_fen",
    "grade",
    "credit_line_fen",
    "line_note",
    "override_reason",
    "decision_date",
    "approved_amount_fen",
    "approved_term_months",
    "approved_rate_pct",
    "rejection_reason",
]
_NEXT: dict[ApplicationStatus, set[ApplicationStatus]] = {
    ApplicationStatus.ineligible: {ApplicationStatus.pending_bank},
    ApplicationStatus.pending_bank: {ApplicationStatus.approved, ApplicationStatus.rejected},
    ApplicationStatus.approved: {ApplicationStatus.lent},
    ApplicationStatus.rejected: set(),
    ApplicationStatus.lent: set(),
}


def application_number(application_id: int, day: date) -> str:
    """`KV` + the year + the row id, zero-padded: unique because the row id is."""
    return f"KV{day.year:04d}{application_id:06d}"


def token_hash(settings: Settings, token: str) -> str:
    return hash_secret(settings.secret_key.get_secret_value(), token)


def _not_found() -> NotFound:
    return NotFound("No such application", code="application_not_found")


def _state_error(app: Application, action: str) -> Conflict:
    return Conflict(
        f"Application {app.application_no} is {app.status.value}; it cannot be {action}",
        code="application_state_invalid",
        details={"status": app.status.value},
    )


def _move(app: Application, to: ApplicationStatus, action: str) -> None:
    if to not in _NEXT[app.status]:
        raise _state_error(app, action)
    app.status = to


# --- submission and evaluation -------------------------------------------------------------------


def submit_application(
    session: Session, settings: Settings, data: ApplicationCreate, *, today: date, token: str | None = None
) -> tuple[Application, str]:
    """Take an application and evaluate it at once. Returns it with its status token (shown once): a new
    random one, or `token` (an idempotent request's, derived from its key: `core.idempotency.Sealed`).

    An enterprise missing from the registry, or not a registered tech enterprise, is taken but marked
    ineligible; so is one whose score is below the lowest grade band.
    """
    if data.term_months > settings.max_term_months:
        raise field_error(
            "term_too_long", f"The term may be at most {settings.max_term_months} months", "term_months"
        )
    bank = bank_repository.by_code(session, data.bank_code)
    if bank is None:
        raise field_error("bank_unknown", f"No partner bank {data.bank_code}", "bank_code")
    if bank.status != BankStatus.active:
        raise Conflict(
            f"Partner bank {bank.code} is not taking applications",
            code="bank_suspended",
            details=[{"field": "bank_code", "message": "the bank is suspended"}],
        )
    ent = enterprise_repository.by_code(session, data.credit_code)
    if ent is None and not checksum_ok(data.credit_code):
        # as in the registry, where only an officer's audited override admits such a code
        raise field_error(
            "credit_code_checksum_failed",
            f"credit_code {data.credit_code} fails its check character (GB 32100-2015)",
            "credit_code",
        )
    token = token or new_secret("lft")
    ind = data.indicators
    app = Application(
        application_no=f"~{secrets.token_hex(8)}",  # provisional: the number derives from the row id
        status_token_hash=token_hash(settings, token),
        application_date=today,
        status=ApplicationStatus.pending_bank,
        credit_code=data.credit_code,
        enterprise=ent,
        bank=bank,
        contact_name=data.contact.name,
        contact_phone=data.contact.phone,
        contact_email=data.contact.email,
        requested_amount_fen=to_fen(data.requested_amount),
        term_months=data.term_months,
        invention_patents=ind.invention_patents,
        utility_model_patents=ind.utility_model_patents,
        software_copyrights=ind.software_copyrights,
        rd_spending_fen=to_fen(ind.rd_spending),
        revenue_fen=to_fen(ind.revenue),
        rd_staff=ind.rd_staff,
        total_staff=ind.total_staff,
        senior_talent=ind.senior_talent,
        high_tech_certificate=ind.high_tech_certificate,
    )
    if ent is None:
        _ineligible(app, IneligibleReason.enterprise_not_in_registry)
    elif not ent.is_registered_tech:
        _ineligible(app, IneligibleReason.enterprise_not_registered_tech)
    else:
        _evaluate(session, settings, app)
    session.add(app)
    session.flush()
    app.application_no = application_number(app.id, today)
    session.flush()
    actor = Actor(kind="enterprise", id=ent.id if ent else None, name=f"enterprise:{data.credit_code}")
    record(session, actor, "application.submit", "application", app.application_no, after=_snap(app))
    if ent is not None and app.grade is not None:
        enterprise_service.set_grade(session, actor, ent, app.grade, f"application {app.application_no}")
    if app.status == ApplicationStatus.pending_bank:
        webhook_events.application_routed(session, app)
    return app, token


def _ineligible(app: Application, reason: IneligibleReason) -> None:
    app.status = ApplicationStatus.ineligible
    app.ineligible_reason = reason


def _evaluate(session: Session, settings: Settings, app: Application) -> None:
    result = evaluate(app.indicators, settings.evaluation_weights, settings.grade_bands)
    app.evaluated_at = utcnow()
    app.score = result.score
    app.breakdown = [c.as_json() for c in result.contributions]
    app.computed_grade = app.grade = result.grade
    if result.grade is None:
        app.computed_line_fen = app.credit_line_fen = None
        _ineligible(app, IneligibleReason.score_below_threshold)
        return
    line = credit_line_for(session, result.grade, app.application_date)
    app.computed_line_fen = app.credit_line_fen = line
    app.status = ApplicationStatus.pending_bank
    app.ineligible_reason = None
    _note_line(app)


def _note_line(app: Application) -> None:
    """Record why a request above the credit line in force cannot all be approved (and clear the note
    once it fits, e.g. after an officer raised the line)."""
    line = app.credit_line_fen
    if line is None or app.requested_amount_fen <= line:
        app.line_note = None
        return
    app.line_note = (
        f"The requested {yuan_text(app.requested_amount_fen)} is above the credit line of "
        f"{yuan_text(line)} (grade {app.grade}); a bank may approve at most {yuan_text(line)}"
    )


def _snap(app: Application) -> dict[str, Any]:
    return snapshot(app, _FIELDS)


# --- reading -------------------------------------------------------------------------------------


def get_with_token(
    session: Session, settings: Settings, application_no: str, token: str
) -> Application | None:
    """The application if `token` is its status token; None for an unknown number or a wrong token alike."""
    app = repository.by_no(session, application_no)
    digest = token_hash(settings, token)
    if app is None or not same(app.status_token_hash, digest):
        return None
    return app


def reissue_status_token(
    session: Session,
    settings: Settings,
    actor: Actor,
    app: Application,
    *,
    reason: str,
    token: str | None = None,
) -> str:
    """A new status token for an applicant who lost theirs (shown once; `token` if the caller derived
    it, see `core.idempotency.Sealed`); the previous one stops working at once. Audited with the
    officer's reason (how the applicant was identified), without either token."""
    token = token or new_secret("lft")
    app.status_token_hash = token_hash(settings, token)
    session.flush()
    record(
        session,
        actor,
        "application.status_token_reissue",
        "application",
        app.application_no,
        after={"application_no": app.application_no, "status": app.status.value},
        reason=reason,
    )
    return token


def get_readable(
    session: Session, principal: Principal, application_no: str, *, for_update: bool = False
) -> Application:
    app = repository.get_readable(session, principal, application_no, for_update=for_update)
    if app is None:
        raise _not_found()
    return app


def loan_summary(session: Session, application_id: int) -> LoanSummary | None:
    """The state of the loan made from this application, for the applicant's status page."""
    loan = session.scalar(select(Loan).where(Loan.application_id == application_id))
    if loan is None:
        return None
    return LoanSummary(
        bank_loan_ref=loan.bank_loan_ref,
        state=loan.state.value,
        amount=yuan_str(loan.contract_amount_fen),
        disbursed=yuan_str(loan.disbursed_fen),
        outstanding_principal=yuan_str(loan.outstanding_fen),
        days_past_due=loan.days_past_due,
        start_date=loan.start_date,
        maturity_date=loan.maturity_date,
        first_disbursed_on=loan.first_disbursed_on,
        settled_on=loan.settled_on,
    )


# --- officer override ----------------------------------------------------------------------------


def override_evaluation(
    session: Session,
    actor: Actor,
    app: Application,
    *,
    grade: str | None,
    credit_line: Decimal | None,
    reason: str,
) -> Application:
    """Put a different grade and/or credit line in force, with a reason. Allowed while the application
    waits for the bank, or when it was found ineligible only for its score (a grade then makes it
    eligible). The computed grade and line stay on record."""
    if grade is None and credit_line is None:
        raise InvalidInput(
            "Give a grade, a credit line or both",
            code="override_empty",
            details=[
                {"field": "grade", "message": "grade or credit_line is required"},
                {"field": "credit_line", "message": "grade or credit_line is required"},
            ],
        )
    if app.status == ApplicationStatus.ineligible:
        if app.ineligible_reason != IneligibleReason.score_below_threshold:
            raise Conflict(
                f"Application {app.application_no} is ineligible ({app.ineligible_reason}); "
                "only a score below the threshold can be overridden",
                code="application_state_invalid",
                details={"status": app.status.value, "ineligible_reason": app.ineligible_reason},
            )
        if grade is None:
            raise field_error("grade_required", "An ineligible application needs a grade", "grade")
    elif app.status != ApplicationStatus.pending_bank:
        raise _state_error(app, "re-graded")
    before = _snap(app)
    if grade is not None:
        app.grade = grade
    if credit_line is not None:
        app.credit_line_fen = to_fen(credit_line)
    elif grade is not None:
        app.credit_line_fen = credit_line_for(session, grade, app.application_date)
    routed = app.status == ApplicationStatus.ineligible
    if routed:
        _move(app, ApplicationStatus.pending_bank, "re-graded")
        app.ineligible_reason = None
    _note_line(app)
    app.overridden_at = utcnow()
    app.override_reason = reason
    session.flush()
    record(
        session,
        actor,
        "application.override",
        "application",
        app.application_no,
        before=before,
        after=_snap(app),
        reason=reason,
    )
    if app.grade is not None and app.enterprise_id is not None:
        ent = session.get(Enterprise, app.enterprise_id)
        assert ent is not None
        enterprise_service.set_grade(session, actor, ent, app.grade, f"application {app.application_no}")
    if routed:
        webhook_events.application_routed(session, app)
    return app


# --- bank decisions ------------------------------------------------------------------------------


def approve(
    session: Session,
    settings: Settings,
    actor: Actor,
    app: Application,
    *,
    amount: Decimal,
    term_months: int,
    annual_rate_pct: Decimal,
    today: date,
) -> Application:
    """The bank approves: amount ≤ the credit line, term ≤ the maximum, rate ≤ LPR in force + the cap."""
    if app.status != ApplicationStatus.pending_bank:
        raise _state_error(app, "approved")
    if app.bank.status != BankStatus.active:
        raise Conflict(f"Partner bank {app.bank.code} is suspended", code="bank_suspended")
    if term_months > settings.max_term_months:
        raise field_error(
            "term_too_long", f"The term may be at most {settings.max_term_months} months", "term_months"
        )
    amount_fen = to_fen(amount)
    assert app.credit_line_fen is not None  # pending_bank always has a line
    if amount_fen > app.credit_line_fen:
        raise field_error(
            "amount_exceeds_credit_line",
            f"The amount exceeds the credit line of {yuan_text(app.credit_line_fen)}",
            "amount",
            credit_line=yuan_str(app.credit_line_fen),
        )
    cap = max_rate_on(session, settings, today)
    if annual_rate_pct > cap:
        raise field_error(
            "rate_above_cap",
            f"The rate exceeds the cap of {cap:.4f}% (one-year LPR + {settings.rate_cap_bp} bp) on {today}",
            "annual_rate_pct",
            max_rate_pct=f"{cap:.4f}",
        )
    before = _snap(app)
    _move(app, ApplicationStatus.approved, "approved")
    app.decided_at = utcnow()
    app.decision_date = today
    app.approved_amount_fen = amount_fen
    app.approved_term_months = term_months
    app.approved_rate_pct = annual_rate_pct.quantize(_RATE_PLACES)
    session.flush()
    record(
        session,
        actor,
        "application.approve",
        "application",
        app.application_no,
        before=before,
        after=_snap(app),
    )
    return app


def reject(session: Session, actor: Actor, app: Application, *, reason: str, today: date) -> Application:
    if app.status != ApplicationStatus.pending_bank:
        raise _state_error(app, "rejected")
    before = _snap(app)
    _move(app, ApplicationStatus.rejected, "rejected")
    app.decided_at = utcnow()
    app.decision_date = today
    app.rejection_reason = reason
    session.flush()
    record(
        session,
        actor,
        "application.reject",
        "application",
        app.application_no,
        before=before,
        after=_snap(app),
        reason=reason,
    )
    return app


# --- for the loans domain ------------------------------------------------------------------------


def get_approved_for_bank(session: Session, bank_id: int, application_no: str) -> Application:
    """The approved application `application_no` routed to `bank_id`, locked for the rest of the
    transaction. Another bank's (or an unknown) application → 404; one not approved (or already lent) →
    409 `application_state_invalid`."""
    app = repository.for_bank(session, bank_id, application_no, for_update=True)
    if app is None:
        raise _not_found()
    if app.status != ApplicationStatus.approved:
        raise _state_error(app, "lent against")
    return app


def mark_lent(session: Session, actor: Actor, application: Application, loan_id: int) -> Application:
    """Record that loan `loan_id` was registered from this approved application."""
    before = _snap(application)
    _move(application, ApplicationStatus.lent, "lent against")
    session.flush()
    record(
        session,
        actor,
        "application.lent",
        "application",
        application.application_no,
        before=before,
        after={**_snap(application), "loan_id": loan_id},
    )
    return application
