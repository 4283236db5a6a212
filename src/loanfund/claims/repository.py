"""Queries on claims and recoveries. Scoping by the caller happens here: a bank reads only its own
claims (another bank's is simply not found)."""

from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from loanfund.claims.models import Claim, ClaimState, Recovery, RecoveryKind
from loanfund.core.auth import Principal


def readable(principal: Principal) -> Select[Claim]:
    """Claims the caller may see: all for bureau staff, only its own for a bank."""
    stmt = select(Claim)
    if principal.is_bank:
        stmt = stmt.where(Claim.bank_id == principal.bank_id)
    return stmt


def get_readable(
    session: Session, principal: Principal, claim_id: int, *, lock: bool = False
) -> Claim | None:
    stmt = readable(principal).where(Claim.id == claim_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def list_readable(
    session: Session,
    principal: Principal,
    *,
    state: ClaimState | None,
    bank_id: int | None,
    after_id: int | None,
    limit: int,
    funded: bool | None = None,
) -> list[Claim]:
    stmt = readable(principal).order_by(Claim.id).limit(limit)
    if state is not None:
        stmt = stmt.where(Claim.state == state)
    if funded is not None:  # approved claims with (or without) their whole amount reserved
        covered = Claim.reserved_fen >= Claim.approved_fen
        stmt = stmt.where(Claim.state == ClaimState.approved, covered if funded else ~covered)
    if bank_id is not None:
        stmt = stmt.where(Claim.bank_id == bank_id)
    if after_id is not None:
        stmt = stmt.where(Claim.id > after_id)
    return list(session.scalars(stmt))


def open_claim_of_loan(session: Session, loan_id: int) -> Claim | None:
    """The loan's claim that is not rejected (there is at most one)."""
    return session.scalar(select(Claim).where(Claim.loan_id == loan_id, Claim.state != ClaimState.rejected))


def recoveries_of(session: Session, claim_id: int) -> list[Recovery]:
    return list(session.scalars(select(Recovery).where(Recovery.claim_id == claim_id).order_by(Recovery.id)))


def recovery_by_ref(session: Session, bank_id: int, bank_ref: str) -> Recovery | None:
    return session.scalar(select(Recovery).where(Recovery.bank_id == bank_id, Recovery.bank_ref == bank_ref))


def receivable_fen(session: Session, claim_id: int) -> int:
    """The fund's share of this claim's recoveries not yet remitted."""
    rows = session.execute(
        select(Recovery.kind, func.coalesce(func.sum(Recovery.fund_share_fen), 0))
        .where(Recovery.claim_id == claim_id)
        .group_by(Recovery.kind)
    )
    totals = {kind: int(total) for kind, total in rows}
    return totals.get(RecoveryKind.recovery, 0) - totals.get(RecoveryKind.remittance, 0)
