"""Dated tables officers maintain: the one-year LPR and the credit line by grade."""

from __future__ import annotations

import bisect
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.audit.service import Actor, record
from loanfund.core.config import Settings
from loanfund.core.errors import Conflict, InvalidInput, field_error
from loanfund.core.money import to_fen, yuan_str
from loanfund.rates.models import CreditLine, LprRate

GRADES = ("A", "B", "C", "D", "E")


def _no_rate(day: date) -> InvalidInput:
    return InvalidInput(f"No LPR or benchmark rate is in force on {day}", code="no_rate_in_force")


def _no_lines(day: date) -> InvalidInput:
    return InvalidInput(f"No credit-line table is in force on {day}", code="no_credit_line_table")


def lpr_on(session: Session, day: date) -> LprRate:
    row = session.scalar(
        select(LprRate).where(LprRate.effective_date <= day).order_by(LprRate.effective_date.desc()).limit(1)
    )
    if row is None:
        raise _no_rate(day)
    return row


def max_rate_on(session: Session, settings: Settings, day: date) -> Decimal:
    """The highest annual rate (percent) allowed for a loan starting on `day`: LPR + the cap."""
    return lpr_on(session, day).rate_pct + Decimal(settings.rate_cap_bp) / 100


def add_lpr(
    session: Session, actor: Actor, *, effective_date: date, rate_pct: Decimal, kind: str = "lpr"
) -> LprRate:
    if session.scalar(select(LprRate).where(LprRate.effective_date == effective_date)) is not None:
        raise Conflict(f"A rate already takes effect on {effective_date}", code="rate_exists")
    row = LprRate(effective_date=effective_date, rate_pct=rate_pct, kind=kind)
    session.add(row)
    session.flush()
    record(
        session,
        actor,
        "rate.lpr.add",
        "lpr_rate",
        row.id,
        after={"effective_date": effective_date, "rate_pct": rate_pct, "kind": kind},
    )
    return row


def list_lpr(session: Session) -> list[LprRate]:
    return list(session.scalars(select(LprRate).order_by(LprRate.effective_date)))


def credit_line_table_on(session: Session, day: date) -> dict[str, int]:
    """The grade → line (fen) table in force on `day`."""
    effective = session.scalar(
        select(CreditLine.effective_date)
        .where(CreditLine.effective_date <= day)
        .order_by(CreditLine.effective_date.desc())
        .limit(1)
    )
    if effective is None:
        raise _no_lines(day)
    rows = session.scalars(select(CreditLine).where(CreditLine.effective_date == effective))
    return {r.grade: r.line_fen for r in rows}


def credit_line_for(session: Session, grade: str, day: date) -> int:
    return credit_line_table_on(session, day)[grade]


def add_credit_line_table(
    session: Session, actor: Actor, *, effective_date: date, lines: dict[str, Decimal]
) -> list[CreditLine]:
    if sorted(lines) != list(GRADES):
        raise field_error(
            "credit_lines_incomplete", "A credit-line table gives a line for each grade A–E", "lines"
        )
    if session.scalar(select(CreditLine).where(CreditLine.effective_date == effective_date)) is not None:
        raise Conflict(
            f"A credit-line table already takes effect on {effective_date}", code="credit_lines_exist"
        )
    rows = [CreditLine(effective_date=effective_date, grade=g, line_fen=to_fen(lines[g])) for g in GRADES]
    session.add_all(rows)
    session.flush()
    record(
        session,
        actor,
        "rate.credit_lines.add",
        "credit_lines",
        effective_date.isoformat(),
        after={r.grade: yuan_str(r.line_fen) for r in rows},
    )
    return rows


def list_credit_line_tables(session: Session) -> dict[date, dict[str, int]]:
    out: dict[date, dict[str, int]] = {}
    for r in session.scalars(select(CreditLine).order_by(CreditLine.effective_date, CreditLine.grade)):
        out.setdefault(r.effective_date, {})[r.grade] = r.line_fen
    return out


class RuleTables:
    """Both dated tables read once (they are small), for answering many dates in one request with the
    same results as `max_rate_on` and `credit_line_table_on`."""

    def __init__(self, session: Session, settings: Settings) -> None:
        lpr = list_lpr(session)
        self._lpr_dates = [r.effective_date for r in lpr]
        self._lpr = [r.rate_pct for r in lpr]
        self._cap = Decimal(settings.rate_cap_bp) / 100
        lines = list_credit_line_tables(session)
        self._line_dates = sorted(lines)
        self._lines = [lines[d] for d in self._line_dates]

    def max_rate_on(self, day: date) -> Decimal:
        i = bisect.bisect_right(self._lpr_dates, day) - 1
        if i < 0:
            raise _no_rate(day)
        return self._lpr[i] + self._cap

    def credit_line_table_on(self, day: date) -> dict[str, int]:
        i = bisect.bisect_right(self._line_dates, day) - 1
        if i < 0:
            raise _no_lines(day)
        return self._lines[i]
