from __future__ import annotations

from fastapi import APIRouter, Response, status

from loanfund.core.auth import AnyCaller, BureauOfficer
from loanfund.core.db import DbSession
from loanfund.core.errors import responses
from loanfund.core.idempotency import IdempotencyDep
from loanfund.core.money import yuan_str
from loanfund.rates import service
from loanfund.rates.models import LprRate
from loanfund.rates.schemas import CreditLineTableCreate, CreditLineTableRead, LprCreate, LprRead

router = APIRouter(prefix="/api/v1/rates")
_ERR = responses(401, 403, 409, 422, 503)


def _lpr(r: LprRate) -> LprRead:
    return LprRead(effective_date=r.effective_date, rate_pct=f"{r.rate_pct:.4f}", kind=r.kind)


@router.get("/lpr", responses=_ERR, tags=["bank", "bureau"], summary="The dated one-year LPR table")
def list_lpr(session: DbSession, caller: AnyCaller) -> list[LprRead]:
    return [_lpr(r) for r in service.list_lpr(session)]


@router.post(
    "/lpr",
    status_code=status.HTTP_201_CREATED,
    response_model=LprRead,
    responses=_ERR,
    tags=["bureau"],
    summary="Add an LPR",
)
def add_lpr(body: LprCreate, session: DbSession, caller: BureauOfficer, idem: IdempotencyDep) -> Response:
    def produce() -> LprRead:
        return _lpr(
            service.add_lpr(
                session,
                caller.actor,
                effective_date=body.effective_date,
                rate_pct=body.rate_pct,
                kind=body.kind,
            )
        )

    return idem.run(body, status.HTTP_201_CREATED, produce)


@router.get(
    "/credit-lines", responses=_ERR, tags=["bank", "bureau"], summary="Credit line by grade, by version"
)
def list_credit_lines(session: DbSession, caller: AnyCaller) -> list[CreditLineTableRead]:
    return [
        CreditLineTableRead(effective_date=d, lines={g: yuan_str(v) for g, v in lines.items()})
        for d, lines in service.list_credit_line_tables(session).items()
    ]


@router.post(
    "/credit-lines",
    status_code=status.HTTP_201_CREATED,
    response_model=CreditLineTableRead,
    responses=_ERR,
    tags=["bureau"],
    summary="Add a credit-line table version",
)
def add_credit_lines(
    body: CreditLineTableCreate, session: DbSession, caller: BureauOfficer, idem: IdempotencyDep
) -> Response:
    def produce() -> CreditLineTableRead:
        rows = service.add_credit_line_table(
            session,
            caller.actor,
            effective_date=body.effective_date,
            lines={str(g): v for g, v in body.lines.items()},
        )
        return CreditLineTableRead(
            effective_date=body.effective_date, lines={r.grade: yuan_str(r.line_fen) for r in rows}
        )

    return idem.run(body, status.HTTP_201_CREATED, produce)
