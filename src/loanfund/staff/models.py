from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from loanfund.core.db import Base, TimestampMixin, utcnow


class Role(enum.StrEnum):
    analyst = "analyst"  # reads everything, changes nothing
    officer = "officer"  # banks, enterprises, evaluations, contributions; reviews claims
    approver = "approver"  # confirms payouts, never of a claim they reviewed
    admin = "admin"  # staff, keys, settings


class Staff(TimestampMixin, Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16, validate_strings=True))
    active: Mapped[bool] = mapped_column(default=True)
    # console sign-in (staff/signin.py): a login name and an Argon2id hash; both optional, as a staff
    # member may use only API keys
    login: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None]
    # time-based one-time codes: the base32 secret, and the time step of the last code accepted (a code
    # is accepted once). `totp_enabled_at` is set when the first code has confirmed the enrolment.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None]
    totp_last_step: Mapped[int | None]


class StaffSession(Base):
    """A console session. The browser holds a random token; only its HMAC is stored. A session ends when
    it is revoked (sign-out; every session of a person at once when they are deactivated or change their
    password), after `console_idle_timeout_minutes` without a request, or `console_session_max_hours`
    after sign-in. Every request reads this row, so an end applies at once in every process."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    # signed in with a password but not yet with the one-time code that the role requires (or, when the
    # role requires one and none is enrolled, until the enrolment is confirmed): only that step is open
    second_factor_pending: Mapped[bool] = mapped_column(default=False)
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class SignInFailure(Base):
    """A failed console sign-in, counted against the login and the address it came from (the throttle).
    Rows older than the window are deleted as new failures come in."""

    __tablename__ = "staff_signin_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ApiKey(Base):
    """A bearer key. Only an HMAC-SHA256 of the key is stored; the key itself is shown once."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("(bank_id IS NULL) <> (staff_id IS NULL)", name="one_owner"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    bank_id: Mapped[int | None] = mapped_column(ForeignKey("banks.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
