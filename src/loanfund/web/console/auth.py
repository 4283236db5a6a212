"""Who is using the console: the staff member behind the session cookie, their role, and the CSRF check.

The cookie `lf_console` holds a random session token (HttpOnly, SameSite=Lax, Secure in production, path
`/console`); the database holds its HMAC and decides on every request whether the session is still open
(`staff.signin.resolve`): sign-out, deactivation and a new password end it in every worker at once.

Every state-changing form carries `csrf_token`, an HMAC of the session under the server's key (the kit's
`csrf.token_for`), so a post that does not come from a page of this session is refused (403).
The sign-in form, before any session exists, uses the kit's double-submit cookie instead.

Roles: a page or action names the roles it needs (`require`); the rest is hidden in the templates
(`Staffer.may`) and refused here if forced (403 `role_required`). An API key is never accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Final
from urllib.parse import quote

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from loanfund.audit.service import Actor
from loanfund.core.auth import Principal
from loanfund.core.config import Settings
from loanfund.core.db import DbSession
from loanfund.core.errors import Forbidden
from loanfund.core.ratelimit import client_address
from loanfund.staff import signin
from loanfund.staff.models import Role
from loanfund.web import csrf

COOKIE: Final = "lf_console"
PATH: Final = "/console"


class SignInRequired(Exception):
    """No open session (or one still waiting for its one-time code): the handler redirects."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


@dataclass(frozen=True)
class Staffer:
    """The signed-in staff member, as the console's handlers and templates see them."""

    current: signin.Current

    @property
    def id(self) -> int:
        return self.current.staff.id

    @property
    def name(self) -> str:
        return self.current.staff.name

    @property
    def role(self) -> Role:
        return self.current.staff.role

    @property
    def actor(self) -> Actor:
        return self.current.actor

    @property
    def principal(self) -> Principal:
        """The same principal a staff key resolves to, for the service functions that take one."""
        staff = self.current.staff
        return Principal(
            kind="staff", key_id=None, name=f"staff:{staff.name}", staff_id=staff.id, role=staff.role
        )

    def may(self, *roles: Role | str) -> bool:
        return self.role.value in {Role(r).value for r in roles}

    def csrf_token(self, settings: Settings) -> str:
        return csrf.token_for(settings, binding(self.current))


def binding(current: signin.Current) -> str:
    """What a session's form tokens are bound to: the session's own row (its stored HMAC)."""
    return f"console:{current.row.token_hash}"


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _here(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return quote(f"{request.url.path}{query}", safe="/?=&")


def current_session(request: Request, session: Session) -> signin.Current | None:
    return signin.resolve(session, settings_of(request), request.cookies.get(COOKIE))


def _signed_in(request: Request, session: DbSession) -> Staffer:
    current = current_session(request, session)
    if current is None:
        raise SignInRequired(f"{PATH}/sign-in?next={_here(request)}")
    if current.row.second_factor_pending:
        raise SignInRequired(f"{PATH}/sign-in/code")
    return Staffer(current)


SignedIn = Annotated[Staffer, Depends(_signed_in)]


def require(*roles: Role) -> Callable[[Staffer], Staffer]:
    """A dependency: the signed-in staff member, who must hold one of `roles` (any role when none)."""

    def dep(user: SignedIn) -> Staffer:
        if roles and not user.may(*roles):
            wanted = " or ".join(r.value for r in roles)
            raise Forbidden(f"This needs the {wanted} role", code="role_required")
        return user

    return dep


async def _csrf_checked(request: Request, user: SignedIn) -> Staffer:
    form = await request.form()
    token = form.get(csrf.FIELD)
    if not csrf.check(settings_of(request), binding(user.current), token if isinstance(token, str) else None):
        raise csrf.CsrfRefused(
            "The form has expired or did not come from this site; reload the page and try again"
        )
    return user


Posting = Annotated[Staffer, Depends(_csrf_checked)]
"""A signed-in staff member whose post carries this session's CSRF token (any role: check it too)."""

Reader = Annotated[Staffer, Depends(require())]
Officer = Annotated[Staffer, Depends(require(Role.officer))]
Reviewer = Annotated[Staffer, Depends(require(Role.officer, Role.approver))]
Approver = Annotated[Staffer, Depends(require(Role.approver))]
Admin = Annotated[Staffer, Depends(require(Role.admin))]


def address(request: Request) -> str:
    return client_address(request)
