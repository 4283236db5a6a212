from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from loanfund.applications.models import Application, ApplicationStatus, IneligibleReason
from loanfund.applications.reasons import explain
from loanfund.banks.schemas import BankCode, Reason
from loanfund.core.money import NonNegativeYuan, PositiveYuan, YuanStr, yuan_str
from loanfund.enterprises.schemas import CreditCode
from loanfund.rates.schemas import RatePct

APPLICATION_NO_PATTERN = r"^KV[0-9]{10,24}$"
Grade = Literal["A", "B", "C", "D", "E"]
Count = Annotated[int, Field(ge=0, le=1_000_000)]


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100, examples=["张三"])]
    phone: Annotated[str, Field(pattern=r"^\+?[0-9][0-9 -]{5,30}$", max_length=32, examples=["13800000000"])]
    email: (
        Annotated[
            str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", examples=["cfo@example.cn"])
        ]
        | None
    ) = None


class IndicatorsIn(BaseModel):
    """The knowledge-value indicators of the last financial year, as the enterprise declares them."""

    model_config = ConfigDict(extra="forbid")

    invention_patents: Count
    utility_model_patents: Count
    software_copyrights: Count
    rd_spending: NonNegativeYuan = Field(description="R&D spending of the last year, yuan")
    revenue: NonNegativeYuan = Field(description="Revenue of the last year, yuan")
    total_staff: Annotated[int, Field(ge=1, le=10_000_000)]
    rd_staff: Annotated[int, Field(ge=0, le=10_000_000, description="At most total_staff")]
    senior_talent: Count
    high_tech_certificate: bool

    @field_validator("rd_staff")
    @classmethod
    def _rd_staff_within_total(cls, v: int, info: ValidationInfo) -> int:
        total = info.data.get("total_staff")
        if total is not None and v > total:
            raise ValueError("rd_staff must not exceed total_staff")
        return v


class ApplicationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credit_code: CreditCode
    contact: Contact
    requested_amount: PositiveYuan
    term_months: Annotated[int, Field(ge=1, description="At most the programme's maximum term (12)")]
    bank_code: BankCode = Field(description="The partner bank the application goes to")
    indicators: IndicatorsIn

    @field_validator("credit_code", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.strip().upper() if isinstance(v, str) else v


class OverrideCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grade: Grade | None = Field(default=None, description="The grade to put in force")
    credit_line: PositiveYuan | None = Field(
        default=None,
        description="The line to put in force; defaults to the grade's line on the application date",
    )
    reason: Reason


class ApprovalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: PositiveYuan = Field(description="At most the credit line")
    term_months: Annotated[int, Field(ge=1, description="At most the programme's maximum term (12)")]
    annual_rate_pct: RatePct = Field(description="At most the one-year LPR in force + the cap")


class RejectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class ContributionRead(BaseModel):
    indicator: str
    value: str = Field(description="The indicator's value (percentages for *_pct, 1/0 for yes/no)")
    per_unit: str
    cap: str
    points: str


class EvaluationRead(BaseModel):
    score: str = Field(examples=["78.50"])
    computed_grade: str | None = Field(description="The grade the score gives (null: below the lowest band)")
    computed_credit_line: YuanStr | None
    grade: str | None = Field(description="The grade in force (after any officer override)")
    credit_line: YuanStr | None = Field(description="The credit line in force")
    overridden: bool
    evaluated_at: datetime
    contributions: list[ContributionRead]


class DecisionRead(BaseModel):
    outcome: Literal["approved", "rejected"]
    decided_at: datetime
    decision_date: date
    amount: YuanStr | None
    term_months: int | None
    annual_rate_pct: str | None = Field(examples=["4.3500"])
    rejection_reason: str | None


def _evaluation(a: Application) -> EvaluationRead | None:
    if a.evaluated_at is None or a.score is None:
        return None
    return EvaluationRead(
        score=f"{a.score:.2f}",
        computed_grade=a.computed_grade,
        computed_credit_line=yuan_str(a.computed_line_fen) if a.computed_line_fen is not None else None,
        grade=a.grade,
        credit_line=yuan_str(a.credit_line_fen) if a.credit_line_fen is not None else None,
        overridden=a.overridden_at is not None,
        evaluated_at=a.evaluated_at,
        contributions=[ContributionRead.model_validate(c) for c in a.breakdown or []],
    )


def _decision(a: Application) -> DecisionRead | None:
    if a.decided_at is None or a.decision_date is None:
        return None
    approved = a.approved_amount_fen is not None
    return DecisionRead(
        outcome="approved" if approved else "rejected",
        decided_at=a.decided_at,
        decision_date=a.decision_date,
        amount=yuan_str(a.approved_amount_fen) if a.approved_amount_fen is not None else None,
        term_months=a.approved_term_months,
        annual_rate_pct=f"{a.approved_rate_pct:.4f}" if a.approved_rate_pct is not None else None,
        rejection_reason=a.rejection_reason,
    )


class ExplanationRead(BaseModel):
    why: str
    what_to_do: str


class LoanSummary(BaseModel):
    """The loan made from an approved application, as the applicant sees it."""

    bank_loan_ref: str
    state: str
    amount: YuanStr
    disbursed: YuanStr
    outstanding_principal: YuanStr
    days_past_due: int
    start_date: date
    maturity_date: date
    first_disbursed_on: date | None = None
    settled_on: date | None = None


class ApplicationStatusRead(BaseModel):
    """What the applicant sees with its status token."""

    application_no: str
    status: ApplicationStatus
    ineligible_reason: IneligibleReason | None
    credit_code: str
    enterprise_name: str | None
    bank_code: str
    bank_name: str
    requested_amount: YuanStr
    term_months: int
    application_date: date
    submitted_at: datetime
    evaluation: EvaluationRead | None
    decision: DecisionRead | None
    loan: LoanSummary | None = Field(description="The loan made from the approval, once lent")
    explanation: ExplanationRead | None = Field(
        default=None, description="Why an ineligible or declined application went no further, and what to do"
    )

    @classmethod
    def of(cls, a: Application, loan: LoanSummary | None) -> ApplicationStatusRead:
        why = explain(a.status, a.ineligible_reason)
        return cls(
            application_no=a.application_no,
            status=a.status,
            ineligible_reason=a.ineligible_reason,
            credit_code=a.credit_code,
            enterprise_name=a.enterprise.name if a.enterprise is not None else None,
            bank_code=a.bank.code,
            bank_name=a.bank.name,
            requested_amount=yuan_str(a.requested_amount_fen),
            term_months=a.term_months,
            application_date=a.application_date,
            submitted_at=a.created_at,
            evaluation=_evaluation(a),
            decision=_decision(a),
            loan=loan,
            explanation=ExplanationRead(why=why.why, what_to_do=why.what_to_do) if why else None,
        )


class ApplicationCreated(ApplicationStatusRead):
    status_token: str = Field(
        description="Shown once: present it as `Authorization: Bearer <token>` to read this application"
    )


class StatusTokenReissue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(description="How the applicant was identified, for the audit log")


class StatusTokenReissued(BaseModel):
    application_no: str
    status_token: str = Field(description="Shown once; the application's previous token no longer works")


class IndicatorsRead(BaseModel):
    invention_patents: int
    utility_model_patents: int
    software_copyrights: int
    rd_spending: YuanStr
    revenue: YuanStr
    total_staff: int
    rd_staff: int
    senior_talent: int
    high_tech_certificate: bool


class ContactRead(BaseModel):
    name: str
    phone: str
    email: str | None


class ApplicationRead(ApplicationStatusRead):
    """What banks and bureau staff see."""

    id: int
    enterprise_id: int | None
    contact: ContactRead
    indicators: IndicatorsRead
    override_reason: str | None
    overridden_at: datetime | None
    updated_at: datetime

    @classmethod
    def full(cls, a: Application, loan: LoanSummary | None) -> ApplicationRead:
        return cls(
            **ApplicationStatusRead.of(a, loan).model_dump(),
            id=a.id,
            enterprise_id=a.enterprise_id,
            contact=ContactRead(name=a.contact_name, phone=a.contact_phone, email=a.contact_email),
            indicators=IndicatorsRead(
                invention_patents=a.invention_patents,
                utility_model_patents=a.utility_model_patents,
                software_copyrights=a.software_copyrights,
                rd_spending=yuan_str(a.rd_spending_fen),
                revenue=yuan_str(a.revenue_fen),
                total_staff=a.total_staff,
                rd_staff=a.rd_staff,
                senior_talent=a.senior_talent,
                high_tech_certificate=a.high_tech_certificate,
            ),
            override_reason=a.override_reason,
            overridden_at=a.overridden_at,
            updated_at=a.updated_at,
        )
