from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from loanfund import __version__
from loanfund.core.migrations import current_revision

router = APIRouter(tags=["public"])


class Health(BaseModel):
    status: str
    version: str


class Ready(BaseModel):
    status: str
    database: str
    revision: str | None
    head: str | None


@router.get("/healthz", summary="The process is up")
def healthz() -> Health:
    return Health(status="ok", version=__version__)


@router.get(
    "/readyz",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "Not ready"}},
    summary="Ready for traffic",
)
def readyz(request: Request) -> JSONResponse:
    head = request.app.state.head_revision
    try:
        with request.app.state.sessionmaker() as session:
            current = current_revision(session.connection())
    except SQLAlchemyError:
        body = Ready(status="unavailable", database="unreachable", revision=None, head=head)
        return JSONResponse(body.model_dump(), status_code=503)
    if current != head:
        body = Ready(status="unavailable", database="not migrated to head", revision=current, head=head)
        return JSONResponse(body.model_dump(), status_code=503)
    return JSONResponse(Ready(status="ok", database="ok", revision=current, head=head).model_dump())
