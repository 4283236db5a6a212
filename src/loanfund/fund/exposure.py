"""Exposure and leverage: what the fund stands behind, per bank and in total, from the portfolio
aggregates and the ledger (never by loading loans), and the coverage check new lending must pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund import rules
from loanfund.banks.models import Bank
from loanfund.core.config import Settings
from loanfund.core.errors import Conflict
from loanfund.core.money import share_of, yuan_str, yuan_text
from loanfund.fund import breakers
from loanfund.fund import service as fund_service
from loanfund.portfolio import service as portfolio
from loanfund.rules import npl_ratio, ratio


@dataclass(frozen=True)
class BankExposure:
    bank_id: int
    bank_code: str
    fund_share: Decimal
    covered_fen: int
    overdue_fen: int
    npl_fen: int
    compensated_fen: int
    max_liability_fen: int

    @property
    def npl_ratio(self) -> Decimal | None:
        return npl_ratio(self.npl_fen, self.compensated_fen, self.covered_fen)


@dataclass(frozen=True)
class Exposure:
    as_of: date | None
    banks: list[BankExposure]
    fund_balance_fen: int
    available_fen: int
    leverage_cap: Decimal
    settings: Settings

    @property
    def covered_fen(self) -> int:
        return sum(b.covered_fen for b in self.banks)

    @property
    def max_liability_fen(self) -> int:
        return sum(b.max_liability_fen for b in self.banks)

    @property
    def leverage(self) -> Decimal | None:
        return ratio(self.covered_fen, self.fund_balance_fen)

    @property
    def coverage_ratio(self) -> Decimal | None:
        return ratio(self.fund_balance_fen, self.max_liability_fen)

    @property
    def headroom_fen(self) -> int:
        """How much more covered principal the leverage cap allows."""
        return headroom(self.fund_balance_fen, self.covered_fen, self.settings)


def headroom(fund_balance_fen: int, covered_fen: int, settings: Settings) -> int:
    """Covered principal the leverage cap still admits: the limit less what is covered, never below 0."""
    return max(0, rules.leverage_limit(fund_balance_fen, settings) - covered_fen)


def exposure(
    session: Session, settings: Settings, *, as_of: date | None = None, bank_id: int | None = None
) -> Exposure:
    stocks = portfolio.stocks_by_bank(session, as_of, bank_id)
    stmt = select(Bank).order_by(Bank.id)
    if bank_id is not None:
        stmt = stmt.where(Bank.id == bank_id)
    lines = []
    for bank in session.scalars(stmt):
        s = stocks.get(bank.id, portfolio.Stocks())
        lines.append(
            BankExposure(
                bank_id=bank.id,
                bank_code=bank.code,
                fund_share=bank.fund_share,
                covered_fen=s.covered_fen,
                overdue_fen=s.overdue_fen,
                npl_fen=s.npl_fen,
                compensated_fen=s.compensated_fen,
                max_liability_fen=share_of(s.covered_fen, bank.fund_share),
            )
        )
    position = fund_service.fund_position(session, as_of)
    return Exposure(
        as_of=as_of,
        banks=lines,
        fund_balance_fen=position.balance_fen,
        available_fen=position.available_fen,
        leverage_cap=settings.leverage_cap,
        settings=settings,
    )


@dataclass
class CoverageGate:
    """The coverage check for one transaction. The first check locks the fund's cash rows (so concurrent
    lending queues instead of overshooting the cap) and reads the covered total and the breakers; later
    checks in the same transaction add to it, so a batch of thousands asks the database once."""

    session: Session
    settings: Settings
    _covered: int | None = None
    _limit: int = 0
    _balance: int = 0
    _stopped: bool = False
    _checked_banks: dict[int, bool] = field(default_factory=dict)  # bank → its breaker suspends it

    def admit(self, bank: Bank, amount_fen: int, day: date, *, counts: bool = True) -> None:
        """May `bank` add `amount_fen` of covered principal on `day`? Refuses with `coverage_stopped`
        (programme breaker), `coverage_suspended` (the bank's breaker) or `fund_leverage_exceeded`.
        `counts`: the amount becomes covered principal now (a disbursement), not just a contract."""
        if self._covered is None:  # first check: lock the fund's cash, read the position once
            position = fund_service.lock_fund(self.session)
            self._balance = position.balance_fen
            self._limit = rules.leverage_limit(position.balance_fen, self.settings)
            self._covered = portfolio.covered_total(self.session)
            self._stopped = breakers.programme_stopped(self.session)
        if self._stopped:
            raise Conflict(
                "Compensation paid has reached the programme's limit; new coverage is stopped until "
                "bureau staff lift the programme's circuit breaker",
                code="coverage_stopped",
            )
        suspended = self._checked_banks
        bank_id = bank.id
        if bank_id not in suspended:
            suspended[bank_id] = breakers.bank_suspended(self.session, bank_id)
        if suspended[bank_id]:
            raise Conflict(
                f"Coverage for bank {bank.code} is suspended by its circuit breaker",
                code="coverage_suspended",
            )
        if self._covered + amount_fen > self._limit:
            raise Conflict(
                f"Covered principal would reach {yuan_text(self._covered + amount_fen)}, past "
                f"{self.settings.leverage_cap}× the fund's balance ({yuan_text(self._balance)})",
                code="fund_leverage_exceeded",
                details={
                    "covered": yuan_str(self._covered),
                    "limit": yuan_str(self._limit),
                    "requested": yuan_str(amount_fen),
                },
            )
        if counts:
            self._covered += amount_fen
