"""A stateful property test: random sequences of fund movements against a small in-memory model.

After every step: the ledger reconciles (running totals == sums of entries, every transaction balanced,
debits == credits, no no-negative account below zero), and the model and the service agree on balance,
reserved, available, fund size and every account the model knows. Each example runs in a savepoint
that is rolled back at its end, inside the test's own rolled-back transaction.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy.orm import Session

from loanfund.fund import chart, contributions, ledger, service
from loanfund.fund.exceptions import (
    AlreadyReversed,
    CannotReverseReversal,
    DuplicateBudgetDocument,
    FundInsufficient,
    NegativeBalance,
    ReservationExceeded,
)
from loanfund.fund.models import ContributionSource, LedgerTransaction
from tests.factories import TEST_ACTOR as ACTOR
from tests.fund.conftest import make_bank

DAY = date(2021, 6, 1)
REFS = ["c1", "c2", "c3"]
AMOUNT = st.integers(min_value=1, max_value=600_000)
REFUSED = (FundInsufficient, ReservationExceeded, NegativeBalance)


@dataclass
class ModelTxn:
    id: int
    deltas: dict[str, int]  # model key -> change of the balance on its normal side
    doc: str | None = None  # budget document of a contribution
    is_reversal: bool = False
    reversed: bool = False


class FundModel(RuleBasedStateMachine):
    """The model keeps normal-side balances under keys: available, reserved:<ref>, contrib:<source>,
    paid:<bank>, receivable:<bank>, income:<bank>, interest. All of them must stay >= 0."""

    def __init__(self, session: Session, banks: list[int]) -> None:
        super().__init__()
        self.session = session
        self.banks = banks
        self.savepoint = session.begin_nested()
        self.bal: dict[str, int] = {}
        self.txns: list[ModelTxn] = []
        self.standing_docs: set[str] = set()
        self.docs = itertools.count(1)

    def teardown(self) -> None:
        self.savepoint.rollback()

    # --- helpers ---------------------------------------------------------------------------------

    def get(self, key: str) -> int:
        return self.bal.get(key, 0)

    def fits(self, deltas: dict[str, int]) -> bool:
        return all(self.get(k) + v >= 0 for k, v in deltas.items())

    def apply(self, txn: LedgerTransaction, deltas: dict[str, int], doc: str | None = None) -> None:
        for k, v in deltas.items():
            self.bal[k] = self.get(k) + v
        self.txns.append(ModelTxn(txn.id, deltas, doc))

    # --- rules -----------------------------------------------------------------------------------

    @rule(source=st.sampled_from(list(ContributionSource)), amount=st.integers(1, 1_000_000))
    def contribute(self, source: ContributionSource, amount: int) -> None:
        doc = f"DOC-{next(self.docs)}"
        c = contributions.record_contribution(
            self.session, ACTOR, source=source, amount_fen=amount, value_date=DAY, budget_doc_no=doc
        )
        txn = self.session.get(LedgerTransaction, c.transaction_id)
        assert txn is not None
        self.apply(txn, {"available": amount, f"contrib:{source.value}": amount}, doc)
        self.standing_docs.add(doc)

    @rule(n=st.integers(0, 50), amount=AMOUNT)
    def contribute_again_under_a_used_document(self, n: int, amount: int) -> None:
        used = sorted({t.doc for t in self.txns if t.doc})
        if not used:
            return
        doc = used[n % len(used)]
        if doc in self.standing_docs:
            try:
                contributions.record_contribution(
                    self.session,
                    ACTOR,
                    source=ContributionSource.city,
                    amount_fen=amount,
                    value_date=DAY,
                    budget_doc_no=doc,
                )
            except DuplicateBudgetDocument:
                return
            raise AssertionError("a duplicate budget document was accepted")
        c = contributions.record_contribution(  # reversed: its number is free again
            self.session,
            ACTOR,
            source=ContributionSource.city,
            amount_fen=amount,
            value_date=DAY,
            budget_doc_no=doc,
        )
        txn = self.session.get(LedgerTransaction, c.transaction_id)
        assert txn is not None
        self.apply(txn, {"available": amount, "contrib:city": amount}, doc)
        self.standing_docs.add(doc)

    @rule(ref=st.sampled_from(REFS), amount=AMOUNT)
    def reserve(self, ref: str, amount: int) -> None:
        deltas = {"available": -amount, f"reserved:{ref}": amount}
        if not self.fits(deltas):
            try:
                service.reserve(self.session, ACTOR, amount, DAY, "claim", ref)
            except FundInsufficient:
                return
            raise AssertionError("reserved beyond the available balance")
        self.apply(service.reserve(self.session, ACTOR, amount, DAY, "claim", ref), deltas)

    @rule(ref=st.sampled_from(REFS), amount=AMOUNT, whole=st.booleans())
    def release(self, ref: str, amount: int, whole: bool) -> None:
        amount = self.get(f"reserved:{ref}") if whole and self.get(f"reserved:{ref}") else amount
        deltas = {"available": amount, f"reserved:{ref}": -amount}
        if not self.fits(deltas):
            try:
                service.release(self.session, ACTOR, amount, DAY, "claim", ref)
            except ReservationExceeded:
                return
            raise AssertionError("released more than reserved")
        self.apply(service.release(self.session, ACTOR, amount, DAY, "claim", ref), deltas)

    @rule(ref=st.sampled_from(REFS), bank=st.integers(0, 1), amount=AMOUNT, whole=st.booleans())
    def pay(self, ref: str, bank: int, amount: int, whole: bool) -> None:
        bank_id = self.banks[bank]
        amount = self.get(f"reserved:{ref}") if whole and self.get(f"reserved:{ref}") else amount
        deltas = {f"reserved:{ref}": -amount, f"paid:{bank_id}": amount}
        if not self.fits(deltas):
            try:
                service.pay_reserved(self.session, ACTOR, amount, bank_id, DAY, "claim", ref)
            except ReservationExceeded:
                return
            raise AssertionError("paid more than reserved")
        self.apply(service.pay_reserved(self.session, ACTOR, amount, bank_id, DAY, "claim", ref), deltas)

    @rule(bank=st.integers(0, 1), amount=AMOUNT)
    def recognise_recovery(self, bank: int, amount: int) -> None:
        bank_id = self.banks[bank]
        txn = service.recognise_recovery_receivable(
            self.session, ACTOR, amount, bank_id, DAY, "recovery", "r"
        )
        self.apply(txn, {f"receivable:{bank_id}": amount, f"income:{bank_id}": amount})

    @rule(bank=st.integers(0, 1), amount=AMOUNT, whole=st.booleans())
    def settle_recovery(self, bank: int, amount: int, whole: bool) -> None:
        bank_id = self.banks[bank]
        owed = self.get(f"receivable:{bank_id}")
        amount = owed if whole and owed else amount
        deltas = {"available": amount, f"receivable:{bank_id}": -amount}
        if not self.fits(deltas):
            try:
                service.settle_recovery(self.session, ACTOR, amount, bank_id, DAY, "remittance", "r")
            except NegativeBalance:
                return
            raise AssertionError("settled more than the bank owes")
        self.apply(
            service.settle_recovery(self.session, ACTOR, amount, bank_id, DAY, "remittance", "r"), deltas
        )

    @rule(amount=st.integers(1, 10_000))
    def interest(self, amount: int) -> None:
        self.apply(
            service.record_interest(self.session, ACTOR, amount, DAY),
            {"available": amount, "interest": amount},
        )

    @rule(n=st.integers(0, 10_000))
    def reverse(self, n: int) -> None:
        if not self.txns:
            return
        target = self.txns[n % len(self.txns)]
        undo = {k: -v for k, v in target.deltas.items()}

        def call() -> LedgerTransaction:
            if target.doc is not None:  # a contribution: through the service, which marks it reversed
                return service.reverse_transaction(self.session, ACTOR, target.id, "property test")
            return ledger.reverse(self.session, ACTOR, target.id, "property test")

        expected: type[Exception] | tuple[type[Exception], ...] | None = None
        if target.is_reversal:
            expected = CannotReverseReversal
        elif target.reversed:
            expected = AlreadyReversed
        elif not self.fits(undo):
            expected = REFUSED
        if expected is not None:
            try:
                call()
            except expected:
                return
            raise AssertionError(f"reversal of {target} should have been refused with {expected}")
        reversal = call()
        target.reversed = True
        for k, v in undo.items():
            self.bal[k] = self.get(k) + v
        self.txns.append(ModelTxn(reversal.id, undo, None, is_reversal=True))
        if target.doc is not None:
            self.standing_docs.discard(target.doc)

    # --- invariants ------------------------------------------------------------------------------

    @invariant()
    def ledger_reconciles(self) -> None:
        r = ledger.reconcile(self.session)
        assert r.ok, r
        assert r.total_debits_fen == r.total_credits_fen

    @invariant()
    def model_and_service_agree(self) -> None:
        assert all(v >= 0 for v in self.bal.values()), self.bal
        p = service.fund_position(self.session)
        reserved = sum(self.get(f"reserved:{r}") for r in REFS)
        assert p.reserved_fen == reserved
        assert p.available_fen == self.get("available")
        assert p.balance_fen == self.get("available") + reserved
        assert p.contributions_fen == {s: self.get(f"contrib:{s}") for s in ("city", "district")}
        assert p.fund_size_fen == self.get("contrib:city") + self.get("contrib:district")
        assert p.interest_income_fen == self.get("interest")
        for ref in REFS:
            assert service.reserved_for(self.session, "claim", ref) == self.get(f"reserved:{ref}")
        for b in self.banks:
            assert ledger.balance(self.session, chart.comp_paid(b)) == self.get(f"paid:{b}")
            assert ledger.balance(self.session, chart.recovery_receivable(b)) == self.get(f"receivable:{b}")
            assert ledger.balance(self.session, chart.recovery_income(b)) == self.get(f"income:{b}")
        # the position at a date after every value date, recomputed from the entries, agrees too
        assert service.fund_position(self.session, date(2099, 1, 1)).balance_fen == p.balance_fen


def test_fund_state_machine(session: Session) -> None:
    banks = [make_bank(session), make_bank(session)]
    session.commit()
    run_state_machine_as_test(
        lambda: FundModel(session, banks),
        settings=settings(
            max_examples=20,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
