"""Every table, imported in one place for Alembic and the tests."""

from loanfund.applications.models import Application
from loanfund.audit.models import AuditRecord
from loanfund.banks.models import Bank
from loanfund.claims.models import Claim, Recovery
from loanfund.core.db import Base
from loanfund.core.idempotency import IdempotencyRecord
from loanfund.enterprises.models import Enterprise
from loanfund.fund.breakers import Breaker
from loanfund.fund.models import AccountBalance, Contribution, LedgerAccount, LedgerEntry, LedgerTransaction
from loanfund.loans.models import Loan, LoanEvent
from loanfund.portfolio.models import (
    BorrowerYear,
    FirstBorrowing,
    PortfolioDaily,
    PortfolioMonthly,
    PortfolioTotal,
    YearCounter,
)
from loanfund.rates.models import CreditLine, LprRate
from loanfund.risk.models import BankRating, StressTestRun
from loanfund.staff.models import ApiKey, SignInFailure, Staff, StaffSession
from loanfund.status_reports.models import Discrepancy, MonthReopening, StatusReport, StatusReportLine
from loanfund.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

__all__ = [
    "AccountBalance",
    "ApiKey",
    "Application",
    "AuditRecord",
    "Bank",
    "BankRating",
    "Base",
    "BorrowerYear",
    "Breaker",
    "Claim",
    "Contribution",
    "CreditLine",
    "Discrepancy",
    "Enterprise",
    "FirstBorrowing",
    "IdempotencyRecord",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerTransaction",
    "Loan",
    "LoanEvent",
    "LprRate",
    "MonthReopening",
    "PortfolioDaily",
    "PortfolioMonthly",
    "PortfolioTotal",
    "Recovery",
    "SignInFailure",
    "Staff",
    "StaffSession",
    "StatusReport",
    "StatusReportLine",
    "StressTestRun",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "YearCounter",
]
