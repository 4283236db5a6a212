from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from loanfund.core.dates import IsoDate
from loanfund.core.money import PositiveYuan, YuanStr, yuan_str
from loanfund.fund.ledger import AccountDifference, Reconciliation, normal_balance
from loanfund.fund.models import (
    AccountType,
    Contribution,
    ContributionSource,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Side,
    TransactionKind,
)
from loanfund.fund.service import FundPosition

BudgetDocNo = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^\S(.*\S)?$",
        description="The budget document number (unique among standing contributions)",
        examples=["黔江财预〔2021〕45号"],
    ),
]
Reason = Annotated[str, Field(min_length=3, max_length=2000)]


class ContributionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source": "district",
                    "amount": "3000000.00",
                    "value_date": "2021-06-30",
                    "budget_doc_no": "黔江财预〔2021〕45号",
                    "memo": "2021 district share of the fund top-up",
                }
            ]
        },
    )

    source: ContributionSource
    amount: PositiveYuan
    value_date: IsoDate = Field(
        description="The date the money reached the fund's account (not in the future)"
    )
    budget_doc_no: BudgetDocNo
    memo: Annotated[str, Field(max_length=2000)] | None = None


class ContributionRead(BaseModel):
    id: int
    source: ContributionSource
    amount: YuanStr
    value_date: date
    budget_doc_no: str
    memo: str | None
    transaction_id: int
    reversed: bool
    reversal_transaction_id: int | None
    created_at: datetime

    @classmethod
    def of(cls, c: Contribution) -> ContributionRead:
        return cls(
            id=c.id,
            source=c.source,
            amount=yuan_str(c.amount_fen),
            value_date=c.value_date,
            budget_doc_no=c.budget_doc_no,
            memo=c.memo,
            transaction_id=c.transaction_id,
            reversed=c.reversal_transaction_id is not None,
            reversal_transaction_id=c.reversal_transaction_id,
            created_at=c.created_at,
        )


class PositionRead(BaseModel):
    as_of: date | None = Field(description="The value date asked for; null for the current position")
    fund_size: YuanStr = Field(description="Capital contributed by the city and district budgets")
    balance: YuanStr = Field(description="The fund's cash (available + reserved)")
    reserved: YuanStr = Field(description="Cash reserved for approved claims")
    available: YuanStr = Field(description="Balance minus reserved")
    contributions: dict[ContributionSource, YuanStr]
    compensation_paid: YuanStr
    recoveries_recognised: YuanStr = Field(description="The fund's share of recoveries reported by banks")
    recoveries_receivable: YuanStr = Field(description="Recognised but not yet remitted")
    recoveries_received: YuanStr
    interest_income: YuanStr

    @classmethod
    def of(cls, p: FundPosition) -> PositionRead:
        return cls(
            as_of=p.as_of,
            fund_size=yuan_str(p.fund_size_fen),
            balance=yuan_str(p.balance_fen),
            reserved=yuan_str(p.reserved_fen),
            available=yuan_str(p.available_fen),
            contributions={ContributionSource(k): yuan_str(v) for k, v in p.contributions_fen.items()},
            compensation_paid=yuan_str(p.compensation_paid_fen),
            recoveries_recognised=yuan_str(p.recoveries_recognised_fen),
            recoveries_receivable=yuan_str(p.recoveries_receivable_fen),
            recoveries_received=yuan_str(p.recoveries_received_fen),
            interest_income=yuan_str(p.interest_income_fen),
        )


class AccountRead(BaseModel):
    id: int
    code: str = Field(examples=["fund_cash:available", "comp_paid:bank:3"])
    category: str
    name: str
    type: AccountType
    normal_side: Side
    bank_id: int | None
    no_negative: bool
    debits: YuanStr
    credits: YuanStr
    balance: YuanStr = Field(description="On the account's normal side")

    @classmethod
    def of(cls, a: LedgerAccount, debits_fen: int, credits_fen: int) -> AccountRead:
        return cls(
            id=a.id,
            code=a.code,
            category=a.category,
            name=a.name,
            type=a.type,
            normal_side=Side.debit if a.debit_normal else Side.credit,
            bank_id=a.bank_id,
            no_negative=a.no_negative,
            debits=yuan_str(debits_fen),
            credits=yuan_str(credits_fen),
            balance=yuan_str(normal_balance(a, debits_fen, credits_fen)),
        )


class EntryRead(BaseModel):
    id: int
    account: str
    side: Side
    amount: YuanStr

    @classmethod
    def of(cls, e: LedgerEntry) -> EntryRead:
        return cls(id=e.id, account=e.account.code, side=e.side, amount=yuan_str(e.amount_fen))


class TransactionRead(BaseModel):
    id: int
    kind: TransactionKind
    value_date: date
    posted_at: datetime
    memo: str | None
    reference_type: str | None
    reference_id: str | None
    reverses_id: int | None = Field(description="The transaction this one reverses")
    reversed_by_id: int | None = Field(description="The transaction that reverses this one")
    actor_kind: str
    actor_id: int | None
    actor_name: str
    entries: list[EntryRead]

    @classmethod
    def of(cls, t: LedgerTransaction) -> TransactionRead:
        return cls(
            id=t.id,
            kind=t.kind,
            value_date=t.value_date,
            posted_at=t.posted_at,
            memo=t.memo,
            reference_type=t.reference_type,
            reference_id=t.reference_id,
            reverses_id=t.reverses_id,
            reversed_by_id=t.reversed_by.id if t.reversed_by is not None else None,
            actor_kind=t.actor_kind,
            actor_id=t.actor_id,
            actor_name=t.actor_name,
            entries=[EntryRead.of(e) for e in t.entries],
        )


class ReverseRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"reason": "Entered twice from the same budget document", "value_date": "2021-07-01"}
            ]
        },
    )

    reason: Reason
    value_date: IsoDate | None = Field(
        default=None, description="Defaults to the original's value date; never before it"
    )


class AccountDifferenceRead(BaseModel):
    account: str
    stored_debits: YuanStr | None
    stored_credits: YuanStr | None
    computed_debits: YuanStr
    computed_credits: YuanStr

    @classmethod
    def of(cls, d: AccountDifference) -> AccountDifferenceRead:
        def opt(v: int | None) -> str | None:
            return yuan_str(v) if v is not None else None

        return cls(
            account=d.code,
            stored_debits=opt(d.stored_debits_fen),
            stored_credits=opt(d.stored_credits_fen),
            computed_debits=yuan_str(d.computed_debits_fen),
            computed_credits=yuan_str(d.computed_credits_fen),
        )


class ReconciliationRead(BaseModel):
    ok: bool = Field(description="No difference, every transaction balanced, no balance below zero")
    accounts_checked: int
    transactions_checked: int
    entries_checked: int
    total_debits: YuanStr
    total_credits: YuanStr
    differences: list[AccountDifferenceRead]
    unbalanced_transactions: list[int]
    negative_accounts: list[str]

    @classmethod
    def of(cls, r: Reconciliation) -> ReconciliationRead:
        return cls(
            ok=r.ok,
            accounts_checked=r.accounts_checked,
            transactions_checked=r.transactions_checked,
            entries_checked=r.entries_checked,
            total_debits=yuan_str(r.total_debits_fen),
            total_credits=yuan_str(r.total_credits_fen),
            differences=[AccountDifferenceRead.of(d) for d in r.differences],
            unbalanced_transactions=r.unbalanced_transactions,
            negative_accounts=r.negative_accounts,
        )
