"""One error shape for every failure: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic_core import PydanticCustomError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from loanfund.core.context import request_id_var

log = logging.getLogger("loanfund.errors")


class LoanfundError(Exception):
    status_code: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.details = details
        self.headers = headers


class NotFound(LoanfundError):
    status_code = 404
    code = "not_found"


class Conflict(LoanfundError):
    status_code = 409
    code = "conflict"


class Forbidden(LoanfundError):
    status_code = 403
    code = "forbidden"


class Unauthorized(LoanfundError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str = "A valid API key is required", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class InvalidInput(LoanfundError):
    """A well-formed request that breaks a field-level rule (422, naming the field)."""

    status_code = 422
    code = "invalid_input"


def field_error(code: str, message: str, field: str, **extra: Any) -> InvalidInput:
    """The 422 of a rule that refuses one field: `code` for machines, `message` for people, and the field
    named in `details` (with any `extra` figures a client can act on, e.g. the credit line)."""
    return InvalidInput(message, code=code, details=[{"field": field, "message": message, **extra}])


# Codes of the validation errors that say more than "malformed": a 422 whose errors are all of one of
# these kinds carries it as its error code instead of `validation_error`.
_SPECIFIC_VALIDATION_CODES: set[str] = set()


def value_error(code: str, message: str) -> PydanticCustomError:
    """A schema-level refusal with its own code (raise it from a pydantic validator)."""
    _SPECIFIC_VALIDATION_CODES.add(code)
    return PydanticCustomError(code, message)


class RateLimited(LoanfundError):
    status_code = 429
    code = "rate_limited"


class ServiceUnavailable(LoanfundError):
    status_code = 503
    code = "service_unavailable"


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    """The envelope of every error response."""

    error: ErrorBody


def error_payload(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(
    status_code: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_payload(code, message, details), status_code=status_code, headers=headers)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entry declaring the error envelope for each status code."""
    descriptions = {
        400: "Bad request",
        401: "Missing, wrong or revoked key",
        403: "The caller's role may not do this",
        404: "Absent, or not visible to the caller",
        409: "Refused by a business rule or the record's state",
        413: "Request body too large",
        422: "Malformed or invalid input",
        429: "Too many requests",
        503: "Database unavailable",
    }
    return {c: {"model": ErrorResponse, "description": descriptions.get(c, "Error")} for c in codes}


def validation_details(errors: Any) -> list[dict[str, Any]]:
    """pydantic's errors as the `details` of a 422: the field, its location, the message and type."""
    out = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ())]
        field = ".".join(p for p in loc if p not in ("body", "query", "path", "header"))
        out.append({"field": field or None, "loc": loc, "message": e.get("msg"), "type": e.get("type")})
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoanfundError)
    async def _loanfund(_: Request, exc: LoanfundError) -> JSONResponse:
        return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(exc.errors())
        fields = sorted({d["field"] for d in details if d["field"]})
        msg = "Invalid request" + (f": check {', '.join(fields)}" if fields else "")
        kinds = {d["type"] for d in details}
        code = kinds.pop() if len(kinds) == 1 and kinds <= _SPECIFIC_VALIDATION_CODES else "validation_error"
        return error_response(422, code, msg, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 400:
            # The framework's only 400 is a body it could not read at all (e.g. JSON that is not
            # UTF-8): a malformed body like any other, so the same 422 as broken JSON.
            details = [
                {"field": None, "loc": ["body"], "message": str(exc.detail), "type": "body_unreadable"}
            ]
            return error_response(
                422, "validation_error", "Invalid request: the body cannot be read", details
            )
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error"
        )
        return error_response(exc.status_code, code, str(exc.detail), None, headers)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        log.warning("integrity error: %s", exc.orig.__class__.__name__)
        return error_response(409, "conflict", "The change conflicts with an existing record")

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the schema let through: a NUL character in a text (PostgreSQL
        # stores none), a number or date out of its range. The value came from the request: a 422.
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else "value out of range"
        log.warning("value refused by the database: %s", reason)
        return error_response(
            422, "invalid_value", "A value in the request cannot be stored", [{"message": reason}]
        )

    @app.exception_handler(OperationalError)
    async def _operational(_: Request, exc: OperationalError) -> JSONResponse:
        log.error(
            "database error: %s: %s",
            type(exc.orig).__name__,
            str(exc.orig).splitlines()[0] if exc.orig else "",
        )
        return error_response(
            503,
            "database_unavailable",
            "The database is not answering; retry later",
            None,
            {"Retry-After": "5"},
        )

    @app.exception_handler(PoolTimeoutError)
    async def _pool(_: Request, exc: PoolTimeoutError) -> JSONResponse:
        log.error("database pool exhausted")
        return error_response(
            503, "database_busy", "The service is busy; retry later", None, {"Retry-After": "2"}
        )

    @app.exception_handler(DBAPIError)
    async def _dbapi(_: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return error_response(
                503,
                "database_unavailable",
                "The database is not answering; retry later",
                None,
                {"Retry-After": "5"},
            )
        log.exception("database error", exc_info=exc)
        rid = request_id_var.get()
        return error_response(500, "internal_error", "Internal error", {"request_id": rid})
