"""Rendering a console page: the kit's templates plus the console's own, with the signed-in staff member,
the navigation their role may use, this session's CSRF token and a one-off notice (the toast)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.audit.service import list_records
from loanfund.core.errors import LoanfundError
from loanfund.staff.models import Role
from loanfund.web.messages import N_, error_sentence, field_errors
from loanfund.web.templating import Templates, gettext_for

from .auth import Staffer, settings_of

HERE: Final = Path(__file__).parent
templates = Templates(HERE / "templates")

ALL = tuple(Role)
# (path, label, roles that see it) — the console's sections; a section added later appends a line here
NAV: Final[list[tuple[str, str, tuple[Role, ...]]]] = [
    ("/console/", N_("Dashboard"), ALL),
    ("/console/work", N_("Work queues"), ALL),
    ("/console/claims", N_("Claims"), ALL),
    ("/console/applications", N_("Applications"), ALL),
    ("/console/loans", N_("Loans"), ALL),
    ("/console/banks", N_("Banks"), ALL),
    ("/console/enterprises", N_("Enterprises"), ALL),
    ("/console/contributions", N_("Contributions"), ALL),
    ("/console/reports", N_("Reports"), ALL),
    (
        "/console/risk",
        N_("Risk"),
        ALL,
    ),  # reading stress tests and ratings: any staff (the API's BureauReader)
    ("/console/audit", N_("Audit log"), ALL),
    ("/console/admin/staff", N_("Staff and keys"), (Role.admin,)),
]
# the one-off notice after a post-redirect-get: `?done=<key>` names one of these
NOTICES: Final[dict[str, str]] = {
    "approved": N_("The claim is approved."),
    "rejected": N_("The claim is rejected."),
    "paid": N_("The payout is confirmed; the loan is compensated."),
    "lifted": N_("The suspension is lifted."),
    "regraded": N_("The application is re-evaluated."),
    "imported": N_("The import is done."),
    "password": N_("Your password is changed. Please sign in again."),
    "enrolled": N_("The one-time code is enrolled."),
    "staff_created": N_("The staff member is created."),
    "staff_changed": N_("The staff member is changed."),
    "key_revoked": N_("The key is revoked."),
    "totp_reset": N_("The one-time code is reset."),
    "suspended": N_("The bank is suspended."),
    "reinstated": N_("The bank is reinstated."),
    "programme_lifted": N_("The programme-wide stop is lifted; new loans are covered again."),
    "imports_allowed": N_("The bank may now register contracts without an application."),
    "imports_refused": N_("The bank may no longer register contracts without an application."),
    "reopened": N_("The month is reopened; the bank can post its late events."),
    "graded": N_("The enterprise's grade is recorded."),
    "stress_run": N_("The stress test has run; its results are below."),
}


def nav_for(user: Staffer) -> list[tuple[str, str]]:
    return [(path, label) for path, label, roles in NAV if user.role in roles]


def page(
    request: Request,
    user: Staffer | None,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    settings = settings_of(request)
    base: dict[str, Any] = {"user": user, "nav": [], "notice": None, "Role": Role}
    if user is not None:
        done = request.query_params.get("done")
        base.update(
            nav=nav_for(user),
            csrf_token=user.csrf_token(settings),
            notice=NOTICES.get(done) if done else None,
        )
    return templates.render(
        request, name, {**base, **(context or {})}, status_code=status_code, headers=headers
    )


def fragment(request: Request, user: Staffer, name: str, context: Mapping[str, Any]) -> str:
    """A part of a page (htmx swaps it in), rendered like a page."""
    settings = settings_of(request)
    ctx = {"user": user, "csrf_token": user.csrf_token(settings), "Role": Role, **context}
    return templates.render_text(request, name, ctx)


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def done(url: str, key: str) -> Response:
    """Redirect after a successful post (post-redirect-get) with the notice to show."""
    sep = "&" if "?" in url else "?"
    return RedirectResponse(f"{url}{sep}{urlencode({'done': key})}", status_code=303)


def history_of(
    session: Session, entity_type: str, entity_id: str, *, action: str | None = None, limit: int = 50
) -> list[AuditRecord]:
    """A record's audit trail, newest first (the audit log's own query)."""
    return list_records(
        session,
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
        actor_kind=None,
        actor_id=None,
        since=None,
        until=None,
        after_id=None,
        limit=limit,
    )


def errors_of(request: Request, exc: LoanfundError) -> tuple[str, dict[str, str]]:
    """The sentence for the top of the form and the sentences beside the fields it names."""
    gettext = gettext_for(request)
    return error_sentence(exc, gettext), field_errors(exc, gettext)


# Words the templates translate from a record's value (`_(claim.state.value)`), listed for extraction
VOCABULARY: Final = [
    # claim, application, loan, bank and breaker states
    N_("submitted"), N_("approved"), N_("rejected"), N_("paid"),
    N_("ineligible"), N_("pending_bank"), N_("lent"),
    N_("enterprise_not_in_registry"), N_("enterprise_not_registered_tech"), N_("score_below_threshold"),
    N_("active"), N_("overdue"), N_("non_performing"), N_("compensated"), N_("written_off"), N_("settled"),
    N_("suspended"), N_("normal"), N_("warning"), N_("stopped"),
    # events, recoveries, discrepancies, contribution sources, who acted
    N_("disbursement"), N_("repayment"), N_("delinquency"), N_("recovery"), N_("remittance"),
    N_("balance_mismatch"), N_("missing_from_report"), N_("unknown_loan"), N_("not_open"),
    N_("update_refused"),
    N_("city"), N_("district"), N_("staff"), N_("bank"), N_("enterprise"), N_("system"),
    # roles
    N_("analyst"), N_("officer"), N_("approver"), N_("admin"),
    # knowledge-value indicators
    N_("invention_patents"), N_("utility_model_patents"), N_("software_copyrights"), N_("rd_intensity_pct"),
    N_("rd_staff_pct"), N_("senior_talent"), N_("high_tech_certificate"),
]  # fmt: skip
