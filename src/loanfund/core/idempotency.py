"""Idempotency for bank POSTs and the public application, after Stripe's contract.

A request with `Idempotency-Key` (≤ 255 characters, scoped to the bank; the keyless public application
and the portal's form share one public scope) is executed once. Its first
response — status and body, success or business refusal — is stored in the same transaction as the work
it did and replayed on a retry with `Idempotent-Replayed: true`. The same key with a different request is
422 `idempotency_key_reused`; a retry while the first is still running is 409
`idempotency_request_in_progress` (a transaction-scoped advisory lock on PostgreSQL; SQLite runs one
writer at a time, so there the retry simply waits and then replays). A crash mid-request rolls back the
work and the key together, so the retry runs afresh. Keys live `idempotency_ttl_hours` (≥ 24 h).

A secret in an answer (the status token of an application) is not stored with it: `Sealed` derives it
from the server's secret key, the idempotency key and a random salt, and the stored answer holds only
the salt in its place, so that a replay gives back the same bytes without any table holding the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import ForeignKey, Index, String, Table, Text, delete, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from loanfund.core.auth import BankCaller
from loanfund.core.bulk import select_matching
from loanfund.core.config import Settings
from loanfund.core.db import Base, DbSession, utcnow
from loanfund.core.errors import Conflict, InvalidInput, LoanfundError, error_payload

REPLAY_HEADER = "Idempotent-Replayed"


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        Index("uq_idempotency_keys_bank_key", "bank_id", "key", unique=True),
        # the public scope (no bank): keys of the public application and of the portal's form
        Index(
            "uq_idempotency_keys_public_key",
            "key",
            unique=True,
            sqlite_where=text("bank_id IS NULL"),
            postgresql_where=text("bank_id IS NULL"),
        ),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int | None] = mapped_column(ForeignKey("banks.id"))  # None: the public scope
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


def _lock_key(bank_id: int | None, key: str) -> int:
    scope = "public" if bank_id is None else bank_id
    digest = hashlib.sha256(f"{scope}:{key}".encode()).digest()
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


def try_lock_many(session: Session, keys: Sequence[tuple[int | None, str]]) -> list[bool]:
    """Take the in-progress lock of each (bank, key) without waiting, in one statement: whether each was
    taken (always, on SQLite, which runs one writer at a time)."""
    if not keys or session.get_bind().dialect.name != "postgresql":
        return [True] * len(keys)
    got = session.execute(
        text(
            "SELECT pg_try_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[]))"
            " WITH ORDINALITY AS u(k, n) ORDER BY n"
        ),
        {"keys": [_lock_key(bank_id, key) for bank_id, key in keys]},
    ).scalars()
    return [bool(g) for g in got]


def stored_keys(session: Session, keys: Collection[tuple[int, str]]) -> set[tuple[int, str]]:
    """Those of the (bank, key) pairs that have a stored record (expired or not)."""
    table: Table = IdempotencyRecord.__table__  # type: ignore[assignment]
    rows = [{"bank_id": b, "key": k} for b, k in keys]
    return {(b, k) for b, k in select_matching(session, table, ("bank_id", "key"), rows, ("bank_id", "key"))}


class Sealed:
    """Secrets of one idempotent request that its stored answer must not hold.

    `issue(kind)` gives a new secret such as a status token (`lft_…`), derived from the server's secret
    key, the idempotency key and a random salt; `seal` replaces it in the answer to store with a marker
    holding only the salt, `unseal` derives it back for a replay."""

    _MARKER = re.compile(r"~sealed:([a-z]{2,8}):([0-9a-f]{32})~")

    def __init__(self, settings: Settings, key: str) -> None:
        self._secret = settings.secret_key.get_secret_value().encode()
        self._key = key
        self._issued: dict[str, str] = {}

    def _derive(self, kind: str, salt: str) -> str:
        mac = hmac.new(self._secret, f"sealed:{kind}:{salt}:{self._key}".encode(), hashlib.sha256).digest()
        return f"{kind}_{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"

    def issue(self, kind: str) -> str:
        salt = secrets.token_hex(16)
        value = self._derive(kind, salt)
        self._issued[value] = f"~sealed:{kind}:{salt}~"
        return value

    def seal(self, text: str) -> str:
        for value, marker in self._issued.items():
            text = text.replace(value, marker)
        return text

    def unseal(self, text: str) -> str:
        return self._MARKER.sub(lambda m: self._derive(m.group(1), m.group(2)), text)


class Idempotency:
    """Per-request helper: `run(body, status, produce)` executes `produce` at most once per key."""

    def __init__(
        self,
        session: Session,
        settings: Settings,
        bank_id: int | None,
        key: str | None,
        method: str,
        path: str,
    ):
        self.session = session
        self.settings = settings
        self.bank_id = bank_id
        self.key = key
        self.method = method
        self.path = path

    def fingerprint(self, body: Any) -> str:
        return request_fingerprint(self.method, self.path, body)

    def sealed(self) -> Sealed | None:
        """The helper that keeps this request's secrets out of its stored answer (None without a key)."""
        return Sealed(self.settings, self.key) if self.key is not None else None

    def run(
        self,
        body: Any,
        status_code: int,
        produce: Callable[[], BaseModel | Any],
        *,
        fingerprint: str | None = None,
        sealed: Sealed | None = None,
        wait_s: float = 0.0,
    ) -> Response:
        """`wait_s`: how long a duplicate may wait for the first request of its key to finish (and then
        replay its answer) before it is refused as in progress; a form posted twice by a double click
        waits, an API client is told to retry."""
        if self.key is None:
            return _json(status_code, produce())
        fingerprint = fingerprint or self.fingerprint(body)
        deadline = time.monotonic() + wait_s
        while not self._try_lock():
            if time.monotonic() >= deadline:
                raise Conflict(
                    "A request with this Idempotency-Key is still being processed; retry shortly",
                    code="idempotency_request_in_progress",
                    headers={"Retry-After": "1"},
                )
            time.sleep(0.1)
        now = utcnow()
        scope = (
            IdempotencyRecord.bank_id.is_(None)
            if self.bank_id is None
            else IdempotencyRecord.bank_id == self.bank_id
        )
        existing = self.session.scalar(
            select(IdempotencyRecord).where(scope, IdempotencyRecord.key == self.key)
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
            stored = existing.response_body
            return Response(
                content=sealed.unseal(stored) if sealed is not None else stored,
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
        stored = sealed.seal(body_text) if sealed is not None else body_text
        self.session.add(
            IdempotencyRecord(
                **record_row(self.settings, self.bank_id, self.key, fingerprint, status, stored, now)
            )
        )
        self.session.flush()
        return Response(content=body_text, status_code=status, media_type="application/json")

    def _try_lock(self) -> bool:
        assert self.key is not None
        return try_lock_many(self.session, [(self.bank_id, self.key)])[0]


def _json(status_code: int, result: Any) -> Response:
    return JSONResponse(jsonable_encoder(result), status_code=status_code)


async def _idempotency(
    request: Request,
    session: DbSession,
    caller: BankCaller,
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
    assert caller.bank_id is not None
    return Idempotency(session, settings, caller.bank_id, idempotency_key, request.method, request.url.path)


IdempotencyDep = Annotated[Idempotency, Depends(_idempotency)]


async def _public_idempotency(
    request: Request,
    session: DbSession,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Makes a retry safe: the first response is stored and replayed for 48 h. Use a "
            "random value (a UUID): keys of keyless callers share one scope",
        ),
    ] = None,
) -> Idempotency:
    settings: Settings = request.app.state.settings
    return Idempotency(session, settings, None, idempotency_key, request.method, request.url.path)


PublicIdempotencyDep = Annotated[Idempotency, Depends(_public_idempotency)]


def purge_expired(session: Session) -> int:
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)
