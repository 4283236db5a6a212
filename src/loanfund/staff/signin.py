"""Console sign-in for bureau staff: login names, passwords, one-time codes, sessions, the throttle.

* Passwords are hashed with Argon2id (argon2-cffi's defaults, re-hashed on sign-in when they change) and
  must be at least `console_password_min_length` characters long.
* A failed sign-in is stored (`SignInFailure`) and counted against its login and its address: past
  `console_signin_failures_per_login` / `_per_address` in `console_signin_failure_window_s`, sign-in is
  refused with 429 and the wait, whatever the password. Stored in the database, so every worker process
  counts the same failures.
* A session is a random token in an `HttpOnly` cookie; the database holds its HMAC (`StaffSession`) and
  is read on every request, so sign-out, deactivation and a changed password end sessions at once in
  every process. A session also ends after `console_idle_timeout_minutes` without a request and
  `console_session_max_hours` after sign-in.
* One-time codes (TOTP, RFC 6238, 30-second steps, one step of clock drift either way) are enrolled per
  staff member; the roles in `console_totp_roles` must use one. A code is accepted once.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from loanfund.audit.service import Actor, record
from loanfund.core.config import Settings
from loanfund.core.db import utcnow
from loanfund.core.errors import Conflict, InvalidInput, RateLimited, Unauthorized
from loanfund.core.security import hash_secret, new_secret
from loanfund.staff.models import SignInFailure, Staff, StaffSession

LOGIN_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,62}[a-z0-9]$"
_LOGIN = re.compile(LOGIN_PATTERN)
TOTP_ISSUER = "loanfund"
_HASHER = PasswordHasher()  # Argon2id, argon2-cffi's recommended parameters


@cache
def _dummy_hash() -> str:
    """Verified when the login is unknown, so that an unknown login takes as long as a wrong password
    (made on first use: an Argon2 hash costs a noticeable part of a second, not to be paid at import)."""
    return _HASHER.hash("not a password of anyone")


_TOUCH_EVERY = timedelta(seconds=30)  # a session's last-seen time is written at most this often


# --- passwords ---------------------------------------------------------------------------------------


def normalise_login(login: str) -> str:
    return login.strip().lower()


def check_login(login: str) -> str:
    value = normalise_login(login)
    if not _LOGIN.match(value):
        raise InvalidInput(
            "A login is 3–64 characters: lower-case letters, digits, '.', '_' or '-'",
            code="login_invalid",
            details=[{"field": "login", "message": "3–64 of a-z 0-9 . _ -"}],
        )
    return value


def check_password(settings: Settings, password: str) -> None:
    if len(password) < settings.console_password_min_length:
        raise InvalidInput(
            f"The password must be at least {settings.console_password_min_length} characters long",
            code="password_too_short",
            details=[{"field": "password", "min_length": settings.console_password_min_length}],
        )


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(staff: Staff | None, password: str) -> bool:
    stored = staff.password_hash if staff is not None else None
    try:
        _HASHER.verify(stored or _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    if staff is None or stored is None:
        return False
    if _HASHER.check_needs_rehash(stored):
        staff.password_hash = _HASHER.hash(password)
    return True


def by_login(session: Session, login: str) -> Staff | None:
    return session.scalar(select(Staff).where(Staff.login == normalise_login(login)))


def set_login(session: Session, actor: Actor, staff: Staff, login: str) -> Staff:
    value = check_login(login)
    other = by_login(session, value)
    if other is not None and other.id != staff.id:
        raise Conflict("This login is taken", code="login_taken")
    before = staff.login
    staff.login = value
    session.flush()
    record(session, actor, "staff.login", "staff", staff.id, before={"login": before}, after={"login": value})
    return staff


def set_password(session: Session, settings: Settings, actor: Actor, staff: Staff, password: str) -> Staff:
    """A new password; every session of the staff member ends."""
    if staff.login is None:
        raise Conflict("Give the staff member a login first", code="login_missing")
    check_password(settings, password)
    staff.password_hash = hash_password(password)
    staff.password_changed_at = utcnow()
    ended = end_sessions(session, staff.id)
    session.flush()
    record(session, actor, "staff.password", "staff", staff.id, after={"sessions_ended": ended})
    return staff


# --- sessions ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    """A new session: the token for the cookie (never stored) and the row."""

    token: str
    row: StaffSession


@dataclass(frozen=True)
class Current:
    """The staff member behind a valid session."""

    row: StaffSession
    staff: Staff

    @property
    def actor(self) -> Actor:
        return Actor(kind="staff", id=self.staff.id, name=f"staff:{self.staff.name}")


def _digest(settings: Settings, token: str) -> str:
    return hash_secret(settings.secret_key.get_secret_value(), token)


def _open_session(
    session: Session, settings: Settings, staff: Staff, *, pending: bool, address: str, user_agent: str | None
) -> SignedIn:
    token = new_secret("lfc")
    row = StaffSession(
        token_hash=_digest(settings, token),
        staff_id=staff.id,
        second_factor_pending=pending,
        address=address[:64],
        user_agent=(user_agent or "")[:300] or None,
    )
    session.add(row)
    session.flush()
    return SignedIn(token, row)


def resolve(
    session: Session, settings: Settings, token: str | None, now: datetime | None = None
) -> Current | None:
    """The session of a cookie's token, or None if there is none, it was revoked, it has been idle too
    long or lived too long, or its staff member is deactivated. Touches its last-seen time."""
    if not token:
        return None
    now = now or utcnow()
    found = session.execute(
        select(StaffSession, Staff)
        .join(Staff, Staff.id == StaffSession.staff_id)
        .where(StaffSession.token_hash == _digest(settings, token))
    ).first()
    if found is None:
        return None
    row, staff = found
    if (
        row.revoked_at is not None
        or not staff.active
        or now - row.last_seen_at > timedelta(minutes=settings.console_idle_timeout_minutes)
        or now - row.created_at > timedelta(hours=settings.console_session_max_hours)
    ):
        return None
    if now - row.last_seen_at > _TOUCH_EVERY:
        row.last_seen_at = now
        session.flush()
    return Current(row, staff)


def sign_out(session: Session, current: Current) -> None:
    current.row.revoked_at = utcnow()
    session.flush()
    record(session, current.actor, "staff.sign_out", "staff", current.staff.id)


def end_sessions(session: Session, staff_id: int) -> int:
    """End every open session of a staff member (in every process: each request reads its session)."""
    result = session.execute(
        update(StaffSession)
        .where(StaffSession.staff_id == staff_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- the throttle ------------------------------------------------------------------------------------


def _wait_s(session: Session, settings: Settings, login: str, address: str, now: datetime) -> float:
    """Seconds until another sign-in may be tried for this login from this address (0: now)."""
    window = timedelta(seconds=settings.console_signin_failure_window_s)
    since = now - window
    waits = [0.0]
    for column, value, limit in (
        (SignInFailure.login, login, settings.console_signin_failures_per_login),
        (SignInFailure.address, address, settings.console_signin_failures_per_address),
    ):
        stamps = list(
            session.scalars(
                select(SignInFailure.at)
                .where(column == value, SignInFailure.at > since)
                .order_by(SignInFailure.at.desc())
                .limit(limit)
            )
        )
        if len(stamps) >= limit:  # the oldest of the last `limit` failures must leave the window
            waits.append((stamps[-1] + window - now).total_seconds())
    return max(waits)


def _fail(session: Session, settings: Settings, login: str, address: str, now: datetime) -> None:
    session.add(SignInFailure(login=login[:64], address=address[:64], at=now))
    stale = now - timedelta(seconds=settings.console_signin_failure_window_s)
    session.execute(delete(SignInFailure).where(SignInFailure.at <= stale))
    session.flush()


class SignInThrottled(RateLimited):
    def __init__(self, wait_s: float) -> None:
        seconds = max(1, math.ceil(wait_s))
        super().__init__(
            f"Too many failed sign-ins; try again in {seconds} seconds",
            code="signin_throttled",
            details={"retry_after_s": seconds},
            headers={"Retry-After": str(seconds)},
        )
        self.retry_after_s = seconds


class SignInFailed(Unauthorized):
    def __init__(self, code: str = "signin_failed", message: str = "Wrong login or password") -> None:
        super().__init__(message, code=code, headers={})


# --- signing in ----------------------------------------------------------------------------------------


def totp_required(settings: Settings, staff: Staff) -> bool:
    return staff.role.value in settings.totp_roles or staff.totp_enabled_at is not None


def sign_in(
    session: Session,
    settings: Settings,
    *,
    login: str,
    password: str,
    otp: str | None,
    address: str,
    user_agent: str | None = None,
) -> SignedIn:
    """Check a login and password (and a one-time code when one is given or enrolled), and open a session.

    A staff member who must use a one-time code and gave none gets a session with
    `second_factor_pending` set: only the code's page (or, with none enrolled yet, the enrolment) is open
    to it until `complete_second_factor`. Failures are counted for the throttle; the store of failures is
    written even though the sign-in is refused, so the caller commits after a `SignInFailed`."""
    now = utcnow()
    key = normalise_login(login)[:64]
    wait = _wait_s(session, settings, key, address, now)
    if wait > 0:
        raise SignInThrottled(wait)
    staff = by_login(session, key) if key else None
    if not password_matches(staff, password) or staff is None or not staff.active:
        _fail(session, settings, key, address, now)
        raise SignInFailed()
    pending = totp_required(settings, staff)
    if pending and otp and staff.totp_enabled_at is not None:
        if not _accept_code(staff, otp, now):
            _fail(session, settings, key, address, now)
            raise SignInFailed("otp_invalid", "The one-time code is wrong or already used")
        pending = False
    session.execute(delete(SignInFailure).where(SignInFailure.login == key))
    signed_in = _open_session(
        session, settings, staff, pending=pending, address=address, user_agent=user_agent
    )
    actor = Actor(kind="staff", id=staff.id, name=f"staff:{staff.name}")
    record(session, actor, "staff.sign_in", "staff", staff.id, after={"address": address, "pending": pending})
    return signed_in


def complete_second_factor(
    session: Session, settings: Settings, current: Current, otp: str, *, address: str
) -> None:
    """The one-time code of a session whose sign-in is pending it; a wrong code counts as a failure."""
    now = utcnow()
    login = current.staff.login or ""
    wait = _wait_s(session, settings, login, address, now)
    if wait > 0:
        raise SignInThrottled(wait)
    if current.staff.totp_enabled_at is None:
        raise Conflict("No one-time code is enrolled yet", code="totp_not_enrolled")
    if not _accept_code(current.staff, otp, now):
        _fail(session, settings, login, address, now)
        raise SignInFailed("otp_invalid", "The one-time code is wrong or already used")
    current.row.second_factor_pending = False
    session.flush()


# --- one-time codes ----------------------------------------------------------------------------------------


def _accept_code(staff: Staff, code: str, now: datetime) -> bool:
    """Whether `code` is the staff member's code for now (±1 step) and newer than the last one accepted."""
    if not staff.totp_secret:
        return False
    code = code.strip().replace(" ", "")
    if not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(staff.totp_secret)
    step = math.floor(now.timestamp() / totp.interval)
    for candidate in (step, step - 1, step + 1):
        if candidate <= (staff.totp_last_step or -1):
            continue
        if pyotp.utils.strings_equal(totp.at(candidate * totp.interval), code):
            staff.totp_last_step = candidate
            return True
    return False


def provisioning_uri(staff: Staff) -> str:
    assert staff.totp_secret is not None
    return pyotp.TOTP(staff.totp_secret).provisioning_uri(
        name=staff.login or str(staff.id), issuer_name=TOTP_ISSUER
    )


def start_enrolment(session: Session, staff: Staff) -> str:
    """A new secret for the staff member to add to their authenticator; it takes effect once
    `confirm_enrolment` has seen a code from it. Re-enrolling replaces an enrolled secret only then."""
    if staff.totp_enabled_at is not None:
        raise Conflict("A one-time code is already enrolled; an admin can reset it", code="totp_enrolled")
    staff.totp_secret = pyotp.random_base32()
    staff.totp_last_step = None
    session.flush()
    return staff.totp_secret


def confirm_enrolment(session: Session, actor: Actor, staff: Staff, code: str) -> None:
    if staff.totp_enabled_at is not None:
        raise Conflict("A one-time code is already enrolled", code="totp_enrolled")
    if staff.totp_secret is None:
        raise Conflict("Start the enrolment first", code="totp_not_started")
    if not _accept_code(staff, code, utcnow()):
        raise InvalidInput(
            "The code does not match; check the authenticator's clock and try the next code",
            code="otp_invalid",
            details=[{"field": "otp", "message": "wrong code"}],
        )
    staff.totp_enabled_at = utcnow()
    session.flush()
    record(session, actor, "staff.totp_enrol", "staff", staff.id)


def reset_totp(session: Session, actor: Actor, staff: Staff) -> None:
    """An admin removes a staff member's one-time code (a lost phone); their sessions end."""
    if staff.totp_secret is None:
        raise Conflict("No one-time code is enrolled", code="totp_not_enrolled")
    staff.totp_secret = None
    staff.totp_enabled_at = None
    staff.totp_last_step = None
    ended = end_sessions(session, staff.id)
    session.flush()
    record(session, actor, "staff.totp_reset", "staff", staff.id, after={"sessions_ended": ended})


def open_sessions(session: Session, staff_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(StaffSession)
            .where(StaffSession.staff_id == staff_id, StaffSession.revoked_at.is_(None))
        )
        or 0
    )
