"""Risk analytics at `/console/risk`: the latest stress test of the fund (or `?run=<id>`), a form to run a
new one from a preset, the runs before it, and the banks' risk ratings for a month (`?month=YYYY-MM`).

Every figure is the API's own: the run as `GET /api/v1/fund/stress-tests/{id}` answers it (`stress.read`),
the ratings as `GET /api/v1/banks/ratings` does (`ratings.month_table`). The charts' series are inlined as
JSON and drawn by `static/console/console.js`, as on the dashboard (no inline script: CSP).

Running a test is the API's action with the API's rule: the roles of `risk.router.STRESS_RUNNERS`, the
service's `stress.run` with the body the API would take, and the API's idempotency: the form carries a
one-time key (`nonce`), so a second submit of the same form (a double click, a reload of the post)
replays the first run instead of storing another.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from loanfund.core.clock import business_today
from loanfund.core.db import DbSession
from loanfund.core.errors import Forbidden, InvalidInput, LoanfundError, NotFound
from loanfund.core.idempotency import Idempotency
from loanfund.risk import ratings, stress
from loanfund.risk.router import STRESS_RUNNERS
from loanfund.risk.schemas import MONTH_PATTERN, Preset, StressTestCreate, StressTestRead, parse_month
from loanfund.rules import add_months
from loanfund.web.messages import N_
from loanfund.web.templating import gettext_for

from .auth import PATH, Posting, Reader, Staffer, settings_of
from .render import done, errors_of, page

router = APIRouter(prefix=PATH, include_in_schema=False)

RUNS_SHOWN: Final = 20
NONCE: Final = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
IN_PROGRESS_WAIT_S: Final = 30.0  # a double submit waits for the first run to finish, then replays it
PRESET_LABELS: Final = {
    Preset.baseline: N_("Baseline"),
    Preset.pds_doubled: N_("PDs doubled"),
    Preset.correlation_030: N_("Correlation 0.30"),
    Preset.largest_bank_defaults: N_("Largest bank's loans all default"),
}
PRESET_HELP: Final = {
    Preset.baseline: N_("the calibrated model as it stands"),
    Preset.pds_doubled: N_("every grade's probability of default × 2"),
    Preset.correlation_030: N_("the systematic factor's correlation at 0.30 instead of 0.15"),
    Preset.largest_bank_defaults: N_("every covered loan of the bank with the most outstanding defaults"),
}
# the ratings' measures by their key (the English names of `ratings.LABELS`, translated in console.po)
MEASURES: Final = {
    "npl_ratio": N_("NPL ratio"),
    "compensation_rate": N_("Compensation rate"),
    "early_default_rate": N_("Early default rate"),
    "report_discrepancies": N_("Status-report discrepancies per loan"),
    "report_lateness": N_("Late or missing status reports"),
    "growth": N_("Growth of covered outstanding"),
    "concentration": N_("Industry concentration (HHI)"),
}
_WAN = Decimal(10_000)
_CENT = Decimal("0.01")


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def _wan(yuan: str) -> str:
    """A yuan string in 万元, two places, for a chart (no float)."""
    return str((Decimal(yuan) / _WAN).quantize(_CENT, rounding=ROUND_HALF_UP))


def _pct(probability: str) -> str:
    return str((Decimal(probability) * 100).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))


def run_charts(run: StressTestRead, gettext: Callable[[str], str]) -> dict[str, Any]:
    """The fan of the fund's available balance over the horizon and the loss histogram, in 万元."""
    out = run.outputs.model_dump(mode="json")
    available = Decimal(out["available_balance"])
    fan = out["balance_fan"]
    bins = out["loss_histogram"]
    return {
        "balance_fan": {
            "months": [m["end"] for m in fan],
            "p05": [_wan(m["p05"]) for m in fan],
            "p50": [_wan(m["p50"]) for m in fan],
            "p95": [_wan(m["p95"]) for m in fan],
            "labels": {
                "band": gettext("5th–95th percentile"),
                "p05": gettext("5th percentile"),
                "p50": gettext("median"),
                "p95": gettext("95th percentile"),
                "empty": gettext("exhausted"),
            },
        },
        "loss_histogram": {
            "bins": [f"{_wan(b['lower'])}–{_wan(b['upper'])}" for b in bins],
            "probabilities": [_pct(b["probability"]) for b in bins],
            "scenarios": [b["scenarios"] for b in bins],
            # a bin whose losses all exceed the available balance: the fund is exhausted there
            "exhausting": [Decimal(b["lower"]) >= available for b in bins],
            "labels": {"probability": gettext("share of scenarios (%)")},
        },
    }


def ratings_chart(table: ratings.MonthTable) -> dict[str, Any]:
    """Each bank's rating over the twelve months up to the month shown (a gap: a month not rated)."""
    if table.month is None:
        return {"months": [], "series": {}}
    months = [ratings.month_label(add_months(table.month, k)) for k in range(-11, 1)]
    series = {}
    for view in table.rows:
        by_month = {ratings.month_label(m): r for m, r in view.trend}
        series[view.bank.code] = [by_month.get(m) for m in months]
    return {"months": months, "series": series}


def reason_words(gettext: Callable[[str], str], view: ratings.RatingView) -> str:
    """The measure that drove a rating, in the reader's language (the API's `reason`, translated)."""
    r = view.rating
    driver = next(m for m in r.measures if m["key"] == r.driver)
    words = f"{gettext(MEASURES[r.driver])} {driver['value']}"
    if driver["percentile"] is not None and r.peers > 1:
        better = round(Decimal(driver["percentile"]) * (r.peers - 1))
        words += gettext(": %(better)s of %(others)s peers do better") % {
            "better": better,
            "others": r.peers - 1,
        }
    level = driver["threshold_score"]
    if level is not None and level > 1:
        cut = r.parameters["measures"][r.driver]["thresholds"][level - 2]
        words += gettext("; at or above threshold %(level)s (%(cut)s)") % {"level": level - 1, "cut": cut}
    return words


def _json(value: Any) -> Markup:
    return Markup(orjson.dumps(value).decode().replace("</", "<\\/"))


def risk_context(
    request: Request, session: Session, user: Staffer, run_id: int | None, month: str | None
) -> dict[str, Any]:
    gettext = gettext_for(request)
    found = stress.get_run(session, run_id) if run_id is not None else stress.latest_run(session)
    run = stress.read(found) if found is not None else None
    charts: dict[str, Any] = run_charts(run, gettext) if run is not None else {}
    months = ratings.rated_months(session)
    month_missing = None
    try:
        table = ratings.month_table(session, parse_month(month) if month else None)
    except NotFound:
        month_missing, table = month, ratings.MonthTable(None, 0, {}, [])
    charts["rating_trend"] = ratings_chart(table)
    return {
        "run": run,
        "outputs": run.outputs.model_dump(mode="json") if run is not None else None,
        "inputs": run.inputs.model_dump(mode="json") if run is not None else None,
        "bank_ids": {b.bank_id: b.bank_code for b in run.outputs.by_bank} if run is not None else {},
        "charts": charts,
        "chart_json": {k: _json(v) for k, v in charts.items()},
        "runs": [stress.summary(r) for r in stress.list_runs(session, limit=RUNS_SHOWN)],
        "may_run": user.may(*STRESS_RUNNERS),
        "presets": [(p.value, PRESET_LABELS[p], PRESET_HELP[p]) for p in Preset],
        "preset_labels": {p.value: PRESET_LABELS[p] for p in Preset},
        "table": table,
        "month": None if table.month is None else ratings.month_label(table.month),
        "month_missing": month_missing,
        "months": [ratings.month_label(m) for m in months],
        "reasons": {v.bank.id: reason_words(gettext, v) for v in table.rows},
        "nonce": new_nonce(),
        "form": {"preset": Preset.baseline.value, "as_of": run.inputs.as_of.isoformat() if run else ""},
        "errors": {},
        "error": None,
    }


RunQuery = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
MonthQuery = Annotated[str | None, Query(pattern=MONTH_PATTERN)]


@router.get("/risk")
def risk_page(
    request: Request, session: DbSession, user: Reader, run: RunQuery = None, month: MonthQuery = None
) -> Response:
    context = risk_context(request, session, user, run, month)
    return page(
        request, user, "console/risk.html", context, status_code=404 if context["month_missing"] else 200
    )


@router.get("/risk/stress-tests/{run_id}")
def risk_run_page(request: Request, session: DbSession, user: Reader, run_id: int) -> Response:
    return page(request, user, "console/risk.html", risk_context(request, session, user, run_id, None))


def _as_of(text: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            "Enter the date as YYYY-MM-DD",
            code="date_invalid",
            details=[{"field": "as_of", "message": "not a date YYYY-MM-DD"}],
        ) from None


@router.post("/risk/stress-tests")
def run_stress_test(
    request: Request,
    session: DbSession,
    user: Posting,
    preset: Annotated[str, Form(max_length=32)] = "",
    as_of: Annotated[str, Form(max_length=32)] = "",
    nonce: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Run a preset as of a date (empty: today), once per form: `nonce` is the idempotency key."""
    if not user.may(*STRESS_RUNNERS):
        raise Forbidden("Running a stress test needs the officer or analyst role", code="role_required")
    settings = settings_of(request)
    try:
        if preset not in {p.value for p in Preset}:
            raise InvalidInput(
                "Choose a preset",
                code="validation_error",
                details=[{"field": "preset", "message": "unknown"}],
            )
        if not NONCE.match(nonce):
            raise InvalidInput("The form has no one-time key; reload the page", code="form_key_missing")
        chosen, day = Preset(preset), _as_of(as_of)
        body = StressTestCreate(preset=chosen, as_of=day) if day else StressTestCreate(preset=chosen)

        def produce() -> StressTestRead:  # the API route's call, with the form's body
            return stress.read(
                stress.run(session, settings, user.actor, body, today=business_today(settings))
            )

        idem = Idempotency(
            session, settings, None, f"console:{nonce}", "POST", request.url.path, staff_id=user.id
        )
        answer = idem.run(body, 201, produce, wait_s=IN_PROGRESS_WAIT_S)
        result = orjson.loads(bytes(answer.body))
        if answer.status_code != 201:  # a refusal, stored with the key: replayed as the same refusal
            error = result["error"]
            raise LoanfundError(
                error["message"], code=error["code"], status_code=answer.status_code, details=error["details"]
            )
    except LoanfundError as exc:
        session.rollback()
        context = risk_context(request, session, user, None, None)
        sentence, errors = errors_of(request, exc)
        context.update(error=sentence, errors=errors, form={"preset": preset, "as_of": as_of})
        return page(request, user, "console/risk.html", context, status_code=exc.status_code)
    return done(f"{PATH}/risk?run={result['id']}", "stress_run")
