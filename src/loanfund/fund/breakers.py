"""Circuit breakers (熔断).

Per bank: NPL ratio ≥ `breaker_warning_ratio` → warning; ≥ `breaker_suspend_ratio` → suspended, and new
loans from the bank are refused coverage until an officer lifts it (with a reason). A lifted suspension
stays lifted while the ratio stays at or above the warning line; once the ratio falls below it, the
breaker arms again. Re-evaluated after every write that may move the bank's NPL ratio (loan events that
change a loan's category, claim payouts, status reports).

Programme-wide: compensation paid in a calendar year ≥ `annual_compensation_stop_ratio` × fund size
trips the programme breaker (re-evaluated after every payout), which stops all new coverage and holds —
a top-up that brings the ratio back under the line does not lift it — until an officer lifts it with a
reason. A lifted programme breaker stays lifted while the ratio stays over the line (the officer has
decided on that situation), and arms again once it falls under it.

The thresholds are the rulebook's (`rules.bank_breaker_level`, `rules.programme_trips`). Every change is
audited.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Enum, ForeignKey, Numeric, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from loanfund import rules
from loanfund.audit.service import Actor, record
from loanfund.core.config import Settings
from loanfund.core.db import Base, utcnow
from loanfund.core.errors import Conflict
from loanfund.fund import service as fund_service
from loanfund.portfolio import service as portfolio
from loanfund.webhooks import events as webhook_events

PROGRAMME = "programme"


class BreakerState(enum.StrEnum):
    normal = "normal"
    warning = "warning"
    suspended = "suspended"
    stopped = "stopped"  # programme-wide only


class Breaker(Base):
    __tablename__ = "breakers"

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # bank | programme
    bank_id: Mapped[int | None] = mapped_column(ForeignKey("banks.id"), unique=True)
    state: Mapped[BreakerState] = mapped_column(
        Enum(BreakerState, native_enum=False, length=16, validate_strings=True), default=BreakerState.normal
    )
    ratio: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    lifted: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


def _bank_row(session: Session, bank_id: int, *, lock: bool = False) -> Breaker | None:
    stmt = select(Breaker).where(Breaker.bank_id == bank_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def _programme_row(session: Session, *, lock: bool = False) -> Breaker | None:
    stmt = select(Breaker).where(Breaker.scope == PROGRAMME)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def bank_suspended(session: Session, bank_id: int) -> bool:
    row = _bank_row(session, bank_id)
    return row is not None and row.state is BreakerState.suspended


def programme_stopped(session: Session) -> bool:
    """Whether the programme breaker has stopped new coverage (it holds until lifted)."""
    row = _programme_row(session)
    return row is not None and row.state is BreakerState.stopped


def level(settings: Settings, ratio: Decimal | None) -> BreakerState:
    return BreakerState(rules.bank_breaker_level(ratio, settings).value)


def evaluate_bank(session: Session, settings: Settings, actor: Actor, bank_id: int) -> Breaker:
    """Recompute a bank's breaker from its current NPL ratio; audit any change of state."""
    s = portfolio.stocks_by_bank(session, bank_id=bank_id).get(bank_id, portfolio.Stocks())
    ratio = rules.npl_ratio(s.npl_fen, s.compensated_fen, s.covered_fen)
    row = _bank_row(session, bank_id, lock=True)
    if row is None:
        row = Breaker(scope="bank", bank_id=bank_id, state=BreakerState.normal)
        session.add(row)
    target = level(settings, ratio)
    lifted = bool(row.lifted) and target is not BreakerState.normal
    if row.state is BreakerState.suspended:
        new = BreakerState.suspended  # only an officer lifts a suspension
    elif target is BreakerState.suspended and lifted:
        new = BreakerState.warning
    else:
        new = target
    old = row.state
    row.ratio = ratio
    row.lifted = lifted
    if new is not old:
        row.state = new
        row.changed_at = utcnow()
        row.reason = f"NPL ratio {ratio}"
        record(
            session,
            actor,
            "breaker.change",
            "breaker",
            f"bank:{bank_id}",
            before={"state": old},
            after={"state": new, "npl_ratio": ratio},
        )
        webhook_events.breaker_changed(session, row, old)
    session.flush()
    return row


def lift(session: Session, settings: Settings, actor: Actor, bank_id: int, reason: str) -> Breaker:
    row = _bank_row(session, bank_id, lock=True)
    if row is None or row.state is not BreakerState.suspended:
        raise Conflict("The bank's coverage is not suspended", code="breaker_not_suspended")
    to = (
        BreakerState.warning if level(settings, row.ratio) is not BreakerState.normal else BreakerState.normal
    )
    return _lift(session, actor, row, f"bank:{bank_id}", to, reason)


def _lift(
    session: Session, actor: Actor, row: Breaker, entity_id: str, to: BreakerState, reason: str
) -> Breaker:
    """An officer's lift of a tripped breaker (a bank's or the programme's) to `to`: it stays lifted
    until its ratio is under the line again; audited with the reason, and the banks are told."""
    was = row.state
    row.state = to
    row.lifted = True
    row.reason = reason
    row.changed_at = utcnow()
    session.flush()
    record(
        session,
        actor,
        "breaker.lift",
        "breaker",
        entity_id,
        before={"state": was},
        after={"state": row.state},
        reason=reason,
    )
    webhook_events.breaker_changed(session, row, was)
    return row


def programme_ratio(session: Session, day: date) -> tuple[int, int, Decimal | None]:
    """(compensation paid in `day`'s calendar year, the fund's size, their ratio)."""
    paid = fund_service.compensation_paid_between(session, date(day.year, 1, 1), date(day.year, 12, 31))
    size = fund_service.fund_position(session).fund_size_fen
    return paid, size, rules.ratio(paid, size)


def evaluate_programme(session: Session, settings: Settings, actor: Actor, day: date) -> Breaker:
    """After a payout on `day`: trip the programme breaker if that year's compensation has reached the
    line (unless an officer lifted it in this situation); a tripped breaker stays tripped."""
    paid, size, r = programme_ratio(session, day)
    trips = rules.programme_trips(paid, size, settings)
    row = _programme_row(session, lock=True)
    if row is None:
        row = Breaker(scope=PROGRAMME, bank_id=None, state=BreakerState.normal)
        session.add(row)
    row.ratio = r
    if not trips:
        row.lifted = False  # under the line again: the next time over it trips
    elif row.state is not BreakerState.stopped and not row.lifted:
        old = row.state
        row.state = BreakerState.stopped
        row.changed_at = utcnow()
        row.reason = f"compensation paid in {day.year} ÷ fund size = {r}"
        record(
            session,
            actor,
            "breaker.change",
            "breaker",
            PROGRAMME,
            before={"state": old},
            after={"state": row.state, "ratio": r},
        )
        webhook_events.breaker_changed(session, row, old)
    session.flush()
    return row


def lift_programme(session: Session, actor: Actor, reason: str) -> Breaker:
    """An officer lets new coverage start again, with a reason."""
    row = _programme_row(session, lock=True)
    if row is None or row.state is not BreakerState.stopped:
        raise Conflict("The programme's coverage is not stopped", code="breaker_not_stopped")
    return _lift(session, actor, row, PROGRAMME, BreakerState.normal, reason)


def list_breakers(session: Session, bank_id: int | None = None) -> list[Breaker]:
    """The breakers that have been evaluated: one bank's, or all."""
    stmt = select(Breaker).order_by(Breaker.id)
    if bank_id is not None:
        stmt = stmt.where(Breaker.bank_id == bank_id)
    return list(session.scalars(stmt))


def listing(session: Session, bank_id: int | None = None) -> list[tuple[Breaker, str | None]]:
    """The breakers with their bank's code, as `GET /fund/breakers` shows them: one bank's, or all — the
    programme's first (a normal one if it never tripped)."""
    from loanfund.banks.models import Bank

    stmt = select(Breaker, Bank.code).outerjoin(Bank, Bank.id == Breaker.bank_id).order_by(Breaker.id)
    if bank_id is not None:
        stmt = stmt.where(Breaker.bank_id == bank_id)
        return [(b, code) for b, code in session.execute(stmt)]
    rows: list[tuple[Breaker, str | None]] = [(b, code) for b, code in session.execute(stmt)]
    never_tripped = Breaker(scope=PROGRAMME, bank_id=None, state=BreakerState.normal, lifted=False)
    programme = [r for r in rows if r[0].scope == PROGRAMME] or [(never_tripped, None)]
    return programme + [r for r in rows if r[0].scope != PROGRAMME]
