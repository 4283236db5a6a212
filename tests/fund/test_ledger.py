"""The ledger core and the fund's money movements, at service level."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.core.errors import InvalidInput, NotFound
from loanfund.fund import chart, contributions, ledger, service
from loanfund.fund.exceptions import (
    AlreadyReversed,
    CannotReverseReversal,
    DuplicateBudgetDocument,
    FundInsufficient,
    InvalidPosting,
    NegativeBalance,
    ReservationExceeded,
    ReversalNotAllowed,
    UnbalancedTransaction,
)
from loanfund.fund.ledger import credit, debit
from loanfund.fund.models import (
    AccountBalance,
    ContributionSource,
    LedgerAccount,
    LedgerEntry,
    LedgerImmutable,
    LedgerTransaction,
    TransactionKind,
)
from tests.factories import TEST_ACTOR as ACTOR

CITY, DISTRICT = ContributionSource.city, ContributionSource.district
D = date(2021, 6, 30)


def yuan(n: int) -> int:
    return n * 100


def contribute(session: Session, source: ContributionSource, amount: int, day: date, doc: str) -> int:
    c = contributions.record_contribution(
        session, ACTOR, source=source, amount_fen=amount, value_date=day, budget_doc_no=doc
    )
    return c.transaction_id


def test_domain_scenario(session: Session, bank_id: int) -> None:
    """City 4,000,000 + district 6,000,000; a 2,400,000 claim reserved and paid; 800,000 recovered."""
    contribute(session, CITY, yuan(4_000_000), date(2021, 3, 1), "渝财 2021-1")
    contribute(session, DISTRICT, yuan(6_000_000), date(2021, 4, 1), "黔财 2021-7")
    service.reserve(session, ACTOR, yuan(2_400_000), date(2021, 9, 1), "claim", "1")
    mid = service.fund_position(session)
    assert (mid.balance_fen, mid.reserved_fen, mid.available_fen) == (
        yuan(10_000_000),
        yuan(2_400_000),
        yuan(7_600_000),
    )
    service.pay_reserved(session, ACTOR, yuan(2_400_000), bank_id, date(2021, 9, 10), "claim", "1")
    service.recognise_recovery_receivable(
        session, ACTOR, yuan(800_000), bank_id, date(2021, 11, 1), "recovery", "1"
    )
    assert service.fund_position(session).balance_fen == yuan(7_600_000)  # not remitted yet
    service.settle_recovery(session, ACTOR, yuan(800_000), bank_id, date(2021, 11, 20), "recovery", "1")

    p = service.fund_position(session)
    assert p.balance_fen == yuan(8_400_000) == yuan(10_000_000 - 2_400_000 + 800_000)
    assert p.fund_size_fen == yuan(10_000_000)
    assert p.contributions_fen == {"city": yuan(4_000_000), "district": yuan(6_000_000)}
    assert (p.reserved_fen, p.available_fen) == (0, yuan(8_400_000))
    assert p.compensation_paid_fen == yuan(2_400_000)
    assert (p.recoveries_recognised_fen, p.recoveries_receivable_fen, p.recoveries_received_fen) == (
        yuan(800_000),
        0,
        yuan(800_000),
    )
    assert ledger.balance(session, chart.comp_paid(bank_id)) == yuan(2_400_000)
    assert service.compensation_paid_between(session, date(2021, 1, 1), date(2021, 12, 31)) == yuan(2_400_000)
    assert service.compensation_paid_between(session, date(2022, 1, 1), date(2022, 12, 31)) == 0

    r = ledger.reconcile(session)
    assert r.ok, r
    assert r.total_debits_fen == r.total_credits_fen
    # the same position recomputed from the entries
    assert service.fund_position(session, date(2099, 1, 1)).balance_fen == yuan(8_400_000)


def test_position_as_of_a_date(session: Session, bank_id: int) -> None:
    contribute(session, CITY, yuan(100), date(2021, 1, 10), "a")
    contribute(session, DISTRICT, yuan(150), date(2021, 2, 10), "b")
    service.reserve(session, ACTOR, yuan(50), date(2021, 3, 10), "claim", "9")
    service.pay_reserved(session, ACTOR, yuan(50), bank_id, date(2021, 4, 10), "claim", "9")

    def at(day: str) -> tuple[int, int, int, int]:
        p = service.fund_position(session, date.fromisoformat(day))
        return p.fund_size_fen, p.balance_fen, p.reserved_fen, p.available_fen

    assert at("2021-01-09") == (0, 0, 0, 0)
    assert at("2021-01-10") == (yuan(100), yuan(100), 0, yuan(100))
    assert at("2021-02-28") == (yuan(250), yuan(250), 0, yuan(250))
    assert at("2021-03-10") == (yuan(250), yuan(250), yuan(50), yuan(200))
    assert at("2021-04-10") == (yuan(250), yuan(200), 0, yuan(200))
    assert service.fund_position(session, date(2021, 2, 1)).contributions_fen == {
        "city": yuan(100),
        "district": 0,
    }


def test_unbalanced_and_malformed_postings_are_refused(session: Session) -> None:
    a, c = chart.CASH_AVAILABLE, chart.contrib("city")
    with pytest.raises(UnbalancedTransaction):
        ledger.post(session, ACTOR, TransactionKind.interest, D, [debit(a, 100), credit(c, 99)])
    with pytest.raises(InvalidPosting):
        ledger.post(session, ACTOR, TransactionKind.interest, D, [debit(a, 0), credit(c, 0)])
    with pytest.raises(InvalidPosting):
        ledger.post(session, ACTOR, TransactionKind.interest, D, [debit(a, -5), credit(c, -5)])
    with pytest.raises(InvalidPosting):
        ledger.post(session, ACTOR, TransactionKind.interest, D, [debit(a, 100)])
    with pytest.raises(InvalidPosting, match="not an account"):
        ledger.post(session, ACTOR, TransactionKind.interest, D, [debit(a, 1), credit("petty_cash", 1)])
    with pytest.raises(InvalidPosting):  # reserved cash moves only for a reference
        ledger.post(session, ACTOR, TransactionKind.reserve, D, [debit(chart.CASH_RESERVED, 1), credit(a, 1)])
    with pytest.raises(NotFound):  # an account for a bank that does not exist
        ledger.post(
            session, ACTOR, TransactionKind.interest, D, [debit(chart.comp_paid(999_999), 1), credit(a, 1)]
        )
    assert session.scalar(select(LedgerTransaction.id)) is None
    assert ledger.reconcile(session).ok


def test_no_negative_accounts(session: Session, bank_id: int) -> None:
    # cash can't go below zero: paying out of an empty fund is refused before anything is written
    with pytest.raises(FundInsufficient):
        service.reserve(session, ACTOR, 1, D, "claim", "1")
    contribute(session, CITY, yuan(10), D, "c1")
    with pytest.raises(FundInsufficient) as exc:
        service.reserve(session, ACTOR, yuan(10) + 1, D, "claim", "1")
    assert exc.value.status_code == 409
    service.reserve(session, ACTOR, yuan(10), D, "claim", "1")
    # a receivable cannot be over-settled
    service.recognise_recovery_receivable(session, ACTOR, 500, bank_id, D, "recovery", "1")
    with pytest.raises(NegativeBalance):
        service.settle_recovery(session, ACTOR, 501, bank_id, D, "recovery", "1")
    service.settle_recovery(session, ACTOR, 500, bank_id, D, "recovery", "1")
    p = service.fund_position(session)
    assert (p.balance_fen, p.reserved_fen, p.available_fen) == (yuan(10) + 500, yuan(10), 500)
    assert ledger.reconcile(session).ok


def test_reservations_are_tracked_per_reference(session: Session, bank_id: int) -> None:
    contribute(session, CITY, yuan(1000), D, "c1")
    service.reserve(session, ACTOR, yuan(300), D, "claim", "A")
    service.reserve(session, ACTOR, yuan(200), D, "claim", "B")
    assert service.reserved_for(session, "claim", "A") == yuan(300)
    # B cannot be paid out of A's reservation, nor paid twice
    with pytest.raises(ReservationExceeded):
        service.pay_reserved(session, ACTOR, yuan(201), bank_id, D, "claim", "B")
    service.pay_reserved(session, ACTOR, yuan(200), bank_id, D, "claim", "B")
    with pytest.raises(ReservationExceeded):
        service.pay_reserved(session, ACTOR, yuan(200), bank_id, D, "claim", "B")
    # A is reduced: pay part, release the rest
    service.pay_reserved(session, ACTOR, yuan(250), bank_id, D, "claim", "A")
    with pytest.raises(ReservationExceeded):
        service.release(session, ACTOR, yuan(51), D, "claim", "A")
    service.release(session, ACTOR, yuan(50), D, "claim", "A")
    assert service.reserved_for(session, "claim", "A") == 0
    p = service.fund_position(session)
    assert (p.balance_fen, p.reserved_fen, p.available_fen, p.compensation_paid_fen) == (
        yuan(550),
        0,
        yuan(550),
        yuan(450),
    )


def test_reversal_once_never_of_a_reversal(session: Session) -> None:
    tid = contribute(session, CITY, yuan(100), D, "c1")
    reversal = ledger.reverse(session, ACTOR, tid, "entered twice")
    assert reversal.reverses_id == tid
    assert reversal.kind == TransactionKind.reversal
    assert reversal.value_date == D
    assert reversal.reference_type == "contribution"
    assert service.fund_position(session).balance_fen == 0
    with pytest.raises(AlreadyReversed) as exc:
        ledger.reverse(session, ACTOR, tid, "again")
    assert exc.value.status_code == 409
    with pytest.raises(CannotReverseReversal):
        ledger.reverse(session, ACTOR, reversal.id, "undo the undo")
    with pytest.raises(InvalidInput):
        ledger.reverse(
            session, ACTOR, contribute(session, CITY, 1, D, "c2"), "x", value_date=date(2021, 1, 1)
        )
    r = ledger.reconcile(session)
    assert r.ok
    assert r.total_debits_fen == r.total_credits_fen == yuan(200) + 1


def test_reversal_respects_no_negative_and_reservations(session: Session, bank_id: int) -> None:
    tid = contribute(session, CITY, yuan(100), D, "c1")
    res_a = service.reserve(session, ACTOR, yuan(60), D, "claim", "A").id
    service.reserve(session, ACTOR, yuan(40), D, "claim", "B")
    # the contribution's cash is reserved: taking it back would strand the reservations
    with pytest.raises(FundInsufficient):
        ledger.reverse(session, ACTOR, tid, "wrong amount")
    service.pay_reserved(session, ACTOR, yuan(60), bank_id, D, "claim", "A")
    # A's reservation was paid: reversing it would spend B's reservation
    with pytest.raises(ReservationExceeded):
        ledger.reverse(session, ACTOR, res_a, "approved by mistake")
    assert ledger.reconcile(session).ok


def test_service_reversal_marks_the_contribution(session: Session) -> None:
    contribution = contributions.record_contribution(
        session, ACTOR, source=CITY, amount_fen=yuan(5), value_date=D, budget_doc_no="DOC-1"
    )
    with pytest.raises(DuplicateBudgetDocument):
        contributions.record_contribution(
            session, ACTOR, source=DISTRICT, amount_fen=yuan(7), value_date=D, budget_doc_no="DOC-1"
        )
    reversal = service.reverse_transaction(session, ACTOR, contribution.transaction_id, "wrong amount")
    assert contribution.reversal_transaction_id == reversal.id
    # the document number is free again for the corrected contribution
    again = contributions.record_contribution(
        session, ACTOR, source=CITY, amount_fen=yuan(6), value_date=D, budget_doc_no="DOC-1"
    )
    assert service.fund_position(session).contributions_fen["city"] == yuan(6)
    assert again.reversal_transaction_id is None
    # claim transactions are reversed through their claim, not here
    claim_txn = service.reserve(session, ACTOR, yuan(1), D, "claim", "7")
    with pytest.raises(ReversalNotAllowed):
        service.reverse_transaction(session, ACTOR, claim_txn.id, "no")
    with pytest.raises(CannotReverseReversal):
        service.reverse_transaction(session, ACTOR, reversal.id, "no")


def test_refusals_leave_nothing_behind(session: Session) -> None:
    contribute(session, CITY, yuan(1), D, "c1")
    before = session.scalar(select(LedgerTransaction.id).order_by(LedgerTransaction.id.desc()).limit(1))
    with pytest.raises(FundInsufficient):
        service.reserve(session, ACTOR, yuan(2), D, "claim", "1")
    with pytest.raises(DuplicateBudgetDocument):
        contribute(session, CITY, yuan(1), D, "c1")
    last = session.scalar(select(LedgerTransaction.id).order_by(LedgerTransaction.id.desc()).limit(1))
    assert last == before
    assert service.fund_position(session).balance_fen == yuan(1)


def test_future_value_date_refused_for_contributions(session: Session) -> None:
    with pytest.raises(InvalidInput):
        contributions.record_contribution(
            session,
            ACTOR,
            source=CITY,
            amount_fen=1,
            value_date=date(2021, 2, 1),
            budget_doc_no="F",
            today=date(2021, 1, 31),
        )


def test_bank_accounts_are_created_once(session: Session, bank_id: int) -> None:
    a = ledger.ensure_account(session, ACTOR, chart.comp_paid(bank_id))
    b = ledger.ensure_account(session, ACTOR, chart.comp_paid(bank_id))
    assert a.id == b.id
    assert (a.bank_id, a.category, a.no_negative, a.debit_normal) == (bank_id, "comp_paid", True, True)
    assert session.get(AccountBalance, a.id) is not None
    service.ensure_bank_accounts(session, ACTOR, bank_id)
    income = ledger.get_account(session, chart.recovery_income(bank_id))
    assert income is not None
    assert not income.debit_normal
    assert ledger.get_account(session, chart.recovery_receivable(bank_id)) is not None


def _flush_in_savepoint(session: Session, change: Callable[[], None]) -> None:
    with session.begin_nested():
        change()
        session.flush()


def test_entries_are_immutable(session: Session) -> None:
    tid = contribute(session, CITY, yuan(1), D, "c1")
    entry = session.scalars(select(LedgerEntry).where(LedgerEntry.transaction_id == tid)).first()
    assert entry is not None
    with pytest.raises(LedgerImmutable):
        _flush_in_savepoint(session, lambda: setattr(entry, "amount_fen", 2))
    txn = session.get(LedgerTransaction, tid)
    assert txn is not None
    with pytest.raises(LedgerImmutable):
        _flush_in_savepoint(session, lambda: session.delete(txn))
    assert ledger.reconcile(session).ok


def test_reconcile_finds_tampering(session: Session) -> None:
    contribute(session, CITY, yuan(3), D, "c1")
    account_id = session.scalar(select(LedgerAccount.id).where(LedgerAccount.code == chart.CASH_AVAILABLE))
    session.execute(
        update(AccountBalance)
        .where(AccountBalance.account_id == account_id)
        .values(debits_fen=AccountBalance.debits_fen + 1)
    )
    r = ledger.reconcile(session)
    assert not r.ok
    assert [d.code for d in r.differences] == [chart.CASH_AVAILABLE]
    assert r.differences[0].stored_debits_fen == r.differences[0].computed_debits_fen + 1


def test_postings_are_audited(session: Session) -> None:
    tid = contribute(session, CITY, yuan(3), D, "c1")
    actions = set(
        session.scalars(
            select(AuditRecord.action).where(
                AuditRecord.action.in_(["ledger.contribution", "fund.contribution.create"])
            )
        )
    )
    assert actions == {"ledger.contribution", "fund.contribution.create"}
    ledger.reverse(session, ACTOR, tid, "typo")
    rec = session.scalar(select(AuditRecord).where(AuditRecord.action == "ledger.reversal"))
    assert rec is not None
    assert rec.reason == "typo"


def test_interest_and_lock_fund(session: Session) -> None:
    contribute(session, DISTRICT, yuan(10), D, "c1")
    service.record_interest(session, ACTOR, 123, D)
    p = service.lock_fund(session)
    assert (p.balance_fen, p.interest_income_fen, p.fund_size_fen) == (yuan(10) + 123, 123, yuan(10))


def test_lock_fund_before_any_contribution(session: Session) -> None:
    p = service.lock_fund(session)
    assert (p.balance_fen, p.fund_size_fen, p.reserved_fen) == (0, 0, 0)


def test_lock_fund_refuses_a_cash_account_without_its_balance_row(session: Session) -> None:
    contribute(session, DISTRICT, yuan(10), D, "c1")
    cash = ledger.get_account(session, chart.CASH_AVAILABLE)
    assert cash is not None
    session.execute(delete(AccountBalance).where(AccountBalance.account_id == cash.id))
    with pytest.raises(InvalidPosting, match="no balance row"):
        service.lock_fund(session)
