"""The steps of an application as its applicant follows them, each with its date and state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from loanfund.applications.models import ApplicationStatus
from loanfund.applications.schemas import ApplicationStatusRead

State = Literal["done", "current", "pending", "stopped"]
_LOAN_TROUBLE = {"overdue", "non_performing", "compensated", "written_off"}


@dataclass(frozen=True)
class Step:
    key: str  # submitted, evaluated, with_bank, decision, contract, disbursed, settled
    state: State
    on: date | datetime | None = None


def timeline(app: ApplicationStatusRead) -> list[Step]:
    s = app.status
    ev, decision, loan = app.evaluation, app.decision, app.loan
    steps = [Step("submitted", "done", app.application_date)]
    if s == ApplicationStatus.ineligible:
        steps.append(Step("evaluated", "stopped", ev.evaluated_at if ev else app.application_date))
        return [
            *steps,
            *(Step(k, "pending") for k in ("with_bank", "decision", "contract", "disbursed", "settled")),
        ]
    steps.append(Step("evaluated", "done", ev.evaluated_at if ev else None))
    if s == ApplicationStatus.pending_bank:
        steps.append(Step("with_bank", "current"))
        return [*steps, *(Step(k, "pending") for k in ("decision", "contract", "disbursed", "settled"))]
    steps.append(Step("with_bank", "done"))
    assert decision is not None
    if s == ApplicationStatus.rejected:
        steps.append(Step("decision", "stopped", decision.decision_date))
        return [*steps, *(Step(k, "pending") for k in ("contract", "disbursed", "settled"))]
    steps.append(Step("decision", "done", decision.decision_date))
    if loan is None:
        steps.append(Step("contract", "current"))
        return [*steps, Step("disbursed", "pending"), Step("settled", "pending")]
    steps.append(Step("contract", "done", loan.start_date))
    if loan.first_disbursed_on is None:
        return [*steps, Step("disbursed", "current"), Step("settled", "pending")]
    steps.append(Step("disbursed", "done", loan.first_disbursed_on))
    if loan.state == "settled":
        steps.append(Step("settled", "done", loan.settled_on))
    elif loan.state in _LOAN_TROUBLE:
        steps.append(Step("settled", "stopped"))
    else:
        steps.append(Step("settled", "current"))
    return steps
