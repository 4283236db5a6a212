"""Exposure, leverage and circuit breakers: what the fund stands behind, and whether it may take on more."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from loanfund.banks import service as bank_service
from loanfund.core.auth import AnyCaller, BureauOfficer, SettingsDep
from loanfund.core.clock import business_today
from loanfund.core.dates import IsoDate
from loanfund.core.db import DbSession
from loanfund.core.errors import responses
from loanfund.core.idempotency import IdempotencyDep
from loanfund.core.money import YuanStr, yuan_str
from loanfund.core.params import IdPath
from loanfund.fund import breakers
from loanfund.fund.exposure import BankExposure, exposure

router = APIRouter(prefix="/api/v1/fund")


def _r(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


class BankExposureRead(BaseModel):
    bank_id: int
    bank_code: str
    fund_share: str
    covered_outstanding: YuanStr = Field(
        description="Outstanding principal of active, overdue and non-performing loans"
    )
    overdue_outstanding: YuanStr
    npl_outstanding: YuanStr
    compensated_outstanding: YuanStr = Field(description="Compensated loans not yet written off")
    max_liability: YuanStr = Field(description="covered outstanding × the bank's fund share")
    npl_ratio: str | None = Field(description="(non-performing + compensated) ÷ (covered + compensated)")

    @classmethod
    def of(cls, b: BankExposure) -> BankExposureRead:
        return cls(
            bank_id=b.bank_id,
            bank_code=b.bank_code,
            fund_share=f"{b.fund_share:.4f}",
            covered_outstanding=yuan_str(b.covered_fen),
            overdue_outstanding=yuan_str(b.overdue_fen),
            npl_outstanding=yuan_str(b.npl_fen),
            compensated_outstanding=yuan_str(b.compensated_fen),
            max_liability=yuan_str(b.max_liability_fen),
            npl_ratio=_r(b.npl_ratio),
        )


class ExposureTotal(BaseModel):
    covered_outstanding: YuanStr
    max_liability: YuanStr
    fund_balance: YuanStr
    available_balance: YuanStr
    leverage: str | None = Field(description="covered outstanding ÷ fund balance")
    leverage_cap: str
    headroom: YuanStr = Field(description="Covered principal the cap still admits")
    coverage_ratio: str | None = Field(description="fund balance ÷ maximum liability")


class ExposureRead(BaseModel):
    as_of: date | None
    banks: list[BankExposureRead]
    total: ExposureTotal | None = Field(description="Programme-wide figures (bureau staff only)")


@router.get(
    "/exposure",
    responses=responses(401, 403, 422, 503),
    tags=["bureau", "bank"],
    summary="Covered outstanding, maximum liability, leverage and coverage; a bank sees its own line",
)
def read_exposure(
    session: DbSession,
    settings: SettingsDep,
    caller: AnyCaller,
    as_of: Annotated[IsoDate | None, Query(description="End of this business date; default now")] = None,
) -> ExposureRead:
    view = exposure(session, settings, as_of=as_of, bank_id=caller.bank_id if caller.is_bank else None)
    total = None
    if caller.is_staff:
        total = ExposureTotal(
            covered_outstanding=yuan_str(view.covered_fen),
            max_liability=yuan_str(view.max_liability_fen),
            fund_balance=yuan_str(view.fund_balance_fen),
            available_balance=yuan_str(view.available_fen),
            leverage=_r(view.leverage),
            leverage_cap=str(view.leverage_cap),
            headroom=yuan_str(view.headroom_fen),
            coverage_ratio=_r(view.coverage_ratio),
        )
    return ExposureRead(as_of=as_of, banks=[BankExposureRead.of(b) for b in view.banks], total=total)


class BreakerRead(BaseModel):
    scope: str = Field(description="bank, or programme (the programme-wide stop)")
    bank_id: int | None
    bank_code: str | None
    state: breakers.BreakerState
    ratio: str | None = Field(description="A bank's NPL ratio; the programme's compensation ÷ fund size")
    lifted: bool
    reason: str | None
    changed_at: datetime | None

    @classmethod
    def of(cls, b: breakers.Breaker, bank_code: str | None) -> BreakerRead:
        return cls(
            scope=b.scope,
            bank_id=b.bank_id,
            bank_code=bank_code,
            state=b.state,
            ratio=_r(b.ratio),
            lifted=bool(b.lifted),
            reason=b.reason,
            changed_at=b.changed_at,
        )


class ProgrammeRead(BaseModel):
    year: int
    compensation_paid: YuanStr
    fund_size: YuanStr
    ratio: str | None
    stop_ratio: str
    coverage_stopped: bool = Field(
        description="The programme breaker has stopped new coverage: it holds until an officer lifts it"
    )


class BreakersRead(BaseModel):
    breakers: list[BreakerRead]
    programme: ProgrammeRead | None = Field(
        description="This year's programme-wide check (bureau staff only)"
    )


class LiftBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "NPL ratio under the warning line after recoveries"}]},
    )

    reason: Annotated[str, Field(min_length=3, max_length=2000)]


@router.get(
    "/breakers",
    responses=responses(401, 403, 422, 503),
    tags=["bureau", "bank"],
    summary="Circuit breakers per bank and programme-wide",
)
def read_breakers(session: DbSession, settings: SettingsDep, caller: AnyCaller) -> BreakersRead:
    if caller.is_bank:
        rows = breakers.listing(session, caller.bank_id)
        return BreakersRead(breakers=[BreakerRead.of(b, code) for b, code in rows], programme=None)
    rows = breakers.listing(session)
    today = business_today(settings)
    paid, size, ratio = breakers.programme_ratio(session, today)
    programme = ProgrammeRead(
        year=today.year,
        compensation_paid=yuan_str(paid),
        fund_size=yuan_str(size),
        ratio=_r(ratio),
        stop_ratio=str(settings.annual_compensation_stop_ratio),
        coverage_stopped=rows[0][0].state is breakers.BreakerState.stopped,
    )
    return BreakersRead(breakers=[BreakerRead.of(b, code) for b, code in rows], programme=programme)


@router.post(
    "/breakers/programme/lift",
    response_model=BreakerRead,
    responses=responses(401, 403, 409, 422, 503),
    tags=["bureau"],
    summary="Lift the programme-wide stop of new coverage, with a reason",
)
def lift_programme_breaker(
    body: LiftBody, session: DbSession, caller: BureauOfficer, idem: IdempotencyDep
) -> Response:
    return idem.run(
        body, 200, lambda: BreakerRead.of(breakers.lift_programme(session, caller.actor, body.reason), None)
    )


@router.post(
    "/breakers/{bank_id}/lift",
    response_model=BreakerRead,
    responses=responses(401, 403, 404, 409, 422, 503),
    tags=["bureau"],
    summary="Lift a bank's suspension, with a reason",
)
def lift_breaker(
    bank_id: IdPath,
    body: LiftBody,
    session: DbSession,
    settings: SettingsDep,
    caller: BureauOfficer,
    idem: IdempotencyDep,
) -> Response:
    def produce() -> BreakerRead:
        bank = bank_service.get_bank(session, bank_id)
        return BreakerRead.of(breakers.lift(session, settings, caller.actor, bank_id, body.reason), bank.code)

    return idem.run(body, 200, produce)
