"""The fund's money movements and positions: what the claims and recoveries work builds on.

Two-phase payouts (like TigerBeetle's pending transfers): approving a claim `reserve`s cash for it
(available → reserved), rejecting it `release`s the reservation, paying it moves reserved cash to the bank
(`pay_reserved`). A reservation can be released or paid only up to what is reserved for the same
reference, so a claim can never be paid twice or out of another claim's reservation. Recoveries become a
receivable from the bank (`recognise_recovery_receivable`) and cash when the bank remits
(`settle_recovery`).

Every function posts one ledger transaction (checked, locked, audited by `ledger.post`) and only flushes.
On PostgreSQL, `ledger.post` locks the balance rows it touches, so reservations from any number of server
processes queue on `fund_cash:available` and can never overdraw it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from loanfund.audit.service import Actor
from loanfund.fund import chart, contributions, ledger
from loanfund.fund.exceptions import CannotReverseReversal, ReversalNotAllowed
from loanfund.fund.ledger import credit, debit, reserved_for
from loanfund.fund.models import LedgerTransaction, TransactionKind

__all__ = [
    "FundPosition",
    "compensation_paid_between",
    "ensure_bank_accounts",
    "fund_position",
    "lock_fund",
    "pay_reserved",
    "recognise_recovery_receivable",
    "record_interest",
    "release",
    "reserve",
    "reserved_for",
    "reverse_transaction",
    "settle_recovery",
]


def ensure_bank_accounts(session: Session, actor: Actor, bank_id: int) -> None:
    """Create a bank's compensation and recovery accounts now rather than on first use.

    Optional: postings create them anyway. Creating them early (e.g. when a bank is registered or a claim
    approved) keeps the first payout to a bank from waiting on another transaction's account insert.
    """
    for account in (chart.comp_paid, chart.recovery_receivable, chart.recovery_income):
        ledger.ensure_account(session, actor, account(bank_id))


# --- two-phase payouts ------------------------------------------------------------------------------


def reserve(
    session: Session,
    actor: Actor,
    amount_fen: int,
    value_date: date,
    reference_type: str,
    reference_id: str,
    *,
    memo: str | None = None,
) -> LedgerTransaction:
    """Earmark available cash for a reference (an approved claim). 409 `fund_insufficient` when the
    available balance is below the amount."""
    return ledger.post(
        session,
        actor,
        TransactionKind.reserve,
        value_date,
        [debit(chart.CASH_RESERVED, amount_fen), credit(chart.CASH_AVAILABLE, amount_fen)],
        memo=memo,
        reference_type=reference_type,
        reference_id=reference_id,
    )


def release(
    session: Session,
    actor: Actor,
    amount_fen: int,
    value_date: date,
    reference_type: str,
    reference_id: str,
    *,
    memo: str | None = None,
) -> LedgerTransaction:
    """Give reserved cash back to the available balance (a rejected or reduced claim). 409
    `reservation_exceeded` beyond what is reserved for the reference."""
    return ledger.post(
        session,
        actor,
        TransactionKind.release,
        value_date,
        [debit(chart.CASH_AVAILABLE, amount_fen), credit(chart.CASH_RESERVED, amount_fen)],
        memo=memo,
        reference_type=reference_type,
        reference_id=reference_id,
    )


def pay_reserved(
    session: Session,
    actor: Actor,
    amount_fen: int,
    bank_id: int,
    value_date: date,
    reference_type: str,
    reference_id: str,
    *,
    memo: str | None = None,
) -> LedgerTransaction:
    """Pay reserved cash to a bank as compensation: Dr comp_paid:bank:<id> / Cr fund_cash:reserved.
    The cash leaves the fund. 409 `reservation_exceeded` beyond what is reserved for the reference."""
    return ledger.post(
        session,
        actor,
        TransactionKind.compensation_payment,
        value_date,
        [debit(chart.comp_paid(bank_id), amount_fen), credit(chart.CASH_RESERVED, amount_fen)],
        memo=memo,
        reference_type=reference_type,
        reference_id=reference_id,
    )


# --- recoveries ---------------------------------------------------------------------------------------


def recognise_recovery_receivable(
    session: Session,
    actor: Actor,
    amount_fen: int,
    bank_id: int,
    value_date: date,
    reference_type: str,
    reference_id: str,
    *,
    memo: str | None = None,
) -> LedgerTransaction:
    """The fund's share of a recovery the bank reported, owed by the bank until remitted:
    Dr recovery_receivable:bank:<id> / Cr recovery_income:bank:<id>."""
    return ledger.post(
        session,
        actor,
        TransactionKind.recovery_recognised,
        value_date,
        [
            debit(chart.recovery_receivable(bank_id), amount_fen),
            credit(chart.recovery_income(bank_id), amount_fen),
        ],
        memo=memo,
        reference_type=reference_type,
        reference_id=reference_id,
    )


def settle_recovery(
    session: Session,
    actor: Actor,
    amount_fen: int,
    bank_id: int,
    value_date: date,
    reference_type: str,
    reference_id: str,
    *,
    memo: str | None = None,
) -> LedgerTransaction:
    """The bank remitted (part of) what it owes: Dr fund_cash:available / Cr recovery_receivable:bank:<id>.
    409 `negative_balance` when more is settled than the bank owes."""
    return ledger.post(
        session,
        actor,
        TransactionKind.recovery_settled,
        value_date,
        [debit(chart.CASH_AVAILABLE, amount_fen), credit(chart.recovery_receivable(bank_id), amount_fen)],
        memo=memo,
        reference_type=reference_type,
        reference_id=reference_id,
    )


def record_interest(
    session: Session, actor: Actor, amount_fen: int, value_date: date, *, memo: str | None = None
) -> LedgerTransaction:
    """Interest credited to the fund's account: Dr fund_cash:available / Cr interest_income."""
    return ledger.post(
        session,
        actor,
        TransactionKind.interest,
        value_date,
        [debit(chart.CASH_AVAILABLE, amount_fen), credit(chart.INTEREST_INCOME, amount_fen)],
        memo=memo,
    )


# --- reversal through the API ----------------------------------------------------------------------

# Transactions posted for a reference belong to that reference's workflow, which must update its own
# records when they are reversed. Only reference types listed here may be reversed through
# `POST /fund/transactions/{id}/reverse`; the others (claims, recoveries) reverse through their workflow.
ReversalHook = Callable[[Session, Actor, LedgerTransaction, LedgerTransaction], None]
REVERSAL_HOOKS: dict[str, ReversalHook] = {
    contributions.REFERENCE_TYPE: contributions.on_reversed,
}


def reverse_transaction(
    session: Session, actor: Actor, transaction_id: int, reason: str, *, value_date: date | None = None
) -> LedgerTransaction:
    """Reverse a transaction on an officer's request, and tell the workflow that owns it."""
    original = ledger.load_transaction(session, transaction_id)
    if original.reverses_id is not None:
        raise CannotReverseReversal(
            f"Transaction {transaction_id} is itself a reversal; post a new transaction instead"
        )
    hook = REVERSAL_HOOKS.get(original.reference_type) if original.reference_type else None
    if original.reference_type is not None and hook is None:
        raise ReversalNotAllowed(
            f"Transaction {transaction_id} belongs to {original.reference_type} {original.reference_id}; "
            "reverse it through that record",
            details={"reference_type": original.reference_type, "reference_id": original.reference_id},
        )
    with session.begin_nested():
        reversal = ledger.reverse(session, actor, transaction_id, reason, value_date=value_date)
        if hook is not None:
            hook(session, actor, original, reversal)
    return reversal


# --- positions --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FundPosition:
    """The fund at a value date (`as_of`), or now (`as_of` None, from the running totals). Fen."""

    as_of: date | None
    contributions_fen: dict[str, int]
    cash_available_fen: int
    reserved_fen: int
    interest_income_fen: int
    compensation_paid_fen: int
    recoveries_recognised_fen: int
    recoveries_receivable_fen: int

    @property
    def fund_size_fen(self) -> int:
        """Capital contributed (city + district)."""
        return sum(self.contributions_fen.values())

    @property
    def balance_fen(self) -> int:
        """The fund's cash: available plus reserved."""
        return self.cash_available_fen + self.reserved_fen

    @property
    def available_fen(self) -> int:
        """Balance minus reserved."""
        return self.balance_fen - self.reserved_fen

    @property
    def recoveries_received_fen(self) -> int:
        return self.recoveries_recognised_fen - self.recoveries_receivable_fen


def _position(as_of: date | None, states: list[ledger.AccountState]) -> FundPosition:
    by_code = {s.account.code: s.balance_fen for s in states}
    by_category: dict[str, int] = {}
    for s in states:
        by_category[s.account.category] = by_category.get(s.account.category, 0) + s.balance_fen
    return FundPosition(
        as_of=as_of,
        contributions_fen={src: by_code.get(chart.contrib(src), 0) for src in ("city", "district")},
        cash_available_fen=by_code.get(chart.CASH_AVAILABLE, 0),
        reserved_fen=by_code.get(chart.CASH_RESERVED, 0),
        interest_income_fen=by_code.get(chart.INTEREST_INCOME, 0),
        compensation_paid_fen=by_category.get(chart.COMP_PAID, 0),
        recoveries_recognised_fen=by_category.get(chart.RECOVERY_INCOME, 0),
        recoveries_receivable_fen=by_category.get(chart.RECOVERY_RECEIVABLE, 0),
    )


def fund_position(session: Session, as_of: date | None = None) -> FundPosition:
    """The fund's position: now from the running totals, or at a value date from the entries."""
    return _position(as_of, ledger.account_states(session, as_of=as_of))


def lock_fund(session: Session) -> FundPosition:
    """Lock the fund's cash rows until the transaction ends and return the current position.

    For checks that must hold until commit (a leverage check before covering a new loan): any posting
    that moves the fund's cash waits for this transaction. Lock before posting in the same transaction.
    """
    ledger.lock_codes(session, ledger.FUND_CASH)
    return fund_position(session)


def compensation_paid_between(session: Session, start: date, end: date, *, bank_id: int | None = None) -> int:
    """Compensation paid (net of reversals) with value dates in [start, end], to one bank or to all."""
    return ledger.movement(session, chart.COMP_PAID, start, end, bank_id=bank_id)
