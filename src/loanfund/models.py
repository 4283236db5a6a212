"""Every table, imported in one place for Alembic and the tests."""

from loanfund.applications.models import Application
from loanfund.audit.models import AuditRecord
from loanfund.banks.models import Bank
from loanfund.core.db import Base
from loanfund.enterprises.models import Enterprise
from loanfund.rates.models import CreditLine, LprRate
from loanfund.staff.models import ApiKey, Staff

__all__ = [
    "ApiKey",
    "Application",
    "AuditRecord",
    "Bank",
    "Base",
    "CreditLine",
    "Enterprise",
    "LprRate",
    "Staff",
]
