from __future__ import annotations

from collections.abc import Collection
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loanfund.status_reports.models import StatusReport


def closed_through(session: Session, bank_id: int) -> date | None:
    """The last month-end the bank has reported: its events on or before it are final."""
    return closed_through_many(session, [bank_id])[bank_id]


def closed_through_many(session: Session, bank_ids: Collection[int]) -> dict[int, date | None]:
    """`closed_through` of each of the banks, in one query."""
    stmt = (
        select(StatusReport.bank_id, func.max(StatusReport.month_end))
        .where(StatusReport.bank_id.in_(sorted(bank_ids)))
        .group_by(StatusReport.bank_id)
    )
    found: dict[int, date | None] = {row[0]: row[1] for row in session.execute(stmt)}
    return {bank_id: found.get(bank_id) for bank_id in bank_ids}
