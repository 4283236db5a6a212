"""The ledger core: post a balanced transaction, reverse one, read balances, reconcile.

`post` is the only code that writes entries or touches `account_balances`. It

1. refuses a transaction with fewer than two legs, a zero or negative amount, an account outside the
   chart, or debits that differ from credits;
2. locks the balance rows of the accounts it touches (`SELECT … FOR UPDATE`, in account-id order so
   that two postings can never deadlock each other; SQLite serialises writers with `BEGIN IMMEDIATE`);
3. checks, on the locked values, that no no-negative account goes below zero and that reserved cash is
   never released or paid beyond what is reserved for the same reference;
4. inserts the transaction and its entries, updates the running totals and writes the audit record.

Every check happens before the first entry is written, so a refusal posts nothing (at most an empty
per-bank account, created on first use, remains). Nothing here commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from loanfund.audit.service import Actor, record
from loanfund.banks.models import Bank
from loanfund.core.db import utcnow
from loanfund.core.errors import NotFound, field_error
from loanfund.core.money import yuan_str, yuan_text
from loanfund.fund import chart
from loanfund.fund.exceptions import (
    AlreadyReversed,
    CannotReverseReversal,
    FundInsufficient,
    InvalidPosting,
    NegativeBalance,
    ReservationExceeded,
    TransactionNotFound,
    UnbalancedTransaction,
)
from loanfund.fund.models import (
    AccountBalance,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Side,
    TransactionKind,
)

# Reserved cash is pooled in one account but tracked per reference (a claim): a posting may never take
# the amount reserved for one reference below zero, so one claim can never spend another's reservation.
PER_REFERENCE = chart.CASH_RESERVED
FUND_CASH = frozenset({chart.CASH_AVAILABLE, chart.CASH_RESERVED})


@dataclass(frozen=True)
class Leg:
    """One side of a posting: `amount_fen` (> 0) to the debit or the credit of the account `account`."""

    account: str
    side: Side
    amount_fen: int


def debit(account: str, amount_fen: int) -> Leg:
    return Leg(account, Side.debit, amount_fen)


def credit(account: str, amount_fen: int) -> Leg:
    return Leg(account, Side.credit, amount_fen)


def signed(side: Side, amount_fen: int) -> int:
    """Debits positive, credits negative."""
    return amount_fen if side == Side.debit else -amount_fen


def normal_balance(account: LedgerAccount, debits_fen: int, credits_fen: int) -> int:
    """The balance on the account's normal side (debit for assets and expenses, credit otherwise)."""
    return debits_fen - credits_fen if account.debit_normal else credits_fen - debits_fen


# --- accounts --------------------------------------------------------------------------------------


def get_account(session: Session, code: str) -> LedgerAccount | None:
    return session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))


def ensure_account(session: Session, actor: Actor, code: str) -> LedgerAccount:
    """The account with this code, created (with its balance row) on first use.

    Safe under concurrency: the code is unique; a transaction that loses the race to insert it rolls
    back its savepoint and reads the winner's row (on PostgreSQL the insert waits for the winner to commit).
    """
    account = get_account(session, code)
    if account is not None:
        return account
    spec = chart.spec_for(code)
    if spec is None:
        raise InvalidPosting(f"{code!r} is not an account of the fund's chart")
    if spec.bank_id is not None and session.get(Bank, spec.bank_id) is None:
        raise NotFound(f"No bank with id {spec.bank_id}", code="bank_not_found")
    try:
        with session.begin_nested():
            account = LedgerAccount(
                code=spec.code,
                category=spec.category,
                name=spec.name,
                type=spec.type,
                bank_id=spec.bank_id,
                no_negative=spec.no_negative,
            )
            session.add(account)
            session.flush()
            session.add(AccountBalance(account_id=account.id, debits_fen=0, credits_fen=0))
            session.flush()
            record(session, actor, "ledger.account.create", "ledger_account", code)
    except IntegrityError:
        account = get_account(session, code)
        if account is None:
            raise
    return account


# --- posting ---------------------------------------------------------------------------------------


def _check_legs(legs: Sequence[Leg]) -> None:
    if len(legs) < 2:
        raise InvalidPosting("A transaction needs at least two entries")
    for leg in legs:
        if type(leg.amount_fen) is not int or leg.amount_fen <= 0:
            raise InvalidPosting(f"Entry amounts are positive whole fen, got {leg.amount_fen!r}")
        if not isinstance(leg.side, Side):
            raise InvalidPosting(f"Entry side is debit or credit, got {leg.side!r}")
    debits = sum(leg.amount_fen for leg in legs if leg.side == Side.debit)
    credits = sum(leg.amount_fen for leg in legs if leg.side == Side.credit)
    if debits != credits:
        raise UnbalancedTransaction(
            f"Debits ({yuan_text(debits)}) differ from credits ({yuan_text(credits)})",
            details={"debits": yuan_str(debits), "credits": yuan_str(credits)},
        )


def lock_balances(session: Session, account_ids: Iterable[int]) -> dict[int, AccountBalance]:
    """Lock and read the balance rows, in id order (no deadlocks between postings)."""
    ids = sorted(set(account_ids))
    stmt = (
        select(AccountBalance)
        .where(AccountBalance.account_id.in_(ids))
        .order_by(AccountBalance.account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    rows = {b.account_id: b for b in session.scalars(stmt)}
    missing = [i for i in ids if i not in rows]
    if missing:  # an account without its balance row: only by tampering; refuse rather than guess
        raise InvalidPosting(f"Accounts {missing} have no balance row; run the reconciliation")
    return rows


def lock_codes(session: Session, codes: Iterable[str]) -> None:
    """`lock_balances` of the accounts with these codes (those that exist), in one statement."""
    wanted = LedgerAccount.code.in_(sorted(set(codes)))
    existing = select(func.count()).select_from(LedgerAccount).where(wanted).scalar_subquery()
    stmt = (
        select(AccountBalance.account_id, existing)
        .join(LedgerAccount, LedgerAccount.id == AccountBalance.account_id)
        .where(wanted)
        .order_by(AccountBalance.account_id)
        .with_for_update(of=AccountBalance)
    )
    rows = session.execute(stmt).all()
    accounts = rows[0][1] if rows else session.scalar(select(existing))
    if len(rows) != accounts:  # an account without its balance row: as `lock_balances`
        raise InvalidPosting(
            f"Some of the accounts {sorted(set(codes))} have no balance row; run the reconciliation"
        )


def _reserved(reference_type: str) -> Select[str | None, int]:
    """Cash reserved per reference of a type: reservations less releases and payments."""
    return (
        select(LedgerTransaction.reference_id, func.coalesce(func.sum(_signed_amount()), 0))
        .select_from(LedgerEntry)
        .join(LedgerTransaction, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.code == PER_REFERENCE, LedgerTransaction.reference_type == reference_type)
        .group_by(LedgerTransaction.reference_id)
    )


def reserved_for(session: Session, reference_type: str, reference_id: str) -> int:
    """Cash reserved for one reference (a claim): its reservations less its releases and payments."""
    stmt = _reserved(reference_type).where(LedgerTransaction.reference_id == reference_id)
    row = session.execute(stmt).first()
    return int(row[1]) if row else 0  # fund_cash:reserved is debit-normal


def reserved_by_reference(
    session: Session, reference_type: str, *, as_of: date | None = None
) -> dict[str, int]:
    """Cash reserved per reference of a type (every claim's, say), from the entries with value dates up
    to `as_of` (None: all); references with nothing reserved are left out."""
    stmt = _reserved(reference_type)
    if as_of is not None:
        stmt = stmt.where(LedgerEntry.value_date <= as_of)
    return {ref: int(fen) for ref, fen in session.execute(stmt) if ref is not None and fen}


def post(
    session: Session,
    actor: Actor,
    kind: TransactionKind,
    value_date: date,
    legs: Sequence[Leg],
    *,
    memo: str | None = None,
    reference_type: str | None = None,
    reference_id: str | None = None,
    reverses_id: int | None = None,
    reason: str | None = None,
) -> LedgerTransaction:
    """Post one balanced transaction; see the module docstring for what is checked and locked."""
    _check_legs(legs)
    if (reference_type is None) != (reference_id is None):
        raise InvalidPosting("reference_type and reference_id go together")
    if (kind == TransactionKind.reversal) != (reverses_id is not None):
        raise InvalidPosting("A reversal, and only a reversal, names the transaction it reverses")
    accounts = {code: ensure_account(session, actor, code) for code in sorted({leg.account for leg in legs})}
    balances = lock_balances(session, (a.id for a in accounts.values()))

    moved: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for leg in legs:
        d, c = moved[leg.account]
        moved[leg.account] = (d + leg.amount_fen, c) if leg.side == Side.debit else (d, c + leg.amount_fen)

    if PER_REFERENCE in moved:
        if reference_type is None or reference_id is None:
            raise InvalidPosting("Reserved cash moves only for a reference (e.g. a claim)")
        d, c = moved[PER_REFERENCE]
        if c > d:
            held = reserved_for(session, reference_type, reference_id)
            if held - (c - d) < 0:
                raise ReservationExceeded(
                    f"Only {yuan_text(held)} is reserved for {reference_type} {reference_id}; "
                    f"{yuan_text(c - d)} cannot be released or paid",
                    details={"reserved": yuan_str(held), "amount": yuan_str(c - d)},
                )

    for code, (d, c) in moved.items():
        account = accounts[code]
        bal = balances[account.id]
        before = normal_balance(account, bal.debits_fen, bal.credits_fen)
        after = normal_balance(account, bal.debits_fen + d, bal.credits_fen + c)
        if account.no_negative and after < 0:
            details = {"account": code, "balance": yuan_str(before), "change": yuan_str(after - before)}
            if code in FUND_CASH:
                raise FundInsufficient(
                    f"The fund's {code.split(':')[1]} cash is {yuan_text(before)}; "
                    f"it cannot cover {yuan_text(before - after)}",
                    details=details,
                )
            raise NegativeBalance(f"Account {code} would go below zero", details=details)

    txn = LedgerTransaction(
        kind=kind,
        value_date=value_date,
        posted_at=utcnow(),
        memo=memo,
        reference_type=reference_type,
        reference_id=reference_id,
        reverses_id=reverses_id,
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_name=actor.name,
    )
    session.add(txn)
    session.flush()
    session.add_all(
        LedgerEntry(
            transaction_id=txn.id,
            account_id=accounts[leg.account].id,
            side=leg.side,
            amount_fen=leg.amount_fen,
            value_date=value_date,
        )
        for leg in legs
    )
    now = utcnow()
    for code, (d, c) in moved.items():
        bal = balances[accounts[code].id]
        bal.debits_fen += d
        bal.credits_fen += c
        bal.updated_at = now
    session.flush()
    record(
        session,
        actor,
        f"ledger.{kind.value}",
        "ledger_transaction",
        txn.id,
        after={
            "value_date": value_date,
            "reference": f"{reference_type}:{reference_id}" if reference_type else None,
            "reverses_id": reverses_id,
            "entries": [[leg.account, leg.side.value, yuan_str(leg.amount_fen)] for leg in legs],
        },
        reason=reason,
    )
    return txn


# --- reversal --------------------------------------------------------------------------------------


def load_transaction(session: Session, transaction_id: int, *, lock: bool = False) -> LedgerTransaction:
    stmt = (
        select(LedgerTransaction)
        .where(LedgerTransaction.id == transaction_id)
        .options(
            selectinload(LedgerTransaction.entries).selectinload(LedgerEntry.account),
            selectinload(LedgerTransaction.reversed_by),
        )
        .execution_options(populate_existing=True)
    )
    if lock:
        stmt = stmt.with_for_update(of=LedgerTransaction)
    txn = session.scalar(stmt)
    if txn is None:
        raise TransactionNotFound(f"No ledger transaction {transaction_id}")
    return txn


def reverse(
    session: Session,
    actor: Actor,
    transaction_id: int,
    reason: str,
    *,
    value_date: date | None = None,
) -> LedgerTransaction:
    """Post the mirror of a transaction, pointing at it. At most once; a reversal is never reversed.

    The reversal carries the original's reference and, unless given, its value date: a reversal corrects
    a mistake, so positions at any date after the original read as if it had not been posted.
    """
    # Lock the original so that two concurrent reversals queue; the unique `reverses_id` backs this up.
    original = load_transaction(session, transaction_id, lock=True)
    if original.reverses_id is not None:
        raise CannotReverseReversal(
            f"Transaction {transaction_id} is itself a reversal; post a new transaction instead"
        )
    existing = session.scalar(
        select(LedgerTransaction.id).where(LedgerTransaction.reverses_id == original.id)
    )
    if existing is not None:
        raise AlreadyReversed(
            f"Transaction {transaction_id} was already reversed by {existing}",
            details={"reversal_id": existing},
        )
    day = value_date or original.value_date
    if day < original.value_date:
        raise field_error(
            "reversal_before_original",
            f"A reversal cannot be dated before the transaction it reverses ({original.value_date})",
            "value_date",
        )
    legs = [
        Leg(e.account.code, Side.credit if e.side == Side.debit else Side.debit, e.amount_fen)
        for e in original.entries
    ]
    return post(
        session,
        actor,
        TransactionKind.reversal,
        day,
        legs,
        memo=f"Reversal of transaction {original.id}: {reason}",
        reference_type=original.reference_type,
        reference_id=original.reference_id,
        reverses_id=original.id,
        reason=reason,
    )


# --- balances --------------------------------------------------------------------------------------


def _signed_amount() -> ColumnElement[int]:
    return case((LedgerEntry.side == Side.debit, LedgerEntry.amount_fen), else_=-LedgerEntry.amount_fen)


@dataclass(frozen=True)
class AccountState:
    account: LedgerAccount
    debits_fen: int
    credits_fen: int

    @property
    def balance_fen(self) -> int:
        return normal_balance(self.account, self.debits_fen, self.credits_fen)


def _accounts(
    session: Session, codes: Iterable[str] | None, categories: Iterable[str] | None
) -> list[LedgerAccount]:
    stmt = select(LedgerAccount).where(*_account_filter(codes, categories)).order_by(LedgerAccount.id)
    return list(session.scalars(stmt))


def _account_filter(
    codes: Iterable[str] | None, categories: Iterable[str] | None
) -> list[ColumnElement[bool]]:
    """The accounts with these codes and in these categories (None: any)."""
    where: list[ColumnElement[bool]] = []
    if codes is not None:
        where.append(LedgerAccount.code.in_(list(codes)))
    if categories is not None:
        where.append(LedgerAccount.category.in_(list(categories)))
    return where


def account_states(
    session: Session,
    *,
    as_of: date | None = None,
    codes: Iterable[str] | None = None,
    categories: Iterable[str] | None = None,
) -> list[AccountState]:
    """Debit and credit totals per account: from the running totals (now), or from the entries whose
    value date is on or before `as_of`."""
    if as_of is not None:
        return account_states_on(session, [as_of], codes=codes, categories=categories)[0]
    stmt = (
        select(LedgerAccount, AccountBalance.debits_fen, AccountBalance.credits_fen)
        .outerjoin(AccountBalance, AccountBalance.account_id == LedgerAccount.id)
        .where(*_account_filter(codes, categories))
        .order_by(LedgerAccount.id)
    )
    return [AccountState(a, int(d or 0), int(c or 0)) for a, d, c in session.execute(stmt)]


def account_states_on(
    session: Session,
    days: Sequence[date],
    *,
    codes: Iterable[str] | None = None,
    categories: Iterable[str] | None = None,
) -> list[list[AccountState]]:
    """`account_states(as_of=day)` for each of `days`: the totals up to the earliest day in one grouped
    read, then the entries' movements per account and value date up to the latest, added up in order. Two
    statements whatever the number of days; the second reads only the entries between the days."""
    accounts = _accounts(session, codes, categories)
    ids = [a.id for a in accounts]
    ordered = sorted(set(days))
    first, last = ordered[0], ordered[-1]
    running: dict[int, list[int]] = {
        r[0]: [int(r[1] or 0), int(r[2] or 0)]
        for r in session.execute(
            _entry_totals().where(LedgerEntry.account_id.in_(ids), LedgerEntry.value_date <= first)
        )
    }
    moves = session.execute(
        select(
            LedgerEntry.account_id, LedgerEntry.value_date, LedgerEntry.side, func.sum(LedgerEntry.amount_fen)
        )
        .where(
            LedgerEntry.account_id.in_(ids), LedgerEntry.value_date > first, LedgerEntry.value_date <= last
        )
        .group_by(LedgerEntry.account_id, LedgerEntry.value_date, LedgerEntry.side)
        .order_by(LedgerEntry.value_date)
    ).all()
    at: dict[date, dict[int, tuple[int, int]]] = {}
    i = 0
    for day in ordered:
        while i < len(moves) and moves[i][1] <= day:
            account_id, _, side, amount = moves[i]
            totals = running.setdefault(account_id, [0, 0])
            totals[0 if side == Side.debit else 1] += int(amount)
            i += 1
        at[day] = {k: (v[0], v[1]) for k, v in running.items()}
    return [[AccountState(a, *at[day].get(a.id, (0, 0))) for a in accounts] for day in days]


def _entry_totals() -> Select[int, int, int]:
    return select(
        LedgerEntry.account_id,
        func.sum(case((LedgerEntry.side == Side.debit, LedgerEntry.amount_fen), else_=0)).label("debits"),
        func.sum(case((LedgerEntry.side == Side.credit, LedgerEntry.amount_fen), else_=0)).label("credits"),
    ).group_by(LedgerEntry.account_id)


def balance(session: Session, code: str, *, as_of: date | None = None) -> int:
    """The normal-side balance of one account (0 for an account not yet created)."""
    states = account_states(session, as_of=as_of, codes=[code])
    return states[0].balance_fen if states else 0


def movement(session: Session, category: str, start: date, end: date, *, bank_id: int | None = None) -> int:
    """Net movement, on the normal side, of the accounts of a category with value dates in [start, end]."""
    stmt = (
        select(LedgerAccount.type, func.coalesce(func.sum(_signed_amount()), 0))
        .select_from(LedgerEntry)
        .join(LedgerAccount, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.category == category, LedgerEntry.value_date.between(start, end))
        .group_by(LedgerAccount.type)
    )
    if bank_id is not None:
        stmt = stmt.where(LedgerAccount.bank_id == bank_id)
    total = 0
    for type_, amount in session.execute(stmt).all():
        total += int(amount) if type_.debit_normal else -int(amount)
    return total


# --- reconciliation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountDifference:
    code: str
    stored_debits_fen: int | None
    stored_credits_fen: int | None
    computed_debits_fen: int
    computed_credits_fen: int


@dataclass
class Reconciliation:
    accounts_checked: int = 0
    transactions_checked: int = 0
    entries_checked: int = 0
    total_debits_fen: int = 0
    total_credits_fen: int = 0
    differences: list[AccountDifference] = field(default_factory=list)
    unbalanced_transactions: list[int] = field(default_factory=list)
    negative_accounts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.differences
            and not self.unbalanced_transactions
            and not self.negative_accounts
            and self.total_debits_fen == self.total_credits_fen
        )


def reconcile(session: Session) -> Reconciliation:
    """Recompute every balance from the entries and compare with the running totals.

    Also reports transactions whose entries do not balance (or that have fewer than two), and no-negative
    accounts whose recomputed balance is below zero. Reads only; run it at any time.
    """
    out = Reconciliation()
    # One statement, hence one snapshot on PostgreSQL even under READ COMMITTED: the running totals and
    # the sums of the entries are read at the same instant, whatever is being posted meanwhile.
    sums = _entry_totals().subquery()
    rows = session.execute(
        select(
            LedgerAccount,
            AccountBalance.debits_fen,
            AccountBalance.credits_fen,
            sums.c.debits,
            sums.c.credits,
        )
        .outerjoin(AccountBalance, AccountBalance.account_id == LedgerAccount.id)
        .outerjoin(sums, sums.c.account_id == LedgerAccount.id)
        .order_by(LedgerAccount.id)
    ).all()
    for account, stored_d, stored_c, sum_d, sum_c in rows:
        cd, cc = int(sum_d or 0), int(sum_c or 0)
        out.accounts_checked += 1
        out.total_debits_fen += cd
        out.total_credits_fen += cc
        if stored_d != cd or stored_c != cc:
            out.differences.append(AccountDifference(account.code, stored_d, stored_c, cd, cc))
        if account.no_negative and normal_balance(account, cd, cc) < 0:
            out.negative_accounts.append(account.code)

    per_txn = (
        select(
            LedgerEntry.transaction_id.label("tid"),
            func.sum(_signed_amount()).label("net"),
            func.count().label("n"),
        )
        .group_by(LedgerEntry.transaction_id)
        .subquery()
    )
    out.entries_checked = int(session.scalar(select(func.count()).select_from(LedgerEntry)) or 0)
    out.transactions_checked = int(session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0)
    bad = session.scalars(
        select(LedgerTransaction.id)
        .outerjoin(per_txn, per_txn.c.tid == LedgerTransaction.id)
        .where((per_txn.c.tid.is_(None)) | (per_txn.c.net != 0) | (per_txn.c.n < 2))
        .order_by(LedgerTransaction.id)
    )
    out.unbalanced_transactions = list(bad)
    return out
