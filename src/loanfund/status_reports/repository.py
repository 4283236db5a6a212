from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loanfund.status_reports.models import StatusReport


def closed_through(session: Session, bank_id: int) -> date | None:
    """The last month-end the bank has reported: its events on or before it are final."""
    return session.scalar(select(func.max(StatusReport.month_end)).where(StatusReport.bank_id == bank_id))
