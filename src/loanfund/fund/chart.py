"""The fund's chart of accounts (docs/adr/0004-fund-ledger.md).

Fixed accounts exist from the migration on; per-bank accounts (`<category>:bank:<bank id>`) are created
on first use. Every account here is flagged no-negative: no posting may take its balance, on its normal
side, below zero.

    fund_cash:available            asset    cash in the fund's account not earmarked for any claim
    fund_cash:reserved             asset    cash earmarked for approved claims (two-phase payouts)
    contrib:city, contrib:district equity   capital paid in by each budget
    interest_income                income   interest the fund's deposit account earns
    comp_paid:bank:<id>            expense  compensation paid to the bank
    recovery_receivable:bank:<id>  asset    the fund's share of recoveries reported, not yet remitted
    recovery_income:bank:<id>      income   the fund's share of recoveries recognised

Fund balance (cash) = fund_cash:available + fund_cash:reserved; reserved = fund_cash:reserved;
available = balance - reserved = fund_cash:available.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from loanfund.fund.models import AccountType, ContributionSource

CASH_AVAILABLE = "fund_cash:available"
CASH_RESERVED = "fund_cash:reserved"
INTEREST_INCOME = "interest_income"
CASH_CATEGORY = "fund_cash"
CONTRIB_CATEGORY = "contrib"
COMP_PAID = "comp_paid"
RECOVERY_RECEIVABLE = "recovery_receivable"
RECOVERY_INCOME = "recovery_income"


@dataclass(frozen=True)
class AccountSpec:
    code: str
    category: str
    name: str
    type: AccountType
    bank_id: int | None = None
    no_negative: bool = True


def contrib(source: ContributionSource | str) -> str:
    return f"{CONTRIB_CATEGORY}:{ContributionSource(source).value}"


def comp_paid(bank_id: int) -> str:
    return f"{COMP_PAID}:bank:{bank_id}"


def recovery_receivable(bank_id: int) -> str:
    return f"{RECOVERY_RECEIVABLE}:bank:{bank_id}"


def recovery_income(bank_id: int) -> str:
    return f"{RECOVERY_INCOME}:bank:{bank_id}"


FIXED: dict[str, AccountSpec] = {
    s.code: s
    for s in [
        AccountSpec(CASH_AVAILABLE, CASH_CATEGORY, "Fund cash, available", AccountType.asset),
        AccountSpec(
            CASH_RESERVED, CASH_CATEGORY, "Fund cash reserved for approved claims", AccountType.asset
        ),
        AccountSpec(
            contrib("city"), CONTRIB_CATEGORY, "Contributions from the city budget", AccountType.equity
        ),
        AccountSpec(
            contrib("district"),
            CONTRIB_CATEGORY,
            "Contributions from the district budget",
            AccountType.equity,
        ),
        AccountSpec(INTEREST_INCOME, INTEREST_INCOME, "Interest on the fund's account", AccountType.income),
    ]
}

_PER_BANK: dict[str, tuple[str, AccountType]] = {
    COMP_PAID: ("Compensation paid to bank {id}", AccountType.expense),
    RECOVERY_RECEIVABLE: ("Recoveries receivable from bank {id}", AccountType.asset),
    RECOVERY_INCOME: ("Recoveries recognised from bank {id}", AccountType.income),
}
_BANK_CODE = re.compile(r"^(?P<category>[a-z_]+):bank:(?P<id>[1-9][0-9]{0,17})$")


def spec_for(code: str) -> AccountSpec | None:
    """The specification of an account code of this chart, or None for a code outside it."""
    if code in FIXED:
        return FIXED[code]
    m = _BANK_CODE.match(code)
    if m is None or m["category"] not in _PER_BANK:
        return None
    name, type_ = _PER_BANK[m["category"]]
    bank_id = int(m["id"])
    return AccountSpec(code, m["category"], name.format(id=bank_id), type_, bank_id=bank_id)
