"""Every table, imported in one place for Alembic and the tests."""

from loanfund.audit.models import AuditRecord
from loanfund.banks.models import Bank
from loanfund.core.db import Base
from loanfund.enterprises.models import Enterprise
from loanfund.fund.models import AccountBalance, Contribution, LedgerAccount, LedgerEntry, LedgerTransaction
from loanfund.rates.models import CreditLine, LprRate
from loanfund.staff.models import ApiKey, Staff

__all__ = [
    "AccountBalance",
    "ApiKey",
    "AuditRecord",
    "Bank",
    "Base",
    "Contribution",
    "CreditLine",
    "Enterprise",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerTransaction",
    "LprRate",
    "Staff",
]
