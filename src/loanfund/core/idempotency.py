"""Idempotency for every POST (and PATCH) that changes state, after Stripe's contract.

A request with `Idempotency-Key` (≤ 255 characters, scoped to its caller: the bank, or the bureau staff
member) is executed once. Its first
response — status and body, success or business refusal — is stored in the same transaction as the work
it did and replayed on a retry with `Idempotent-Replayed: true`. The same key with a different request is
422 `idempotency_key_reused`; a retry while the first is still running is 409
`idempotency_request_in_progress` (a transaction-scoped advisory lock on PostgreSQL; SQLite runs one
writer at a time, so there the retry simply waits and then replays). A crash mid-request rolls back the
work and the key together, so the retry runs afresh. Keys live `idempotency_ttl_hours` (≥ 24 h).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import ForeignKey, Index, String, Table, Text, delete, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from loanfund.core.auth import AnyCaller
from loanfund.core.bulk import select_matching
from loanfund.core.config import Settings
from loanfund.core.db import Base, DbSession, utcnow
from loanfund.core.errors import Conflict, InvalidInput, LoanfundError, error_payload

REPLAY_HEADER = "Idempotent-Replayed"


class IdempotencyRecord(Base):
    """A first response, stored under its caller's key: a bank's (`bank_id`) or a staff member's
    (`staff_id`)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        Index("uq_idempotency_keys_bank_key", "bank_id", "key", unique=True),
        Index("uq_idempotency_keys_staff_key", "staff_id", "key", unique=True),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int | None] = mapped_column(ForeignKey("banks.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int]
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


def request_fingerprint(method: str, path: str, body: Any) -> str:
    """A digest of the request: equal for the same method, path and body, different otherwise.

    A model is its JSON dump, written by pydantic in one pass (fields in declaration order, every field
    given or defaulted, values in their JSON form): two bodies that validate to the same model give the
    same text, whatever the order of their fields or their spacing (a dict-valued field keeps its keys
    in the order sent; no idempotent body has one). Anything else is canonical JSON with sorted keys."""
    if isinstance(body, BaseModel):
        canonical = body.model_dump_json(by_alias=True).encode()
    else:
        plain = jsonable_encoder(body)
        canonical = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(f"{method} {path}\n".encode() + canonical).hexdigest()


def _lock_key(owner: str, key: str) -> int:
    """The advisory lock of a key: `owner` is the bank's id, or `staff:<id>` for a staff member."""
    digest = hashlib.sha256(f"{owner}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def response_text(result: Any) -> str:
    """A stored (and sent) response body: compact JSON, non-ASCII as is (as `JSONResponse` writes it).
    A model is serialised by pydantic directly, which gives the same text as through
    `jsonable_encoder` and `json.dumps`, faster."""
    if isinstance(result, BaseModel):
        return result.model_dump_json()
    return json.dumps(jsonable_encoder(result), ensure_ascii=False, separators=(",", ":"))


def record_row(
    settings: Settings, bank_id: int | None, key: str, fingerprint: str, status: int, body: str, now: datetime
) -> dict[str, Any]:
    """The `idempotency_keys` row that stores a first response."""
    return {
        "bank_id": bank_id,
        "key": key,
        "request_hash": fingerprint,
        "response_status": status,
        "response_body": body,
        "created_at": now,
        "expires_at": now + timedelta(hours=settings.idempotency_ttl_hours),
    }


def try_lock_many(session: Session, keys: Sequence[tuple[int, str]]) -> list[bool]:
    """Take the in-progress lock of each (bank, key) without waiting, in one statement: whether each was
    taken (always, on SQLite, which runs one writer at a time)."""
    return _try_locks(session, [_lock_key(str(bank_id), key) for bank_id, key in keys])


def _try_locks(session: Session, locks: list[int]) -> list[bool]:
    if not locks or session.get_bind().dialect.name != "postgresql":
        return [True] * len(locks)
    got = session.execute(
        text(
            "SELECT pg_try_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[]))"
            " WITH ORDINALITY AS u(k, n) ORDER BY n"
        ),
        {"keys": locks},
    ).scalars()
    return [bool(g) for g in got]


def stored_keys(session: Session, keys: Collection[tuple[int, str]]) -> set[tuple[int, str]]:
    """Those of the (bank, key) pairs that have a stored record (expired or not)."""
    table: Table = IdempotencyRecord.__table__  # type: ignore[assignment]
    rows = [{"bank_id": b, "key": k} for b, k in keys]
    return {(b, k) for b, k in select_matching(session, table, ("bank_id", "key"), rows, ("bank_id", "key"))}


class Idempotency:
    """Per-request helper: `run(body, status, produce)` executes `produce` at most once per key.

    Keys belong to the caller: a bank (`bank_id`) or a bureau staff member (`staff_id`)."""

    def __init__(
        self,
        session: Session,
        settings: Settings,
        bank_id: int | None,
        key: str | None,
        method: str,
        path: str,
        *,
        staff_id: int | None = None,
    ):
        assert (bank_id is None) != (staff_id is None)
        self.session = session
        self.settings = settings
        self.bank_id = bank_id
        self.staff_id = staff_id
        self.key = key
        self.method = method
        self.path = path

    def fingerprint(self, body: Any) -> str:
        return request_fingerprint(self.method, self.path, body)

    def run(
        self,
        body: Any,
        status_code: int,
        produce: Callable[[], BaseModel | Any],
        *,
        fingerprint: str | None = None,
    ) -> Response:
        if self.key is None:
            return _json(status_code, produce())
        fingerprint = fingerprint or self.fingerprint(body)
        self._lock()
        now = utcnow()
        owner = (
            IdempotencyRecord.bank_id == self.bank_id
            if self.bank_id is not None
            else IdempotencyRecord.staff_id == self.staff_id
        )
        existing = self.session.scalar(
            select(IdempotencyRecord).where(owner, IdempotencyRecord.key == self.key)
        )
        if existing is not None and existing.expires_at <= now:
            self.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == existing.id))
            existing = None
        if existing is not None:
            if existing.request_hash != fingerprint:
                raise InvalidInput(
                    "This Idempotency-Key was used for a different request",
                    code="idempotency_key_reused",
                    details=[{"field": "Idempotency-Key", "message": "reused with a different request"}],
                )
            return Response(
                content=existing.response_body,
                status_code=existing.response_status,
                media_type="application/json",
                headers={REPLAY_HEADER: "true"},
            )
        nested = self.session.begin_nested()
        try:
            result = produce()
            self.session.flush()
            nested.commit()
            status, body_text = status_code, response_text(result)
        except LoanfundError as exc:
            nested.rollback()
            status = exc.status_code
            body_text = response_text(error_payload(exc.code, exc.message, exc.details))
        row = record_row(self.settings, self.bank_id, self.key, fingerprint, status, body_text, now)
        self.session.add(IdempotencyRecord(**row, staff_id=self.staff_id))
        self.session.flush()
        return Response(content=body_text, status_code=status, media_type="application/json")

    def _lock(self) -> None:
        assert self.key is not None
        owner = str(self.bank_id) if self.bank_id is not None else f"staff:{self.staff_id}"
        if not _try_locks(self.session, [_lock_key(owner, self.key)])[0]:
            raise Conflict(
                "A request with this Idempotency-Key is still being processed; retry shortly",
                code="idempotency_request_in_progress",
                headers={"Retry-After": "1"},
            )


def _json(status_code: int, result: Any) -> Response:
    return JSONResponse(jsonable_encoder(result), status_code=status_code)


async def _idempotency(
    request: Request,
    session: DbSession,
    caller: AnyCaller,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Makes a retry safe: the first response is stored and replayed for 48 h",
        ),
    ] = None,
) -> Idempotency:
    settings: Settings = request.app.state.settings
    return Idempotency(
        session,
        settings,
        caller.bank_id if caller.is_bank else None,
        idempotency_key,
        request.method,
        request.url.path,
        staff_id=caller.staff_id if caller.is_staff else None,
    )


IdempotencyDep = Annotated[Idempotency, Depends(_idempotency)]


def purge_expired(session: Session) -> int:
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)
