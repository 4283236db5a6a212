"""Console sign-in: passwords, the throttle, sessions that end everywhere at once, one-time codes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.audit.service import Actor
from loanfund.core.config import Settings
from loanfund.core.db import utcnow
from loanfund.core.errors import Conflict, InvalidInput
from loanfund.staff import service as staff_service
from loanfund.staff import signin
from loanfund.staff.models import Role, SignInFailure, Staff, StaffSession

ADMIN = Actor(kind="system", id=None, name="test")
PASSWORD = "correct horse battery"
HERE = "10.0.0.1"


@pytest.fixture
def wang(session: Session, settings: Settings) -> Staff:
    staff = staff_service.create_staff(session, ADMIN, name="王审批", role=Role.approver, login="Wang.Li")
    signin.set_password(session, settings, ADMIN, staff, PASSWORD)
    return staff


@pytest.fixture
def strict(settings: Settings) -> Iterator[Settings]:
    saved = (
        settings.console_signin_failures_per_login,
        settings.console_signin_failures_per_address,
        settings.console_totp_roles,
    )
    settings.console_signin_failures_per_login = 3
    settings.console_signin_failures_per_address = 5
    yield settings
    (
        settings.console_signin_failures_per_login,
        settings.console_signin_failures_per_address,
        settings.console_totp_roles,
    ) = saved


def _sign_in(session: Session, settings: Settings, password: str = PASSWORD, **kw: object) -> signin.SignedIn:
    args: dict[str, object] = {"login": "wang.li", "password": password, "otp": None, "address": HERE}
    args.update(kw)
    return signin.sign_in(session, settings, **args)  # type: ignore[arg-type]


def test_password_is_an_argon2id_hash_never_the_password(wang: Staff) -> None:
    assert wang.login == "wang.li"
    assert wang.password_hash is not None
    assert wang.password_hash.startswith("$argon2id$")
    assert PASSWORD not in wang.password_hash


def test_short_password_and_bad_login_refused(session: Session, settings: Settings, wang: Staff) -> None:
    with pytest.raises(InvalidInput) as err:
        signin.set_password(session, settings, ADMIN, wang, "x" * (settings.console_password_min_length - 1))
    assert err.value.code == "password_too_short"
    with pytest.raises(InvalidInput):
        staff_service.create_staff(session, ADMIN, name="x", role=Role.analyst, login="no spaces")
    with pytest.raises(Conflict) as taken:
        staff_service.create_staff(session, ADMIN, name="y", role=Role.analyst, login="WANG.LI")
    assert taken.value.code == "login_taken"


def test_sign_in_opens_a_session_the_token_finds(session: Session, settings: Settings, wang: Staff) -> None:
    signed = _sign_in(session, settings, login="  WANG.LI ")
    assert signed.token.startswith("lfc_")
    assert signed.token not in signed.row.token_hash
    current = signin.resolve(session, settings, signed.token)
    assert current is not None
    assert current.staff.id == wang.id
    assert not current.row.second_factor_pending
    assert signin.resolve(session, settings, signed.token + "x") is None
    actions = session.scalars(select(AuditRecord.action).where(AuditRecord.entity_id == str(wang.id)))
    assert "staff.sign_in" in list(actions)


def test_wrong_password_and_unknown_login_fail_alike(
    session: Session, settings: Settings, wang: Staff
) -> None:
    with pytest.raises(signin.SignInFailed) as wrong:
        _sign_in(session, settings, password="wrong password!")
    with pytest.raises(signin.SignInFailed) as unknown:
        _sign_in(session, settings, login="nobody")
    assert wrong.value.code == unknown.value.code == "signin_failed"
    assert wrong.value.status_code == 401
    assert session.scalar(select(SignInFailure.login).where(SignInFailure.login == "nobody")) == "nobody"


def test_throttle_per_login_then_per_address(session: Session, strict: Settings, wang: Staff) -> None:
    for _ in range(3):
        with pytest.raises(signin.SignInFailed):
            _sign_in(session, strict, password="wrong password!")
    # the right password is refused too while the login waits, with the wait
    with pytest.raises(signin.SignInThrottled) as throttled:
        _sign_in(session, strict)
    assert throttled.value.status_code == 429
    assert 0 < throttled.value.retry_after_s <= strict.console_signin_failure_window_s
    assert throttled.value.headers == {"Retry-After": str(throttled.value.retry_after_s)}
    # another address may still not sign in as this login; another login from here still may
    with pytest.raises(signin.SignInThrottled):
        _sign_in(session, strict, address="10.0.0.2")
    for n in range(2):
        with pytest.raises(signin.SignInFailed):
            _sign_in(session, strict, login=f"guess{n}")
    with pytest.raises(signin.SignInThrottled):  # five failures from this address
        _sign_in(session, strict, login="someone.else")


def test_failures_leave_the_window(session: Session, strict: Settings, wang: Staff) -> None:
    old = utcnow() - timedelta(seconds=strict.console_signin_failure_window_s + 1)
    session.add_all([SignInFailure(login="wang.li", address=HERE, at=old) for _ in range(3)])
    session.flush()
    assert _sign_in(session, strict).token
    # a success clears the login's failures
    assert session.scalar(select(SignInFailure.id).where(SignInFailure.login == "wang.li")) is None


def test_deactivated_staff_cannot_sign_in_and_sessions_end(
    session: Session, settings: Settings, wang: Staff
) -> None:
    first, second = _sign_in(session, settings), _sign_in(session, settings)
    staff_service.set_staff_active(session, ADMIN, wang, False)
    assert signin.resolve(session, settings, first.token) is None
    assert signin.resolve(session, settings, second.token) is None
    with pytest.raises(signin.SignInFailed):
        _sign_in(session, settings)


def test_changed_password_ends_every_session(session: Session, settings: Settings, wang: Staff) -> None:
    tokens = [_sign_in(session, settings).token for _ in range(2)]
    signin.set_password(session, settings, ADMIN, wang, "a brand new passphrase")
    assert [signin.resolve(session, settings, t) for t in tokens] == [None, None]
    with pytest.raises(signin.SignInFailed):
        _sign_in(session, settings)
    assert _sign_in(session, settings, password="a brand new passphrase").token


def test_sign_out_ends_only_that_session(session: Session, settings: Settings, wang: Staff) -> None:
    one, other = _sign_in(session, settings), _sign_in(session, settings)
    current = signin.resolve(session, settings, one.token)
    assert current is not None
    signin.sign_out(session, current)
    assert signin.resolve(session, settings, one.token) is None
    assert signin.resolve(session, settings, other.token) is not None


def test_idle_and_lifetime_limits(session: Session, settings: Settings, wang: Staff) -> None:
    signed = _sign_in(session, settings)
    idle = timedelta(minutes=settings.console_idle_timeout_minutes)
    later = utcnow() + idle - timedelta(seconds=5)
    assert signin.resolve(session, settings, signed.token, now=later) is not None  # touched at `later`
    assert signin.resolve(session, settings, signed.token, now=later + idle - timedelta(seconds=5))
    assert signin.resolve(session, settings, signed.token, now=later + 3 * idle) is None
    fresh = _sign_in(session, settings)
    row = session.get(StaffSession, fresh.row.id)
    assert row is not None
    row.created_at = utcnow() - timedelta(hours=settings.console_session_max_hours, seconds=1)
    session.flush()
    assert signin.resolve(session, settings, fresh.token) is None


def _enrol(session: Session, staff: Staff) -> pyotp.TOTP:
    secret = signin.start_enrolment(session, staff)
    totp = pyotp.TOTP(secret)
    assert "otpauth://totp/" in signin.provisioning_uri(staff)
    with pytest.raises(InvalidInput):
        signin.confirm_enrolment(session, ADMIN, staff, "000000" if totp.now() != "000000" else "111111")
    signin.confirm_enrolment(session, ADMIN, staff, totp.now())
    return totp


def test_role_that_must_use_a_code_signs_in_pending_it(
    session: Session, strict: Settings, wang: Staff
) -> None:
    strict.console_totp_roles = ["approver", "admin"]
    pending = _sign_in(session, strict)
    current = signin.resolve(session, strict, pending.token)
    assert current is not None
    assert current.row.second_factor_pending
    with pytest.raises(Conflict):  # nothing enrolled yet: the enrolment comes first
        signin.complete_second_factor(session, strict, current, "123456", address=HERE)
    totp = _enrol(session, wang)
    # the enrolment's code cannot be used again; the next step's can
    with pytest.raises(signin.SignInFailed) as replay:
        signin.complete_second_factor(session, strict, current, totp.now(), address=HERE)
    assert replay.value.code == "otp_invalid"
    next_code = totp.at(utcnow() + timedelta(seconds=30))
    signin.complete_second_factor(session, strict, current, next_code, address=HERE)
    assert not current.row.second_factor_pending


def test_enrolled_code_given_with_the_password(session: Session, settings: Settings, wang: Staff) -> None:
    totp = _enrol(session, wang)  # enrolled by choice: required from now on, whatever the role
    assert signin.resolve(session, settings, _sign_in(session, settings).token).row.second_factor_pending  # type: ignore[union-attr]
    with pytest.raises(signin.SignInFailed):
        _sign_in(session, settings, otp="12345x")
    signed = _sign_in(session, settings, otp=totp.at(utcnow() + timedelta(seconds=30)))
    assert not signed.row.second_factor_pending
    signin.reset_totp(session, ADMIN, wang)
    assert wang.totp_secret is None
    assert signin.resolve(session, settings, signed.token) is None
