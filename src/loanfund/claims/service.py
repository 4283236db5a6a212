"""Compensation claims and recoveries. Every change goes through one function here that checks the
workflow and writes the audit record; money moves only through the fund's ledger service.

    submitted ──approve (officer or approver; may reduce, with a reason)──▶ approved ──pay──▶ paid
        └──────────reject (with a reason; releases any reservation)──────────┴──▶ rejected

Approval reserves the approved amount when the fund's available cash covers it (a pending transfer);
if it does not, the claim is approved unfunded and the payout reserves and pays in one step — or is
refused with `fund_insufficient`. The payout needs an approver who did not review the claim
(maker-checker). Paying makes the loan `compensated`; the bank then reports recoveries, of which the
fund's share (the share it paid) becomes a receivable until the bank remits it; closing collection
writes the loan off.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.orm import Session

from loanfund import rules
from loanfund.audit.service import Actor, record, snapshot
from loanfund.banks.models import Bank
from loanfund.claims import repository
from loanfund.claims.models import Claim, ClaimState, Recovery, RecoveryKind
from loanfund.core.auth import Principal
from loanfund.core.config import Settings
from loanfund.core.errors import Conflict, Forbidden, NotFound, field_error
from loanfund.core.money import yuan_text
from loanfund.fund import breakers
from loanfund.fund import service as fund_service
from loanfund.fund.exceptions import FundInsufficient
from loanfund.loans import service as loan_service
from loanfund.loans.models import Loan
from loanfund.loans.state import LoanState
from loanfund.webhooks import events as webhook_events

REFERENCE = "claim"
_FIELDS = [
    "state",
    "principal_fen",
    "claimed_fen",
    "approved_fen",
    "reserved_fen",
    "paid_fen",
    "reviewed_by",
    "paid_by",
    "early_default",
    "review_note",
]


def _state_error(claim: Claim, action: str) -> Conflict:
    return Conflict(f"A {claim.state.value} claim cannot be {action}", code="claim_state_invalid")


# --- reading ------------------------------------------------------------------------------------------


def get_readable(session: Session, principal: Principal, claim_id: int, *, lock: bool = False) -> Claim:
    claim = repository.get_readable(session, principal, claim_id, lock=lock)
    if claim is None:
        raise NotFound("No such claim", code="claim_not_found")
    return claim


# --- workflow -----------------------------------------------------------------------------------------


def file_claim(
    session: Session,
    settings: Settings,
    actor: Actor,
    bank: Bank,
    loan: Loan,
    *,
    principal_fen: int,
    day: date,
) -> Claim:
    if loan.bank_id != bank.id:
        raise NotFound("No such loan", code="loan_not_found")
    if loan.state is not LoanState.non_performing:
        raise Conflict(
            f"Only a non-performing loan can be claimed; this one is {loan.state.value}",
            code="loan_not_non_performing",
        )
    assert loan.npl_since is not None
    deadline = loan.npl_since + timedelta(days=settings.claim_window_days)
    if day > deadline:
        raise Conflict(
            f"The filing window closed on {deadline} ({settings.claim_window_days} days after default)",
            code="claim_window_expired",
        )
    if principal_fen > loan.outstanding_fen:
        raise field_error(
            "claim_principal_exceeds_outstanding",
            f"The loan's outstanding principal is {yuan_text(loan.outstanding_fen)}",
            "principal_at_default",
        )
    existing = repository.open_claim_of_loan(session, loan.id)
    if existing is not None:
        raise Conflict("The loan already has a claim", code="claim_exists", details={"claim_id": existing.id})
    claim = Claim(
        bank_id=bank.id,
        loan_id=loan.id,
        state=ClaimState.submitted,
        principal_fen=principal_fen,
        fund_share=bank.fund_share,
        claimed_fen=rules.compensation(principal_fen, bank.fund_share),
        filed_on=day,
        early_default=loan.early_default,
    )
    session.add(claim)
    session.flush()
    record(
        session,
        actor,
        "claim.file",
        "claim",
        claim.id,
        after={**snapshot(claim, _FIELDS), "loan_id": loan.id},
    )
    return claim


def approve(
    session: Session,
    settings: Settings,
    actor: Actor,
    claim: Claim,
    *,
    reviewer_id: int,
    amount_fen: int | None,
    reason: str | None,
    day: date,
    review_note: str | None = None,
) -> Claim:
    """Approve a submitted claim, in full or reduced (with a reason); an early default's approval needs
    the reviewer's note on why the fund pays for a loan that failed so soon after it was lent."""
    if claim.state is not ClaimState.submitted:
        raise _state_error(claim, "approved")
    if claim.early_default and not (review_note and review_note.strip()):
        raise field_error(
            "early_default_review_required",
            "The loan became non-performing within the early-default window of its first disbursement: "
            "approving its claim needs a review note",
            "review_note",
        )
    amount = claim.claimed_fen if amount_fen is None else amount_fen
    if amount > claim.claimed_fen:
        raise field_error(
            "claim_amount_exceeds_share",
            f"At most the fund's share, {yuan_text(claim.claimed_fen)}, can be approved",
            "amount",
        )
    if amount < claim.claimed_fen and not reason:
        raise field_error("reduction_reason_required", "A reduced approval needs a reason", "reason")
    before = snapshot(claim, _FIELDS)
    fund_service.ensure_bank_accounts(session, actor, claim.bank_id)
    try:
        with session.begin_nested():
            fund_service.reserve(session, actor, amount, day, REFERENCE, str(claim.id))
        claim.reserved_fen = amount
    except FundInsufficient:
        claim.reserved_fen = 0  # approved unfunded: the payout reserves when the money is there
    claim.state = ClaimState.approved
    claim.approved_fen = amount
    claim.reduction_reason = reason if amount < claim.claimed_fen else None
    claim.reviewed_by = reviewer_id
    claim.reviewed_on = day
    claim.review_note = review_note
    session.flush()
    record(
        session,
        actor,
        "claim.approve",
        "claim",
        claim.id,
        before=before,
        after=snapshot(claim, _FIELDS),
        reason=reason,
    )
    webhook_events.claim_decided(session, claim)
    return claim


def reject(
    session: Session, actor: Actor, claim: Claim, *, reviewer_id: int, reason: str, day: date
) -> Claim:
    if claim.state not in (ClaimState.submitted, ClaimState.approved):
        raise _state_error(claim, "rejected")
    before = snapshot(claim, _FIELDS)
    if claim.reserved_fen:
        fund_service.release(session, actor, claim.reserved_fen, day, REFERENCE, str(claim.id))
        claim.reserved_fen = 0
    claim.state = ClaimState.rejected
    claim.rejection_reason = reason
    claim.reviewed_by = reviewer_id
    claim.reviewed_on = day
    session.flush()
    record(
        session,
        actor,
        "claim.reject",
        "claim",
        claim.id,
        before=before,
        after=snapshot(claim, _FIELDS),
        reason=reason,
    )
    webhook_events.claim_decided(session, claim)
    return claim


def pay(
    session: Session, settings: Settings, actor: Actor, claim: Claim, *, payer_id: int, day: date
) -> Claim:
    if claim.state is not ClaimState.approved:
        raise _state_error(claim, "paid")
    if claim.reviewed_by == payer_id:
        raise Forbidden("The reviewer of a claim cannot also confirm its payout", code="maker_checker")
    assert claim.approved_fen is not None
    before = snapshot(claim, _FIELDS)
    missing = claim.approved_fen - claim.reserved_fen
    if missing > 0:  # approved while the fund could not cover it: reserve now, or refuse
        fund_service.reserve(session, actor, missing, day, REFERENCE, str(claim.id))
    fund_service.pay_reserved(
        session, actor, claim.approved_fen, claim.bank_id, day, REFERENCE, str(claim.id)
    )
    claim.reserved_fen = 0
    claim.state = ClaimState.paid
    claim.paid_fen = claim.approved_fen
    claim.paid_by = payer_id
    claim.paid_on = day
    session.flush()
    record(session, actor, "claim.pay", "claim", claim.id, before=before, after=snapshot(claim, _FIELDS))
    webhook_events.claim_decided(session, claim)
    loan = session.get(Loan, claim.loan_id)
    assert loan is not None
    loan_service.transition(session, actor, loan, LoanState.compensated, f"claim {claim.id} paid", day)
    breakers.evaluate_bank(session, settings, actor, claim.bank_id)
    breakers.evaluate_programme(session, settings, actor, day)
    return claim


def _paid_share(claim: Claim, net_fen: int) -> int:
    """The fund's share of a net recovery (`rules.recovery_share`)."""
    assert claim.paid_fen is not None
    return rules.recovery_share(net_fen, claim.paid_fen, claim.principal_fen)


def _check_ref(session: Session, bank_id: int, bank_ref: str) -> None:
    existing = repository.recovery_by_ref(session, bank_id, bank_ref)
    if existing is not None:
        raise Conflict(
            f"{bank_ref} is already recorded", code="bank_ref_taken", details={"recovery_id": existing.id}
        )


def _check_collecting(claim: Claim) -> None:
    if claim.state is not ClaimState.paid or claim.collection_closed_on is not None:
        raise Conflict(
            "Recoveries are reported on a paid claim whose collection is open", code="claim_state_invalid"
        )


def _check_after_payout(claim: Claim, day: date, today: date) -> None:
    """What happens after compensation is dated between the payout and today."""
    if day > today:
        raise field_error("date_in_future", f"{day} is in the future (today is {today})", "date")
    assert claim.paid_on is not None
    if day < claim.paid_on:
        raise field_error(
            "date_before_payout", f"{day} is before the claim's payout on {claim.paid_on}", "date"
        )


def report_recovery(
    session: Session,
    actor: Actor,
    claim: Claim,
    *,
    bank_ref: str,
    gross_fen: int,
    costs_fen: int,
    day: date,
    today: date,
) -> Recovery:
    """Money the bank collected on `day` (on or after the payout, not in the future)."""
    _check_collecting(claim)
    _check_after_payout(claim, day, today)
    if costs_fen > gross_fen:
        raise field_error(
            "costs_exceed_recovery", "Collection costs cannot exceed the amount recovered", "costs"
        )
    _check_ref(session, claim.bank_id, bank_ref)
    share = _paid_share(claim, gross_fen - costs_fen)
    rec = Recovery(
        claim_id=claim.id,
        bank_id=claim.bank_id,
        bank_ref=bank_ref,
        kind=RecoveryKind.recovery,
        reported_on=day,
        gross_fen=gross_fen,
        costs_fen=costs_fen,
        fund_share_fen=share,
    )
    session.add(rec)
    session.flush()
    if share:
        fund_service.recognise_recovery_receivable(
            session, actor, share, claim.bank_id, day, REFERENCE, str(claim.id)
        )
    record(
        session,
        actor,
        "claim.recovery",
        "claim",
        claim.id,
        after={
            "recovery_id": rec.id,
            "gross_fen": gross_fen,
            "costs_fen": costs_fen,
            "fund_share_fen": share,
        },
    )
    return rec


def remit(
    session: Session, actor: Actor, claim: Claim, *, bank_ref: str, amount_fen: int, day: date, today: date
) -> Recovery:
    """The fund's share of recoveries passed on by the bank on `day` (on or after the payout, not in the
    future)."""
    if claim.state is not ClaimState.paid:
        raise _state_error(claim, "remitted on")
    _check_after_payout(claim, day, today)
    owed = repository.receivable_fen(session, claim.id)
    if amount_fen > owed:
        raise Conflict(
            f"The bank owes the fund {yuan_text(owed)} on this claim", code="remittance_exceeds_receivable"
        )
    _check_ref(session, claim.bank_id, bank_ref)
    rec = Recovery(
        claim_id=claim.id,
        bank_id=claim.bank_id,
        bank_ref=bank_ref,
        kind=RecoveryKind.remittance,
        reported_on=day,
        fund_share_fen=amount_fen,
    )
    session.add(rec)
    session.flush()
    fund_service.settle_recovery(session, actor, amount_fen, claim.bank_id, day, REFERENCE, str(claim.id))
    record(
        session,
        actor,
        "claim.remittance",
        "claim",
        claim.id,
        after={"recovery_id": rec.id, "amount_fen": amount_fen},
    )
    return rec


def close_collection(
    session: Session, settings: Settings, actor: Actor, claim: Claim, *, day: date, today: date
) -> Claim:
    _check_collecting(claim)
    _check_after_payout(claim, day, today)
    owed = repository.receivable_fen(session, claim.id)
    if owed:
        raise Conflict(
            f"The bank still owes the fund {yuan_text(owed)} of recoveries",
            code="recovery_receivable_outstanding",
        )
    loan = session.get(Loan, claim.loan_id)
    assert loan is not None
    loan_service.transition(
        session, actor, loan, LoanState.written_off, f"claim {claim.id}: collection closed", day
    )
    claim.collection_closed_on = day
    session.flush()
    record(session, actor, "claim.close_collection", "claim", claim.id, after={"collection_closed_on": day})
    breakers.evaluate_bank(session, settings, actor, claim.bank_id)
    return claim
